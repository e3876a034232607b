// Real child processes for the child table and reaper tests: forked by the test, each doing one
// harmless thing (exit with a code, or wait to be killed), with a pidfd as the spawner makes them.
#pragma once

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <memory>

#include "../src/child_table.h"
#include "../src/monotonic_clock.h"

namespace parafork {

constexpr int kWaitToBeKilled = -1;

// A child that exits with `exit_code` after `delay_ms`, or with kWaitToBeKilled sleeps until a
// signal ends it. Only async-signal-safe calls run in the child (the test process has threads).
inline std::unique_ptr<ChildRecord> StartChild(uint64_t id, int exit_code, int delay_ms = 0) {
  // Read before the fork, as the spawner reads it before its clone: read after, it came late by as
  // long as the parent waited for a CPU meanwhile, and a child that slept 20 ms measured 15.5 ms
  // (the project's CI, on a loaded machine).
  const uint64_t started_ns = MonotonicNanoseconds();
  const pid_t pid = fork();
  if (pid == 0) {
    if (exit_code == kWaitToBeKilled) {
      while (true) pause();
    }
    if (delay_ms > 0) {
      struct timespec delay = {delay_ms / 1000, (delay_ms % 1000) * 1000000L};
      nanosleep(&delay, nullptr);
    }
    _exit(exit_code);
  }
  auto record = std::make_unique<ChildRecord>();
  record->id = id;
  record->pid = pid;
  record->pidfd.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  record->started_ns = started_ns;
  return record;
}

// For a child the code under test let go: kill and reap it by pid (still our unreaped child, so
// the pid cannot have been reused).
inline void KillAndReap(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, __WALL);
}

}  // namespace parafork
