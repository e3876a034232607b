// See child_table.h.
#include "child_table.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace parafork {

int WaitForExit(int pidfd, bool no_hang, ExitInfo* exit, bool* exited) {
  siginfo_t info = {};
  struct rusage usage = {};
  // The raw waitid takes a struct rusage as its fifth argument (glibc's wrapper does not).
  // __WALL: our children are started with no exit signal, so they count as "clone" children.
  const int options = WEXITED | __WALL | (no_hang ? WNOHANG : 0);
  long result;
  do {
    result = syscall(SYS_waitid, P_PIDFD, pidfd, &info, options, &usage);
  } while (result == -1 && errno == EINTR);
  if (result == -1) return errno;
  *exited = info.si_pid != 0;
  if (!*exited) return 0;
  if (info.si_code == CLD_EXITED) {
    exit->exit_code = info.si_status;
    exit->signal = 0;
  } else {
    exit->exit_code = -1;
    exit->signal = info.si_status;
  }
  exit->user_us = static_cast<uint64_t>(usage.ru_utime.tv_sec) * 1000000 + usage.ru_utime.tv_usec;
  exit->system_us = static_cast<uint64_t>(usage.ru_stime.tv_sec) * 1000000 + usage.ru_stime.tv_usec;
  exit->max_rss_kb = static_cast<uint64_t>(usage.ru_maxrss);
  return 0;
}

ChildRecord* ChildTable::Insert(std::unique_ptr<ChildRecord> record) {
  ChildRecord* inserted = record.get();
  std::lock_guard<std::mutex> guard(mutex_);
  children_.emplace(inserted->id, std::move(record));
  return inserted;
}

int ChildTable::Signal(uint64_t id, int signal_number) {
  std::lock_guard<std::mutex> guard(mutex_);
  auto found = children_.find(id);
  if (found == children_.end()) return ESRCH;
  if (syscall(SYS_pidfd_send_signal, found->second->pidfd.get(), signal_number, nullptr, 0) == -1) return errno;
  return 0;
}

std::unique_ptr<ChildRecord> ChildTable::Reap(ChildRecord* record, ExitInfo* exit) {
  std::lock_guard<std::mutex> guard(mutex_);
  bool exited = false;
  if (WaitForExit(record->pidfd.get(), /*no_hang=*/true, exit, &exited) != 0) {
    // ECHILD would mean someone else reaped it (a waitpid(-1) elsewhere in the process): report it
    // as gone rather than watching a pidfd that will never change again.
    exited = true;
    *exit = ExitInfo{};
  }
  if (!exited) return nullptr;
  auto [first, last] = children_.equal_range(record->id);
  auto found = std::find_if(first, last, [record](const auto& entry) { return entry.second.get() == record; });
  std::unique_ptr<ChildRecord> removed = std::move(found->second);
  children_.erase(found);
  removed->pidfd.reset();
  // The child is a sandboxed task's init: its exit completed only once every process of its pid
  // namespace was gone (pid_namespaces(7)), so nothing of the task is left in the namespace but
  // what the pool checks for.
  removed->network_namespace.Return();
  return removed;
}

size_t ChildTable::Size() {
  std::lock_guard<std::mutex> guard(mutex_);
  return children_.size();
}

}  // namespace parafork
