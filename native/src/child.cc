// The child side of a spawn: the only code that runs between clone and exec. Everything here is a
// raw system call on the prepared ChildPlan (see child.h for why). The functions are kept out of
// sanitizer instrumentation: the sanitizer runtimes are not async-signal-safe either.
#include "child.h"

#include <fcntl.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/syscall.h>

#include <cerrno>
#include <climits>
#include <cstddef>

#include "syscall_id.h"

#define PARAFORK_CHILD_CODE __attribute__((no_sanitize("address", "undefined", "thread"))) static

namespace parafork {

namespace {

// A system call that never touches errno: returns the result or -errno.
PARAFORK_CHILD_CODE inline long RawSyscall(long number, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0) {
#if defined(__x86_64__)
  long result;
  register long r10 __asm__("r10") = a4;
  __asm__ volatile("syscall"
                   : "=a"(result)
                   : "a"(number), "D"(a1), "S"(a2), "d"(a3), "r"(r10)
                   : "rcx", "r11", "memory");
  return result;
#elif defined(__aarch64__)
  register long x8 __asm__("x8") = number;
  register long x0 __asm__("x0") = a1;
  register long x1 __asm__("x1") = a2;
  register long x2 __asm__("x2") = a3;
  register long x3 __asm__("x3") = a4;
  __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
  return x0;
#else
#error "parafork's child code supports x86_64 and aarch64"
#endif
}

[[noreturn]] PARAFORK_CHILD_CODE void Fail(ChildPlan* plan, Syscall syscall, long negative_errno) {
  plan->failed_syscall = static_cast<uint8_t>(syscall);
  plan->failed_errno = static_cast<int>(-negative_errno);
  for (;;) RawSyscall(SYS_exit_group, 127);
}

// The kernel's struct sigaction for rt_sigaction(2) (not glibc's, which has a larger mask).
struct KernelSigaction {
  unsigned long handler;
  unsigned long flags;
  unsigned long restorer;
  unsigned long mask;
};

// Handlers of the agent (Node's, or a library's) must not run in the task, and Node ignores
// SIGPIPE, which exec would pass on: every catchable signal goes back to SIG_DFL, as libuv does.
// With CLONE_CLEAR_SIGHAND the kernel did the handlers; only the ignored signals are left.
PARAFORK_CHILD_CODE void ResetSignalDispositions(const ChildPlan* plan) {
  KernelSigaction default_action = {};  // handler 0 is SIG_DFL
  for (long signal_number = 1; signal_number < 65; ++signal_number) {
    if (signal_number == SIGKILL || signal_number == SIGSTOP) continue;
    if (plan->handlers_cleared && (plan->ignored_signals & (1ull << (signal_number - 1))) == 0) continue;
    RawSyscall(SYS_rt_sigaction, signal_number, reinterpret_cast<long>(&default_action), 0,
               sizeof(default_action.mask));
  }
}

PARAFORK_CHILD_CODE void PlaceStdio(ChildPlan* plan) {
  for (int target = 0; target < 3; ++target) {
    const int source = plan->stdio_fds[target];
    // dup3 clears close-on-exec on the copy; the prepared fds are all > 2, so source != target.
    long result = RawSyscall(SYS_dup3, source, target, 0);
    if (result < 0) Fail(plan, Syscall::kDup2, result);
  }
}

PARAFORK_CHILD_CODE bool ParseFdNumber(const char* name, int* fd) {
  if (*name == '\0') return false;
  long value = 0;
  for (; *name != '\0'; ++name) {
    if (*name < '0' || *name > '9') return false;
    value = value * 10 + (*name - '0');
    if (value > INT_MAX) return false;
  }
  *fd = static_cast<int>(value);
  return true;
}

// Without close_range(CLOSE_RANGE_CLOEXEC) (Linux < 5.11), mark every inherited fd above 2
// close-on-exec by reading /proc/self/fd with getdents64(2) into a stack buffer.
PARAFORK_CHILD_CODE void MarkInheritedFdsCloseOnExecSlowly(ChildPlan* plan) {
  long directory = RawSyscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/self/fd"),
                              O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory < 0) Fail(plan, Syscall::kCloseRange, directory);
  alignas(8) char buffer[2048];
  for (;;) {
    long length = RawSyscall(SYS_getdents64, directory, reinterpret_cast<long>(buffer), sizeof(buffer));
    if (length < 0) Fail(plan, Syscall::kCloseRange, length);
    if (length == 0) break;
    for (long offset = 0; offset < length;) {
      // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
      const char* entry = buffer + offset;
      const unsigned short record_length = *reinterpret_cast<const unsigned short*>(entry + 16);
      int fd = -1;
      if (ParseFdNumber(entry + 19, &fd) && fd > 2 && fd != directory) {
        RawSyscall(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
      }
      offset += record_length;
    }
  }
  RawSyscall(SYS_close, directory);
}

PARAFORK_CHILD_CODE void CloseInheritedFdsOnExec(ChildPlan* plan) {
  if (plan->close_range_cloexec) {
    // close_range(2): marks rather than closes, so the exec itself drops them and a failed exec
    // can still report through the plan.
    long result = RawSyscall(SYS_close_range, 3, static_cast<long>(~0U), CLOSE_RANGE_CLOEXEC);
    if (result == 0) return;
  }
  MarkInheritedFdsCloseOnExecSlowly(plan);
}

// Tries each candidate like execvp(3): a missing candidate moves on, a permission error is
// remembered (and reported if nothing else runs), anything else stops the search.
[[noreturn]] PARAFORK_CHILD_CODE void Exec(ChildPlan* plan) {
  long result = -ENOENT;
  bool saw_permission_error = false;
  for (const char* const* path = plan->exec_paths; *path != nullptr; ++path) {
    result = RawSyscall(SYS_execve, reinterpret_cast<long>(*path), reinterpret_cast<long>(plan->argv),
                        reinterpret_cast<long>(plan->envp));
    if (result == -EACCES) {
      saw_permission_error = true;
      continue;
    }
    if (result == -ENOENT || result == -ENOTDIR || result == -ESTALE || result == -ENODEV ||
        result == -ETIMEDOUT) {
      continue;
    }
    break;
  }
  if (saw_permission_error && (result == -ENOENT || result == -ENOTDIR)) result = -EACCES;
  Fail(plan, Syscall::kExecve, result);
}

}  // namespace

__attribute__((no_sanitize("address", "undefined", "thread"))) int RunChild(void* opaque_plan) {
  ChildPlan* plan = static_cast<ChildPlan*>(opaque_plan);
  // Signals stay blocked (the spawn thread blocks them all) until the dispositions are reset.
  ResetSignalDispositions(plan);
  PlaceStdio(plan);
  if (plan->cgroup_procs_fd >= 0) {
    long result = RawSyscall(SYS_write, plan->cgroup_procs_fd, reinterpret_cast<long>("0"), 1);
    if (result < 0) Fail(plan, Syscall::kCgroupAttach, result);
  }
  if (plan->cwd != nullptr) {
    long result = RawSyscall(SYS_chdir, reinterpret_cast<long>(plan->cwd));
    if (result < 0) Fail(plan, Syscall::kChdir, result);
  }
  CloseInheritedFdsOnExec(plan);
  // The task starts with no signal blocked, whatever mask the spawn thread had.
  const unsigned long empty_mask = 0;
  long result = RawSyscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&empty_mask), 0,
                           sizeof(empty_mask));
  if (result < 0) Fail(plan, Syscall::kSigprocmask, result);
  Exec(plan);
}

}  // namespace parafork
