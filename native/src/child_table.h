// The children that have exec'd and not yet been reaped, by request id. It exists so that `kill`
// signals through a pidfd that is still open: the reaper closes a pidfd only under the same lock,
// so a kill can never reach a recycled fd number, let alone a recycled pid (pidfd_send_signal(2)).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "network_namespace_pool.h"
#include "unique_fd.h"

namespace parafork {

struct ChildRecord {
  uint64_t id = 0;
  pid_t pid = 0;
  UniqueFd pidfd;
  uint64_t started_ns = 0;  // CLOCK_MONOTONIC at clone
  // Network "none": the task's own namespace, given back by Reap once the task's init has exited.
  NetworkNamespaceLease network_namespace;
};

struct ExitInfo {
  int exit_code = -1;  // -1 when a signal ended it
  int signal = 0;      // 0 when it exited
  uint64_t user_us = 0;
  uint64_t system_us = 0;
  uint64_t max_rss_kb = 0;
};

// Owns every record from Insert until Reap hands it back. Each record stays at one address while
// it is in the table, so the reaper may keep a pointer to it (its epoll registration) until it reaps it.
class ChildTable {
 public:
  ChildTable() = default;
  ChildTable(const ChildTable&) = delete;
  ChildTable& operator=(const ChildTable&) = delete;
  // Children still running are let go (their pidfds closed), not killed: as Node does at exit.
  ~ChildTable() = default;

  // The record, now in the table; valid until Reap returns it.
  ChildRecord* Insert(std::unique_ptr<ChildRecord> record);

  // pidfd_send_signal to a live child; returns 0 or an errno (ESRCH once it has been reaped).
  int Signal(uint64_t id, int signal_number);

  // waitid(P_PIDFD, WNOHANG) with rusage. Once the child has exited: fills `exit`, removes the
  // record (its pidfd closed, its network namespace given back) and hands it to the caller. Null
  // while it runs. Only the one thread that watches a record may reap it.
  std::unique_ptr<ChildRecord> Reap(ChildRecord* record, ExitInfo* exit);

  size_t Size();

 private:
  std::mutex mutex_;
  // A multimap: ids are unique when they come from the Launcher, but a second child under an id
  // (from a caller of the raw binding) must not free a record the reaper still watches.
  std::unordered_multimap<uint64_t, std::unique_ptr<ChildRecord>> children_;
};

// Waits for an exited (or exiting) child through its pidfd and fills `exit`. Blocking; 0 or errno.
int WaitForExit(int pidfd, bool no_hang, ExitInfo* exit, bool* exited);

}  // namespace parafork
