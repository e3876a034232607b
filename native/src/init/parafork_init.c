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
 * FILE is run as given when it has a slash, else looked up in the environment's PATH.
 *
 * Built without libc (-nostdlib, own _start, raw system calls): it runs once per task, and glibc's
 * start-up alone (CPU feature probing with CPUID, which a hypervisor traps; TLS; IRELATIVE
 * relocations) cost ~5% of the CPU of a sandboxed spawn of /bin/true under perf. Without libc
 * there is no TLS for a stack-protector canary, hence -fno-stack-protector (binding.gyp); the
 * program keeps no buffers on its stack but the PATH candidate, which is bounds-checked, and the
 * digits of its uid (at most 20 in 24 bytes). It runs
 * after the seccomp filter, so it only makes the calls the default policy allows.
 */
#include <asm/unistd.h>
#include <linux/errno.h>
#include <linux/fcntl.h>
#include <linux/prctl.h>
#include <linux/sched.h>
#include <linux/signal.h>
#include <linux/wait.h>

#include "../raw_syscall.h"

#ifndef WNOHANG
#define WNOHANG 1
#endif

typedef unsigned long kernel_sigset; /* the kernel's sigset: 64 signals, 8 bytes */

__attribute__((noreturn)) static void exit_with(long status) {
  for (;;) parafork_raw_syscall(__NR_exit_group, status, 0, 0, 0, 0);
}

static long set_signal_mask(kernel_sigset mask) {
  return parafork_raw_syscall(__NR_rt_sigprocmask, SIG_SETMASK, (long)&mask, 0, sizeof(kernel_sigset), 0);
}

static unsigned long length_of(const char* text) {
  unsigned long length = 0;
  while (text[length] != '\0') ++length;
  return length;
}

static int has_slash(const char* text) {
  for (; *text != '\0'; ++text) {
    if (*text == '/') return 1;
  }
  return 0;
}

/* execvp(3)'s search, simply: FILE itself if it has a slash, else each non-empty PATH entry
   (default: the launcher's defaultSearchPath, src/launcher/spawn-options.ts; test/unit/task-launch.test.ts keeps them equal). Returns the last error, as a negative errno. */
static long exec_task(const char* file, char** argv, char** envp) {
  if (has_slash(file)) return parafork_raw_syscall(__NR_execve, (long)file, (long)argv, (long)envp, 0, 0);
  const char* path = "/usr/local/bin:/usr/bin:/bin";
  for (char** entry = envp; *entry != 0; ++entry) {
    const char* value = *entry;
    if (value[0] == 'P' && value[1] == 'A' && value[2] == 'T' && value[3] == 'H' && value[4] == '=') path = value + 5;
  }
  const unsigned long file_length = length_of(file);
  long result = -ENOENT;
  int saw_permission_error = 0;
  char candidate[4096];
  while (*path != '\0') {
    unsigned long directory_length = 0;
    while (path[directory_length] != '\0' && path[directory_length] != ':') ++directory_length;
    if (directory_length > 0 && directory_length + 1 + file_length < sizeof(candidate)) {
      unsigned long at = 0;
      for (unsigned long index = 0; index < directory_length; ++index) candidate[at++] = path[index];
      if (candidate[at - 1] != '/') candidate[at++] = '/';
      for (unsigned long index = 0; index <= file_length; ++index) candidate[at++] = file[index];
      result = parafork_raw_syscall(__NR_execve, (long)candidate, (long)argv, (long)envp, 0, 0);
      if (result == -EACCES) saw_permission_error = 1;
    }
    path += directory_length;
    if (*path == ':') ++path;
  }
  return saw_permission_error ? -EACCES : result;
}

/* The audit login uid (the `auid` of every audit record about this process and its children) set
   to our own uid, before the task runs. The kernel lets a process whose login uid is unset, as a
   service manager's children have it, set it once without any capability (audit_set_loginuid_perm()
   in kernel/auditsc.c), so the task could otherwise claim any host user's login, 1000 say, and the
   node's audit log would put what it does under that person's name (red team, session 10;
   test/security/sandbox-audit-identity.test.ts). Once set, changing it needs CAP_AUDIT_CONTROL,
   which no task has. Where it is set already (the launcher's, from a login session) the kernel
   refuses this write and the task keeps that one; without audit in the kernel there is no file. */
static void set_login_uid(void) {
  unsigned long uid = (unsigned long)parafork_raw_syscall(__NR_getuid, 0, 0, 0, 0, 0);
  char digits[24];
  unsigned long at = sizeof(digits);
  do {
    digits[--at] = (char)('0' + uid % 10);
    uid /= 10;
  } while (uid != 0);
  long file = parafork_raw_syscall(__NR_openat, AT_FDCWD, (long)"/proc/self/loginuid", O_WRONLY | O_CLOEXEC, 0, 0);
  if (file < 0) return;
  parafork_raw_syscall(__NR_write, file, (long)(digits + at), (long)(sizeof(digits) - at), 0, 0);
  parafork_raw_syscall(__NR_close, file, 0, 0, 0, 0);
}

/* Said on the task's stderr (its log, and its status' stderrTail when it fails) when init cannot
   fork the program: otherwise the Task ends with a bare 126, as if its program could not be run.
   EAGAIN is a pids limit met at the start: the Task's own, or the budget of all an instance's Tasks
   together, which the Task joined before its exec (a cgroup join may pass pids.max; only forks are
   refused: cgroup-v1/pids.rst, cgroup-v2.rst "PID"), or the uid's RLIMIT_NPROC. */
static void say_fork_failed(long error) {
  static const char limit[] =
      "parafork-init: cannot start the program: fork refused (EAGAIN): the Task's process limit "
      "(resources.limits.pids) or the node's budget for all Tasks together (--tasks-pids-max) is reached\n";
  static const char other[] = "parafork-init: cannot start the program: fork failed\n";
  if (error == -EAGAIN) {
    parafork_raw_syscall(__NR_write, 2, (long)limit, sizeof(limit) - 1, 0, 0);
  } else {
    parafork_raw_syscall(__NR_write, 2, (long)other, sizeof(other) - 1, 0, 0);
  }
}

static int run(long argc, char** argv, char** envp) {
  if (argc < 3) return 127;
  /* parafork execs us with every signal already blocked (see native/src/child.cc): blocked
     signals are queued for us even as init, and rt_sigtimedwait takes them one by one. Blocking
     again keeps this true if someone runs us otherwise. */
  const kernel_sigset all = ~0ul;
  set_signal_mask(all);
  /* First: once we are not dumpable, /proc/self is root's and we may not open it for writing. */
  set_login_uid();
  /* Not dumpable: the task runs as our user, so it could otherwise open /proc/1/mem for writing
     and do to us what the seccomp filter refuses it through ptrace and process_vm_writev
     (proc(5), "/proc/pid/mem"; ptrace(2), "Ptrace access mode checking"). The task's own
     execve makes it dumpable again. */
  parafork_raw_syscall(__NR_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0);

  /* fork(2), as a clone that only asks for SIGCHLD at exit. */
  long task = parafork_raw_syscall(__NR_clone, SIGCHLD, 0, 0, 0, 0);
  if (task < 0) {
    say_fork_failed(task);
    return 126;
  }
  if (task == 0) {
    /* Its own process group, so a forwarded signal reaches everything the task started in it. */
    parafork_raw_syscall(__NR_setpgid, 0, 0, 0, 0, 0);
    set_signal_mask(0);
    long result = exec_task(argv[1], argv + 2, envp);
    exit_with(result == -ENOENT ? 127 : 126);
  }
  parafork_raw_syscall(__NR_setpgid, task, task, 0, 0, 0);

  for (;;) {
    unsigned long info[16]; /* siginfo_t: 128 bytes */
    long signal_number = parafork_raw_syscall(__NR_rt_sigtimedwait, (long)&all, (long)info, 0, sizeof(kernel_sigset), 0);
    if (signal_number < 0) continue; /* EINTR */
    if (signal_number != SIGCHLD) {
      parafork_raw_syscall(__NR_kill, -task, signal_number, 0, 0, 0);
      continue;
    }
    int status;
    long reaped;
    while ((reaped = parafork_raw_syscall(__NR_wait4, -1, (long)&status, WNOHANG, 0, 0)) > 0) {
      if (reaped != task) continue;
      const int signal_part = status & 0x7f;
      if (signal_part == 0) return (status >> 8) & 0xff;            /* exited: WEXITSTATUS */
      if (signal_part != 0x7f) return 128 + signal_part;            /* killed: WTERMSIG */
    }
  }
}

/* The process starts here, with the stack holding argc, argv[], NULL, envp[], NULL. */
__attribute__((used, noreturn, visibility("hidden"))) void parafork_init_start(long* stack);
void parafork_init_start(long* stack) {
  long argc = stack[0];
  char** argv = (char**)(stack + 1);
  char** envp = argv + argc + 1;
  exit_with(run(argc, argv, envp));
}

#if defined(__x86_64__)
__asm__(".text\n.global _start\n_start:\n  xor %rbp, %rbp\n  mov %rsp, %rdi\n  and $-16, %rsp\n  call parafork_init_start\n  hlt\n");
#elif defined(__aarch64__)
__asm__(".text\n.global _start\n_start:\n  mov x29, #0\n  mov x30, #0\n  mov x0, sp\n  bl parafork_init_start\n");
#endif
