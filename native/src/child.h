// What runs in the child between clone and exec. The child shares the parent's memory (CLONE_VM)
// and runs while its spawn thread is suspended (CLONE_VFORK), so it may only read the plan prepared
// before the clone and make raw, async-signal-safe system calls: no malloc, no locks, no stdio, no
// errno (it would be the parent thread's). See signal-safety(7) and clone(2).
#pragma once

#include <cstdint>

namespace parafork {

struct ChildPlan {
  const char* const* exec_paths = nullptr;  // candidates tried in order, null-terminated
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;                // null: inherit
  int stdio_fds[3] = {-1, -1, -1};          // parent fds (all > 2) placed at 0, 1, 2
  int cgroup_procs_fd = -1;                 // >= 0: join that cgroup by writing "0" (clone() path)
  bool close_range_cloexec = true;          // kernel has close_range(CLOSE_RANGE_CLOEXEC), 5.11+
  // CLONE_CLEAR_SIGHAND already reset every handler to SIG_DFL; only signals set to SIG_IGN (which
  // that flag leaves alone) remain, listed in `ignored_signals` (bit n-1 for signal n).
  bool handlers_cleared = false;
  uint64_t ignored_signals = 0;

  // Written by the child when a step fails, read by the parent once the vfork wait is over.
  volatile int failed_errno = 0;
  volatile uint8_t failed_syscall = 0;  // a parafork::Syscall
};

// The child's entry point for clone3/clone. Never returns: it execs or exits with status 127.
int RunChild(void* plan);

}  // namespace parafork
