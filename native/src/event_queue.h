// The event batcher's thread-safe half, free of Node so it can be tested alone: events appended
// from any thread under a short lock, taken out whole by the delivering (JS) thread, and the
// DeliveryGate's decisions carried out through Wakeups (the batcher's ThreadSafeFunction and
// window timer in the addon, a recorder in native/test/event_queue_test.cc). Once released it
// drops what is pushed and asks for no more wake-ups.
#pragma once

#include <mutex>
#include <vector>

#include "delivery_gate.h"
#include "event.h"

namespace parafork {

class EventQueue {
 public:
  // How the queue wakes the delivering thread. Called with the queue's mutex held, so Release()
  // cannot slip in between the check of `released` and a wake-up.
  class Wakeups {
   public:
    // Starts (or restarts) the coalescing window's timer; false when it cannot start.
    virtual bool ArmWindow() = 0;
    // Queues one delivery on the delivering thread.
    virtual void QueueDelivery() = 0;

   protected:
    ~Wakeups() = default;
  };

  explicit EventQueue(Wakeups& wakeups) : wakeups_(wakeups) {}
  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;

  // Any thread.
  void Push(const Event& event);
  // Delivering thread, as a queued delivery starts: swaps every pending event into `batch` (which
  // must be empty; its capacity is reused).
  void TakeAll(std::vector<Event>& batch);
  // Delivering thread, once the batch has been handed on; `saturated` as DeliveryGate says.
  void EndDelivery(bool saturated);
  // Delivering thread: the window's timer fired.
  void EndWindow();
  // True the first time: from now on nothing is queued or woken.
  bool Release();
  bool Released();

 private:
  void Act(DeliveryGate::Action action);  // with mutex_ held

  Wakeups& wakeups_;
  std::mutex mutex_;
  std::vector<Event> pending_;
  DeliveryGate gate_;  // counts pending_ and decides when to wake the delivering thread
  bool released_ = false;
};

}  // namespace parafork
