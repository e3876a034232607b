// The event batcher's queue (native/src/event_queue.h) with the JS thread's wake-ups recorded:
// events from many threads all arrive, once each and in each thread's order; an idle engine gets a
// delivery per batch, a saturated one gathers until its window ends, a window that cannot start
// does not gather, and a released queue takes nothing and wakes nobody.
#include "../src/event_queue.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "recording_event_sink.h"

namespace parafork {
namespace {

// The JS thread's side as the batcher has it: counts the wake-ups asked for; ArmWindow can be
// made to fail as timerfd_settime might.
class RecordedWakeups final : public EventQueue::Wakeups {
 public:
  bool ArmWindow() override {
    std::lock_guard<std::mutex> guard(mutex_);
    ++windows_armed_;
    return window_timer_works_;
  }
  void QueueDelivery() override {
    std::lock_guard<std::mutex> guard(mutex_);
    ++deliveries_queued_;
    changed_.notify_all();
  }

  int windows_armed() {
    std::lock_guard<std::mutex> guard(mutex_);
    return windows_armed_;
  }
  int deliveries_queued() {
    std::lock_guard<std::mutex> guard(mutex_);
    return deliveries_queued_;
  }
  void BreakWindowTimer() { window_timer_works_ = false; }

  // Waits until more than `seen` deliveries have been queued; false at the deadline.
  bool WaitForDeliveryAfter(int seen) {
    std::unique_lock<std::mutex> guard(mutex_);
    return changed_.wait_for(guard, std::chrono::seconds(10), [&] { return deliveries_queued_ > seen; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  int windows_armed_ = 0;
  int deliveries_queued_ = 0;
  bool window_timer_works_ = true;
};

Event EventWithId(uint64_t id) { return FailedEvent(id, 0, Syscall::kNone, 0, 0); }

TEST(EventQueue, AnIdleEngineGetsOneDeliveryForABatchAndTheBatchHoldsEveryEventInOrder) {
  RecordedWakeups wakeups;
  EventQueue queue(wakeups);
  queue.Push(EventWithId(1));
  queue.Push(EventWithId(2));
  EXPECT_EQ(wakeups.deliveries_queued(), 1) << "the second event rides on the delivery already queued";
  std::vector<Event> batch;
  queue.TakeAll(batch);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(IdOf(batch[0]), 1u);
  EXPECT_EQ(IdOf(batch[1]), 2u);
  queue.EndDelivery(/*saturated=*/false);
  EXPECT_EQ(wakeups.windows_armed(), 0);
  queue.Push(EventWithId(3));
  EXPECT_EQ(wakeups.deliveries_queued(), 2) << "not saturated: the next event goes at once";
}

TEST(EventQueue, ASaturatedEngineGathersEventsUntilTheWindowEnds) {
  RecordedWakeups wakeups;
  EventQueue queue(wakeups);
  std::vector<Event> batch;
  queue.Push(EventWithId(1));
  queue.TakeAll(batch);
  queue.EndDelivery(/*saturated=*/true);
  EXPECT_EQ(wakeups.windows_armed(), 1);
  for (uint64_t id = 2; id <= 6; ++id) queue.Push(EventWithId(id));
  EXPECT_EQ(wakeups.deliveries_queued(), 1) << "inside the window nothing wakes the JS thread";
  queue.EndWindow();
  EXPECT_EQ(wakeups.deliveries_queued(), 2) << "the window's end delivers what gathered";
  batch.clear();
  queue.TakeAll(batch);
  EXPECT_EQ(batch.size(), 5u);
}

TEST(EventQueue, AWindowWhoseTimerCannotStartDoesNotGather) {
  RecordedWakeups wakeups;
  wakeups.BreakWindowTimer();
  EventQueue queue(wakeups);
  std::vector<Event> batch;
  queue.Push(EventWithId(1));
  queue.TakeAll(batch);
  queue.EndDelivery(/*saturated=*/true);
  queue.Push(EventWithId(2));
  EXPECT_EQ(wakeups.deliveries_queued(), 2) << "no timer would end the window: the event goes at once";
}

TEST(EventQueue, AReleasedQueueTakesNoEventsAndWakesNobody) {
  RecordedWakeups wakeups;
  EventQueue queue(wakeups);
  EXPECT_TRUE(queue.Release());
  EXPECT_FALSE(queue.Release()) << "only the first release counts";
  queue.Push(EventWithId(1));
  queue.EndWindow();
  queue.EndDelivery(/*saturated=*/false);
  EXPECT_EQ(wakeups.deliveries_queued(), 0);
  std::vector<Event> batch;
  queue.TakeAll(batch);
  EXPECT_TRUE(batch.empty());
}

// Producers on several threads and a delivering thread that takes a batch whenever a delivery was
// queued, saturated half the time: at the end every event has been taken exactly once, each
// producer's in the order it pushed them, and none is left waiting without a delivery queued.
TEST(EventQueue, EventsFromManyThreadsAllArriveOnceEachInEachThreadsOrder) {
  constexpr int kProducers = 4;
  constexpr uint64_t kEventsEach = 20'000;
  RecordedWakeups wakeups;
  EventQueue queue(wakeups);
  std::vector<std::thread> producers;
  for (int producer = 0; producer < kProducers; ++producer) {
    producers.emplace_back([&queue, producer] {
      for (uint64_t sequence = 0; sequence < kEventsEach; ++sequence) {
        queue.Push(EventWithId(static_cast<uint64_t>(producer) * kEventsEach + sequence));
      }
    });
  }
  std::map<int, uint64_t> next_of;  // producer -> the sequence number expected next
  uint64_t taken = 0;
  int deliveries_seen = 0;
  std::vector<Event> batch;
  bool saturated = false;
  while (taken < kProducers * kEventsEach) {
    if (!wakeups.WaitForDeliveryAfter(deliveries_seen)) {
      // Nothing was queued: only a window may hold events now; end it as its timer would.
      queue.EndWindow();
      ASSERT_TRUE(wakeups.WaitForDeliveryAfter(deliveries_seen)) << taken << " events taken, the rest stranded";
    }
    deliveries_seen = wakeups.deliveries_queued();
    queue.TakeAll(batch);
    for (const Event& event : batch) {
      const int producer = static_cast<int>(IdOf(event) / kEventsEach);
      ASSERT_EQ(IdOf(event) % kEventsEach, next_of[producer]) << "producer " << producer << " out of order";
      ++next_of[producer];
    }
    taken += batch.size();
    batch.clear();
    saturated = !saturated;
    queue.EndDelivery(saturated);
    if (saturated) queue.EndWindow();  // the window's timer fires at once in this test
  }
  for (std::thread& producer : producers) producer.join();
  EXPECT_EQ(taken, kProducers * kEventsEach);
}

}  // namespace
}  // namespace parafork
