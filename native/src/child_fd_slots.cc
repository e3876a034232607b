// See child_fd_slots.h.
#include "child_fd_slots.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

namespace parafork {

namespace {
constexpr int kLowestSlot = 4;  // above the result file's fd 3 (child.h kResultFd)
}  // namespace

bool ChildFdSlots::Reserve(int placeholder, int threads, int per_thread) {
  Release();
  if (placeholder < 0 || threads <= 0 || per_thread <= 0) return false;
  int highest = placeholder;
  for (int index = 0; index < threads * per_thread; ++index) {
    const int slot = fcntl(placeholder, F_DUPFD_CLOEXEC, kLowestSlot);
    if (slot < 0) {
      Release();
      return false;
    }
    slots_.push_back(slot);
    highest = std::max(highest, slot);
  }
  per_thread_ = per_thread;
  placeholder_ = placeholder;
  limit_ = highest + 1;
  return true;
}

void ChildFdSlots::Release() {
  for (int slot : slots_) ::close(slot);
  slots_.clear();
  per_thread_ = 0;
  limit_ = 0;
  placeholder_ = -1;
}

LoweredChildFds::LoweredChildFds(const ChildFdSlots* slots, int thread) {
  if (slots == nullptr || slots->limit() == 0) return;
  slots_ = slots->ThreadSlots(thread);
  available_ = slots->per_thread();
  limit_ = slots->limit();
  placeholder_ = slots->placeholder();
  shared_ = true;
}

int LoweredChildFds::Lower(int fd) {
  if (fd < limit_ || !shared_) return fd;
  if (used_ == available_) {
    shared_ = false;
    return fd;
  }
  // dup3 replaces the placeholder in one step: the slot is never free for another thread's open.
  if (dup3(fd, slots_[used_], O_CLOEXEC) < 0) {
    shared_ = false;
    return fd;
  }
  return slots_[used_++];
}

void LoweredChildFds::Restore() {
  for (; used_ > 0; --used_) dup3(placeholder_, slots_[used_ - 1], O_CLOEXEC);
  shared_ = false;
}

}  // namespace parafork
