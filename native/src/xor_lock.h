// The two-class lock Go 1.21 introduced around fork (golang/go#23558): forks share it with each
// other, fd creators share it with each other, and the two classes exclude each other. A fork
// must not run while another thread is between creating an fd and marking it close-on-exec, or
// the child inherits it; forks themselves need no exclusion from one another.
//
// Fairness: while one class holds the lock and the other class is waiting, newcomers of the
// holding class wait too, so the lock drains and passes over. Neither class can starve the other.
// `serial` mode turns it into one plain mutex for both classes (Go before 1.21).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace parafork {

class XorLock {
 public:
  enum class Side : uint8_t { kFork = 0, kFdCreate = 1 };

  explicit XorLock(bool serial = false) : serial_(serial) {}
  XorLock(const XorLock&) = delete;
  XorLock& operator=(const XorLock&) = delete;

  void Lock(Side side);
  void Unlock(Side side);

  // For tests and stats: how many holders each side has right now.
  int Holders(Side side);

 private:
  static int Index(Side side) { return static_cast<int>(side); }
  bool MayEnter(Side side) const;

  const bool serial_;
  std::mutex mutex_;
  std::condition_variable changed_;
  int holders_[2] = {0, 0};
  int waiting_[2] = {0, 0};
  // Set when a class drains while the other waits: that class goes next, before any newcomer.
  int next_turn_ = -1;
};

// Holds one side of an XorLock for a scope; a null lock means "no lock" (lockMode 'free').
class XorLockGuard {
 public:
  XorLockGuard(XorLock* lock, XorLock::Side side) : lock_(lock), side_(side) {
    if (lock_ != nullptr) lock_->Lock(side_);
  }
  ~XorLockGuard() {
    if (lock_ != nullptr) lock_->Unlock(side_);
  }
  XorLockGuard(const XorLockGuard&) = delete;
  XorLockGuard& operator=(const XorLockGuard&) = delete;

 private:
  XorLock* lock_;
  XorLock::Side side_;
};

}  // namespace parafork
