// Low fd numbers reserved for the spawn threads, so that a child need not copy the agent's whole
// fd table. A child cloned without CLONE_FILES gets a copy of every open fd (dup_fd: a reference
// taken on each) and its exec then closes them all (close-on-exec): with the 600-700 fds an agent
// holds mid-array (pooled cgroups' files, network namespaces, pipes, pidfds) that was ~0.05 ms a
// spawn. Instead the child is cloned with CLONE_FILES and its first system call is
// close_range(limit, ~0U, CLOSE_RANGE_UNSHARE) (Linux 5.9), which gives it a table of its own
// holding only the fds below `limit`; every fd the child uses must therefore sit below it. Those
// that do not are copied (dup3) into slots of the spawning thread before the clone and the slots
// are put back to /dev/null after it (the spawn thread waits for the child's exec: CLONE_VFORK).
// Until its unshare the child must not touch the fd table: it is the agent's.
#pragma once

#include <cstddef>
#include <vector>

namespace parafork {

class ChildFdSlots {
 public:
  // Reserves `per_thread` slots for each of `threads` threads: copies of `placeholder` (close-on-
  // exec) at the lowest free fds from 4 up (3 is where a child places its result file, after
  // which it still execs by fd). Returns false (and reserves nothing) when an fd cannot be had.
  bool Reserve(int placeholder, int threads, int per_thread);
  void Release();
  ~ChildFdSlots() { Release(); }

  // What a child copies: fds below this. 0 while nothing is reserved.
  int limit() const { return limit_; }
  const int* ThreadSlots(int thread) const { return slots_.data() + static_cast<size_t>(thread) * per_thread_; }
  int per_thread() const { return per_thread_; }
  int placeholder() const { return placeholder_; }

 private:
  std::vector<int> slots_;
  int per_thread_ = 0;
  int limit_ = 0;
  int placeholder_ = -1;
};

// One spawn's use of its thread's slots: Lower() each fd the child will use, then clone with
// CLONE_FILES only if shared() is still true; Restore() (or the destructor) after the clone.
class LoweredChildFds {
 public:
  // slots null: nothing lowered, shared() false.
  LoweredChildFds(const ChildFdSlots* slots, int thread);
  LoweredChildFds(const LoweredChildFds&) = delete;
  LoweredChildFds& operator=(const LoweredChildFds&) = delete;
  ~LoweredChildFds() { Restore(); }

  // `fd` itself when it is negative or below the limit, else a copy of it in the next free slot.
  // Out of slots, or if the copy fails, `fd` itself and shared() turns false: the child then
  // copies the whole table as before, where `fd` and any copy made so far are both valid.
  int Lower(int fd);
  bool shared() const { return shared_; }
  int limit() const { return limit_; }
  // Puts the placeholder back in every slot used (the copies close).
  void Restore();

 private:
  const int* slots_ = nullptr;
  int available_ = 0;
  int used_ = 0;
  int limit_ = 0;
  int placeholder_ = -1;
  bool shared_ = false;
};

}  // namespace parafork
