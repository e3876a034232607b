/*
 * parafork-init: pid 1 of a sandboxed task's pid namespace.
 *
 * Why it exists: the first process of a pid namespace is its init. The kernel drops signals sent
 * to an init that has no handler for them (pid_namespaces(7)), so a task that was itself pid 1
 * would ignore the agent's SIGTERM; and orphans of the namespace are reparented to init, which
 * must reap them or they stay zombies. This program starts the task as its child, forwards every
 * catchable signal it receives to the task's process group, reaps every child, and exits with the
 * task's status (128 + the signal number when a signal ended it, as shells report it). When it
 * exits, the kernel kills whatever is left in the namespace: the whole task tree goes with it.
 *
 * Usage (by the parafork sandbox only): parafork-init FILE ARGV0 [ARGS...]
 * It runs inside the sandbox (after the seccomp filter), so it only makes plain system calls.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 3) return 127;
  sigset_t all;
  sigset_t none;
  sigfillset(&all);
  sigemptyset(&none);
  /* parafork execs us with every signal already blocked (see native/src/child.cc): blocked signals
     are queued for us even as init, and sigwaitinfo takes them one by one. Blocking again keeps
     this true if someone runs us otherwise. */
  sigprocmask(SIG_BLOCK, &all, NULL);

  pid_t task = fork();
  if (task < 0) return 126;
  if (task == 0) {
    /* Its own process group, so a forwarded signal reaches everything the task started in it. */
    setpgid(0, 0);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execvp(argv[1], argv + 2);
    _exit(errno == ENOENT ? 127 : 126);
  }
  setpgid(task, task);

  for (;;) {
    siginfo_t info;
    int signal_number = sigwaitinfo(&all, &info);
    if (signal_number < 0) continue; /* EINTR */
    if (signal_number != SIGCHLD) {
      kill(-task, signal_number);
      continue;
    }
    int status;
    pid_t reaped;
    while ((reaped = waitpid(-1, &status, WNOHANG)) > 0) {
      if (reaped != task) continue;
      if (WIFEXITED(status)) return WEXITSTATUS(status);
      if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    }
  }
}
