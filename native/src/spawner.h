// The spawn threads. Each owns a child stack and takes requests from its lane's queue (plain or
// sandboxed spawns; see Lane): it has the child's plan prepared (exec_search.h, stdio_preparation.h,
// cgroup_join.h, sandbox_preparation.h), clones with CLONE_VM | CLONE_VFORK | CLONE_PIDFD (clone3,
// or clone where clone3 is refused), and, once the child has exec'd, hands the pidfd to the
// reaper. The JS thread only enqueues. Lock modes decide what a fork waits for (see xor_lock.h):
//   free:   nothing. Our fds are made close-on-exec atomically and the child marks every other fd
//           close-on-exec with close_range(2), so no fd creator anywhere needs excluding.
//   xor:    forks share the XorLock; the engine's fd creation takes its other side (Go >= 1.21).
//   serial: one lock for every fork and every fd creation (Go < 1.21's syscall.ForkLock).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "cgroup_join.h"
#include "cgroup_state_cache.h"
#include "child.h"
#include "child_fd_slots.h"
#include "child_table.h"
#include "event.h"
#include "exec_search.h"
#include "log_pump.h"
#include "reaper.h"
#include "sandbox_preparation.h"
#include "sandbox_resources.h"
#include "spawn_failure.h"
#include "spawn_request.h"
#include "stdio_preparation.h"
#include "unique_fd.h"
#include "user_namespace_handshake.h"
#include "xor_lock.h"

namespace parafork {

enum class LockMode : uint8_t { kFree = 0, kXor = 1, kSerial = 2 };
enum class ClonePath : uint8_t { kClone3 = 0, kClone = 1 };

struct SpawnerOptions {
  int threads = 2;
  LockMode lock_mode = LockMode::kFree;
  ClonePath clone_path = ClonePath::kClone3;
  bool close_range_cloexec = true;
  bool clone_clear_sighand = false;
  bool mount_setattr = true;  // mount_setattr(2), Linux 5.12: recursive read-only bind mounts
  // Sandboxing: the shared resources (null: sandboxed spawns fail with ENOTSUP) and the empty
  // directory each task's root is mounted on inside its own mount namespace.
  SandboxResources* sandbox_resources = nullptr;
  std::string staging_directory;
  LogPump* log_pump = nullptr;  // takes the read ends of kLog outputs; null: they are closed
};

class Spawner {
 public:
  Spawner(SpawnerOptions options, ChildTable& children, Reaper& reaper, EventSink& events);
  Spawner(const Spawner&) = delete;
  Spawner& operator=(const Spawner&) = delete;
  ~Spawner();

  // Opens /dev/null, maps the child stacks and starts the threads; throws std::system_error.
  void Start();
  // Lets each thread finish the spawn in hand, drops what is still queued, joins the threads.
  void Stop();

  // JS thread. False once stopping.
  bool Enqueue(std::unique_ptr<SpawnRequest> request);

  size_t Queued();
  // Any thread: requests already wait for threads in some lane (as many as it has threads), so
  // every new one will wait too; the event batcher coalesces deliveries then.
  bool Saturated();
  int BusyThreads() const { return busy_threads_.load(std::memory_order_relaxed); }
  // Threads serving plain spawns; the sandbox lane has SandboxThreads().
  int Threads() const { return options_.threads; }
  // A sandboxed child spends much of its setup asleep (mount and cgroup locks, RCU waits) while
  // its vfork'd spawn thread waits: twice the threads keep the CPUs busy (measured at c=50 on 2
  // CPUs: +10% spawns/s from 2 to 4 threads; 8 no better).
  int SandboxThreads() const { return 2 * options_.threads; }

 private:
  struct ChildStack {
    void* mapping = nullptr;
    size_t mapping_size = 0;
    void* base = nullptr;  // lowest usable address, above the guard page
    size_t size = 0;
  };

  // A lane: a queue and the threads that serve it. Sandboxed spawns have their own lane, whose
  // threads empty their capability bounding set once at start (creds are per thread): every child
  // inherits it empty, instead of each paying ~40 PR_CAPBSET_DROP credential commits (~65 us).
  struct Lane {
    // A permit per queued request (and, at Stop, one per thread). The JS thread's release() never
    // blocks, where a condition variable's notify_one can: glibc's pthread_cond_signal (before 2.41)
    // waits for waiters signalled earlier to wake, so the JS thread (nice -10) slept until a spawn
    // thread (nice 0) queued behind 1,000 running Tasks got a CPU: 60-90 ms (docs/benchmarks.md).
    std::counting_semaphore<> ready{0};
    std::deque<std::unique_ptr<SpawnRequest>> queue;
  };

  // What the clone returned: the child's pid (or -errno) and pidfd, and its timings.
  struct CloneOutcome {
    long pid = -1;
    UniqueFd pidfd;
    uint64_t started_ns = 0;   // CLOCK_MONOTONIC just before the clone
    uint64_t spawn_ns = 0;     // clone to exec (or to the child's exit)
    int user_namespace_error = 0;
  };

  void ThreadMain(int index, Lane& lane, bool sandbox_lane);
  void SpawnOne(SpawnRequest& request, const ChildStack& stack, int thread);
  // One try at it; false: a kept cgroup fd was stale (nothing of the task ran), try again with the
  // paths (the request's kept fds dropped).
  bool TrySpawn(SpawnRequest& request, const ChildStack& stack, int thread);
  SpawnFailure PrepareFds(const SpawnRequest& request, PreparedStdio& stdio, PreparedCgroups& cgroups);
  ChildPlan PlainPlan(const SpawnRequest& request, const ExecArrays& exec, const PreparedStdio& stdio,
                      const PreparedCgroups& cgroups, uint64_t now_ns);
  SpawnFailure PrepareSandboxed(const SpawnRequest& request, const ExecArrays& exec, SandboxStorage& storage,
                                UserNamespaceHandshake& handshake, ChildPlan& plan, uint64_t* namespace_flags);
  // Moves the fds the child uses below the slots' limit, so it copies only those (child_fd_slots.h).
  void LowerChildFds(ChildPlan& plan, PreparedCgroups& cgroups, LoweredChildFds& lowered);
  CloneOutcome Clone(const SpawnRequest& request, ChildPlan& plan, const ChildStack& stack, uint64_t namespace_flags,
                     const PreparedCgroups& cgroups, UserNamespaceHandshake& handshake);
  // Gives the read ends of a kLog output (either may be empty) to the log pump.
  void HandOverLog(const SpawnRequest& request, UniqueFd (&log_ends)[2]);
  void Adopt(const SpawnRequest& request, CloneOutcome& clone, PreparedStdio& stdio, SandboxStorage& storage,
             uint64_t queued_ns);
  bool UsesClone3() const { return options_.clone_path == ClonePath::kClone3; }
  XorLock* ForkLock();
  XorLock* FdLock();
  uint64_t IgnoredSignals(uint64_t now_ns);

  const SpawnerOptions options_;
  ChildTable& children_;
  Reaper& reaper_;
  EventSink& events_;
  XorLock lock_;
  UniqueFd dev_null_;
  ChildFdSlots fd_slots_;  // none reserved: every child copies the whole fd table

  CgroupStateCache cgroup_state_;
  std::mutex queue_mutex_;  // guards both lanes' queues and stopping_
  Lane plain_lane_;
  Lane sandbox_lane_;
  bool stopping_ = false;

  std::vector<ChildStack> stacks_;
  std::vector<std::thread> threads_;
  std::atomic<int> busy_threads_{0};
  // Signals the agent has set to SIG_IGN, re-read at most once a second (see IgnoredSignals).
  std::atomic<uint64_t> ignored_signals_{0};
  std::atomic<uint64_t> ignored_signals_read_ns_{0};
};

}  // namespace parafork
