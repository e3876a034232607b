// The spawn threads. Each owns a child stack and takes requests from one queue: it prepares the
// child's fds, clones with CLONE_VM | CLONE_VFORK | CLONE_PIDFD (clone3, or clone where clone3 is
// refused), and, once the child has exec'd, hands the pidfd to the reaper. The JS thread only
// enqueues. Lock modes decide what a fork waits for (see xor_lock.h):
//   free:   nothing. Our fds are made close-on-exec atomically and the child marks every other fd
//           close-on-exec with close_range(2), so no fd creator anywhere needs excluding.
//   xor:    forks share the XorLock; the engine's fd creation takes its other side (Go >= 1.21).
//   serial: one lock for every fork and every fd creation (Go < 1.21's syscall.ForkLock).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "capabilities.h"
#include "child_table.h"
#include "event_batcher.h"
#include "reaper.h"
#include "sandbox_resources.h"
#include "spawn_request.h"
#include "syscall_id.h"
#include "unique_fd.h"
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
  // Sandboxing: the shared resources (null: sandboxed spawns fail with ENOTSUP) and the empty
  // directory each task's root is mounted on inside its own mount namespace.
  SandboxResources* sandbox_resources = nullptr;
  std::string staging_directory;
};

class Spawner {
 public:
  Spawner(SpawnerOptions options, ChildTable& children, Reaper& reaper, EventBatcher& events);
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
  int BusyThreads() const { return busy_threads_.load(std::memory_order_relaxed); }
  int Threads() const { return options_.threads; }

 private:
  struct ChildStack {
    void* mapping = nullptr;
    size_t mapping_size = 0;
    void* base = nullptr;  // lowest usable address, above the guard page
    size_t size = 0;
  };

  void ThreadMain(int index);
  void SpawnOne(SpawnRequest& request, const ChildStack& stack);
  void ReportFailure(const SpawnRequest& request, uint64_t picked_ns, uint64_t spawn_ns, int error_number,
                     Syscall syscall);
  XorLock* ForkLock();
  XorLock* FdLock();
  uint64_t IgnoredSignals(uint64_t now_ns);

  const SpawnerOptions options_;
  ChildTable& children_;
  Reaper& reaper_;
  EventBatcher& events_;
  XorLock lock_;
  UniqueFd dev_null_;

  std::mutex queue_mutex_;
  std::condition_variable queue_changed_;
  std::deque<std::unique_ptr<SpawnRequest>> queue_;
  bool stopping_ = false;

  std::vector<ChildStack> stacks_;
  std::vector<std::thread> threads_;
  std::atomic<int> busy_threads_{0};
  // Signals the agent has set to SIG_IGN, re-read at most once a second (see IgnoredSignals).
  std::atomic<uint64_t> ignored_signals_{0};
  std::atomic<uint64_t> ignored_signals_read_ns_{0};
};

}  // namespace parafork
