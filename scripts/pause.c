// The pause process of the dev cluster's Pod sandboxes (scripts/build-image.sh pause): PID 1 of
// each Pod, holding its namespaces open. It does what Kubernetes' build/pause/linux/pause.c does,
// built here because that image lives in a registry this machine need not reach: wait for
// signals, reap any child re-parented to it (a PID namespace's init must, wait(2)), and exit 0 on
// SIGINT or SIGTERM, which is how the runtime stops a sandbox.
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signal_number) {
  (void)signal_number;
  _exit(0);
}

static void reap(int signal_number) {
  (void)signal_number;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  if (getpid() != 1) fprintf(stderr, "pause: warning: not PID 1\n");
  struct sigaction on_stop = {.sa_handler = stop};
  struct sigaction on_child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
  if (sigaction(SIGINT, &on_stop, NULL) < 0 || sigaction(SIGTERM, &on_stop, NULL) < 0 ||
      sigaction(SIGCHLD, &on_child, NULL) < 0) {
    perror("pause: sigaction");
    return 1;
  }
  for (;;) pause();
}
