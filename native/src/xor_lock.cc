// See xor_lock.h for the contract.
#include "xor_lock.h"

namespace parafork {

bool XorLock::MayEnter(Side side) const {
  const int mine = Index(side);
  const int other = 1 - mine;
  if (serial_) return holders_[0] + holders_[1] == 0;
  if (holders_[other] > 0) return false;
  // The turn passed to one class when the other drained: all of its waiters go in first.
  if (next_turn_ == mine) return true;
  if (next_turn_ == other) return false;
  // The other class is waiting: newcomers stop joining, so the holders drain and the turn passes.
  if (waiting_[other] > 0 && holders_[mine] > 0) return false;
  return true;
}

void XorLock::Lock(Side side) {
  std::unique_lock<std::mutex> guard(mutex_);
  const int mine = Index(side);
  if (!MayEnter(side)) {
    ++waiting_[mine];
    changed_.wait(guard, [&] { return MayEnter(side); });
    --waiting_[mine];
  }
  ++holders_[mine];
  // Every waiter of the class whose turn it was is in: fall back to the plain rule.
  if (next_turn_ == mine && waiting_[mine] == 0) next_turn_ = -1;
}

void XorLock::Unlock(Side side) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    const int mine = Index(side);
    const int other = 1 - mine;
    --holders_[mine];
    if (holders_[mine] == 0) {
      if (waiting_[other] > 0) next_turn_ = other;
      wake = true;
    }
    if (serial_) wake = true;
  }
  if (wake) changed_.notify_all();
}

int XorLock::Holders(Side side) {
  std::lock_guard<std::mutex> guard(mutex_);
  return holders_[Index(side)];
}

}  // namespace parafork
