// Network namespaces for tasks with network "none": one per running task, so that no two tasks share
// abstract unix socket names, netlink ports, bound ports, multicast groups, IPv6 flow labels or a
// /proc/net view of each other's sockets (issue 12, finding 2). Making a namespace costs ~0.3 ms of
// CPU and its asynchronous teardown ~0.2 ms more (2 vCPUs, Linux 6.18); joining one costs a few
// microseconds. So namespaces are made ahead, on a thread of the pool's own, and used again:
//
//   - A task leases an idle namespace for its whole life. When none is idle (a burst beyond the
//     pool), its clone makes one (CLONE_NEWNET); the spawn adopts that one for the pool
//     (PIDFD_GET_NET_NAMESPACE, Linux 6.11+), so the pool grows to what tasks use at once.
//   - A lease comes back only once the task's init (pid 1 of its pid namespace) has been reaped:
//     the kernel lets init finish exiting only after every other process of its pid namespace has
//     been released (zap_pid_ns_processes in kernel/pid_namespace.c), and a process has closed its
//     files by then. No process of the task is left.
//   - The pool's thread then checks that nothing of the task outlived it there (see
//     network_namespace_leftovers.h). Sockets still allocated may yet be freed (a netlink socket is
//     freed an RCU grace period after its close): it looks again 10 ms, 100 ms and 1 s later. A
//     socket still there then, or an IPv6 flow label, and the namespace is dropped, never leased
//     again. So is, unread, the namespace of a task that runs as host uid 0 (it may have changed
//     net sysctls).
//
// The check reads two /proc/net files kept open with each namespace from its first check (or its
// making) on, so that it need not enter the namespace (network_namespace_leftovers.h): ~3.5 us a
// check against ~23 us, which an array's index paid on this thread (docs/benchmarks.md).
//
// Memory: ~200 KiB of kernel memory per namespace (slab and per-CPU; measured over 1,000 held), and
// an estimated ~9 KiB and two fds more for its kept files, so the idle ones are capped; a namespace
// leased to a running task is that task's cost.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "network_namespace_leftovers.h"
#include "unique_fd.h"

namespace parafork {

class NetworkNamespacePool;

// A namespace as the pool holds it: its fd, and the files its check reads (opened at the first).
struct PooledNetworkNamespace {
  UniqueFd fd;
  NetworkNamespaceFiles files;
};

// One namespace leased to one task. Only Return() gives it back; destroying a lease just closes its
// fd, and the namespace is never reused: what must happen to the lease of a task still running,
// such as when the agent exits before its children.
class NetworkNamespaceLease {
 public:
  NetworkNamespaceLease() = default;
  NetworkNamespaceLease(NetworkNamespacePool* pool, PooledNetworkNamespace leased, bool reusable)
      : pool_(pool), namespace_(std::move(leased)), reusable_(reusable) {}
  NetworkNamespaceLease(NetworkNamespaceLease&&) noexcept = default;
  NetworkNamespaceLease& operator=(NetworkNamespaceLease&&) noexcept = default;

  int fd() const { return namespace_.fd.get(); }
  explicit operator bool() const { return namespace_.fd.valid(); }

  // The task has ended: its init was reaped, or its spawn failed and its child was reaped (or
  // never cloned). No-op on an empty lease.
  void Return();

 private:
  NetworkNamespacePool* pool_ = nullptr;
  PooledNetworkNamespace namespace_;
  bool reusable_ = false;
};

class NetworkNamespacePool {
 public:
  struct Limits {
    // Idle namespaces the thread keeps ready: a burst of spawns up to this many finds one each.
    size_t reserve = 16;
    // Idle namespaces kept when tasks give them back faster than new ones lease them (after a
    // burst); the rest are closed. 128 x ~200 KiB = ~25 MiB at most.
    size_t max_idle = 128;
    // Idle namespaces above `reserve` that no lease needed for this long are closed: after a
    // burst, memory (and the agent's fd count) go back to the reserve.
    std::chrono::milliseconds trim_after{5'000};
  };

  struct Counts {
    size_t idle = 0;
    size_t settling = 0;   // given back with sockets not yet freed: looked at again later
    uint64_t made = 0;     // by the pool's thread
    uint64_t leased = 0;
    uint64_t missed = 0;   // none idle: the clone made one
    uint64_t adopted = 0;  // of those, taken into the pool
    uint64_t reused = 0;   // given back, found holding nothing, leased again
    uint64_t dropped = 0;  // given back and not reusable, or holding something, or past max_idle
    uint64_t trimmed = 0;  // idle and unneeded for trim_after
  };

  explicit NetworkNamespacePool(Limits limits);
  NetworkNamespacePool() : NetworkNamespacePool(Limits{}) {}
  NetworkNamespacePool(const NetworkNamespacePool&) = delete;
  NetworkNamespacePool& operator=(const NetworkNamespacePool&) = delete;
  // Stops the thread and closes the idle namespaces. Every Return() must have happened by then:
  // the engine stops the spawn threads and the reaper before the sandbox resources go.
  ~NetworkNamespacePool();

  // Starts the thread and waits for its first namespace: 0, or the errno that made it fail
  // (EPERM without CAP_SYS_ADMIN; the pool is then unusable). Once.
  int Start();

  // Any thread. An idle namespace, or an empty lease when none is ready: the caller then clones
  // with CLONE_NEWNET, and may Adopt the result. `reusable`: false when the task may change its
  // namespace in ways the check does not read (it runs as host uid 0).
  NetworkNamespaceLease Lease(bool reusable);

  // Any thread. The network namespace of `pidfd`'s process (a task just cloned with CLONE_NEWNET
  // after Lease found none idle, and reusable), leased to it. Empty when the kernel cannot tell
  // (before Linux 6.11) or the process is already gone: then the namespace ends with its task.
  NetworkNamespaceLease Adopt(int pidfd);

  Counts Snapshot();

 private:
  friend class NetworkNamespaceLease;

  // A namespace given back, on its way to the idle stack (or not).
  struct Returned {
    PooledNetworkNamespace returned_namespace;
    int looks = 0;  // how many times the check found sockets in it
    std::chrono::steady_clock::time_point look_again_at;
  };

  void GiveBack(PooledNetworkNamespace given_back, bool reusable);
  void Run();
  bool NextSettledDue(std::chrono::steady_clock::time_point now, Returned* due);
  void Check(Returned returned, std::unique_lock<std::mutex>& guard);
  std::vector<PooledNetworkNamespace> TakeUnneeded();
  int Make(PooledNetworkNamespace* made);
  // Opens the files its check reads, entering it for that once. False: they cannot be had.
  bool OpenCheckedFiles(PooledNetworkNamespace& checked);

  const Limits limits_;
  std::mutex mutex_;
  std::condition_variable work_;  // the thread waits here for namespaces to check or a reserve to refill
  std::vector<PooledNetworkNamespace> idle_;  // a stack: the last given back is leased first (warm in cache)
  std::vector<Returned> returned_;            // reusable, waiting for the check
  std::vector<Returned> settling_;            // checked, with sockets not yet freed: looked at again later
  size_t fewest_idle_ = 0;                    // since the last trim: how many idle ones no lease needed
  Counts counts_;
  bool stopping_ = false;
  std::thread thread_;
  // The thread's own: its home namespace, which it goes back to after each job, and an fd of
  // /proc/thread-self/net, which reads whichever namespace it is in.
  UniqueFd home_namespace_;
  UniqueFd net_directory_;
};

}  // namespace parafork
