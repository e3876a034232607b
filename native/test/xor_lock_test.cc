// The XOR lock's contract (native/src/xor_lock.h): forks share it, fd creators share it, the two
// classes exclude each other, and neither class can starve the other.
#include "../src/xor_lock.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

namespace parafork {
namespace {

using Side = XorLock::Side;
using namespace std::chrono_literals;

// Polls until `condition` holds or the deadline passes; returns whether it held.
template <typename Condition>
bool Eventually(Condition condition, std::chrono::milliseconds deadline = 2000ms) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return condition();
}

TEST(XorLock, ForksHoldTheLockTogether) {
  XorLock lock;
  lock.Lock(Side::kFork);
  std::atomic<bool> second_fork_in{false};
  std::thread second([&] {
    lock.Lock(Side::kFork);
    second_fork_in = true;
    lock.Unlock(Side::kFork);
  });
  EXPECT_TRUE(Eventually([&] { return second_fork_in.load(); })) << "a second fork waited for the first";
  second.join();
  lock.Unlock(Side::kFork);
}

TEST(XorLock, FdCreatorsHoldTheLockTogether) {
  XorLock lock;
  lock.Lock(Side::kFdCreate);
  std::atomic<bool> second_in{false};
  std::thread second([&] {
    lock.Lock(Side::kFdCreate);
    second_in = true;
    lock.Unlock(Side::kFdCreate);
  });
  EXPECT_TRUE(Eventually([&] { return second_in.load(); }));
  second.join();
  lock.Unlock(Side::kFdCreate);
}

TEST(XorLock, AnFdCreatorWaitsWhileAForkHoldsIt) {
  XorLock lock;
  lock.Lock(Side::kFork);
  std::atomic<bool> fd_creator_in{false};
  std::thread fd_creator([&] {
    lock.Lock(Side::kFdCreate);
    fd_creator_in = true;
    EXPECT_EQ(lock.Holders(Side::kFork), 0);
    lock.Unlock(Side::kFdCreate);
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(fd_creator_in.load()) << "fd creation ran during a fork";
  lock.Unlock(Side::kFork);
  EXPECT_TRUE(Eventually([&] { return fd_creator_in.load(); }));
  fd_creator.join();
}

TEST(XorLock, AForkWaitsWhileAnFdCreatorHoldsIt) {
  XorLock lock;
  lock.Lock(Side::kFdCreate);
  std::atomic<bool> fork_in{false};
  std::thread fork([&] {
    lock.Lock(Side::kFork);
    fork_in = true;
    EXPECT_EQ(lock.Holders(Side::kFdCreate), 0);
    lock.Unlock(Side::kFork);
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(fork_in.load()) << "a fork ran during fd creation";
  lock.Unlock(Side::kFdCreate);
  EXPECT_TRUE(Eventually([&] { return fork_in.load(); }));
  fork.join();
}

// Takes `side` of the lock on another thread, so a starved acquisition fails the test instead of
// hanging it: true when it got in within the deadline.
bool AcquiresWithin(XorLock& lock, Side side, std::chrono::milliseconds deadline, std::atomic<bool>& stop_others) {
  std::atomic<bool> acquired{false};
  std::thread taker([&] {
    lock.Lock(side);
    acquired = true;
    lock.Unlock(side);
  });
  const bool in_time = Eventually([&] { return acquired.load(); }, deadline);
  if (!in_time) stop_others = true;  // let the starving side in, so the thread can be joined
  taker.join();
  return in_time;
}

// Forks that overlap forever would keep a plain shared lock held for good; a waiting fd creator
// must still get in, and quickly.
TEST(XorLock, OverlappingForksCannotStarveAnFdCreator) {
  XorLock lock;
  std::atomic<bool> stop{false};
  std::atomic<long> forks_done{0};
  std::vector<std::thread> forkers;
  for (int index = 0; index < 4; ++index) {
    forkers.emplace_back([&] {
      while (!stop) {
        lock.Lock(Side::kFork);
        std::this_thread::sleep_for(200us);
        lock.Unlock(Side::kFork);
        ++forks_done;
      }
    });
  }
  ASSERT_TRUE(Eventually([&] { return forks_done.load() > 20; }));
  for (int round = 0; round < 20 && !stop; ++round) {
    EXPECT_TRUE(AcquiresWithin(lock, Side::kFdCreate, 500ms, stop)) << "fd creator starved in round " << round;
  }
  const long forks_before = forks_done.load();
  EXPECT_TRUE(stop || Eventually([&] { return forks_done.load() > forks_before + 20; })) << "forks stalled";
  stop = true;
  for (std::thread& forker : forkers) forker.join();
}

TEST(XorLock, OverlappingFdCreatorsCannotStarveAFork) {
  XorLock lock;
  std::atomic<bool> stop{false};
  std::vector<std::thread> creators;
  for (int index = 0; index < 4; ++index) {
    creators.emplace_back([&] {
      while (!stop) {
        lock.Lock(Side::kFdCreate);
        std::this_thread::sleep_for(200us);
        lock.Unlock(Side::kFdCreate);
      }
    });
  }
  std::this_thread::sleep_for(20ms);
  for (int round = 0; round < 20 && !stop; ++round) {
    EXPECT_TRUE(AcquiresWithin(lock, Side::kFork, 500ms, stop)) << "fork starved in round " << round;
  }
  stop = true;
  for (std::thread& creator : creators) creator.join();
}

// Every thread of the class whose turn came goes in together, not one at a time.
TEST(XorLock, WaitingForksEnterTogetherWhenTheTurnPasses) {
  XorLock lock;
  lock.Lock(Side::kFdCreate);
  std::atomic<int> forks_in{0};
  std::atomic<bool> release{false};
  std::vector<std::thread> forks;
  for (int index = 0; index < 3; ++index) {
    forks.emplace_back([&] {
      lock.Lock(Side::kFork);
      ++forks_in;
      while (!release) std::this_thread::sleep_for(1ms);
      lock.Unlock(Side::kFork);
    });
  }
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(forks_in.load(), 0);
  lock.Unlock(Side::kFdCreate);
  EXPECT_TRUE(Eventually([&] { return forks_in.load() == 3; })) << "only " << forks_in.load() << " forks went in";
  release = true;
  for (std::thread& fork : forks) fork.join();
}

TEST(XorLock, SerialModeLetsOneHolderInAtATime) {
  XorLock lock(/*serial=*/true);
  lock.Lock(Side::kFork);
  std::atomic<bool> second_fork_in{false};
  std::thread second([&] {
    lock.Lock(Side::kFork);
    second_fork_in = true;
    lock.Unlock(Side::kFork);
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(second_fork_in.load()) << "serial mode let two forks in";
  lock.Unlock(Side::kFork);
  EXPECT_TRUE(Eventually([&] { return second_fork_in.load(); }));
  second.join();
}

}  // namespace
}  // namespace parafork
