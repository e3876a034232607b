// When the event batcher wakes the JS thread (see event_batcher.h): the decisions alone, without
// locks, timers or JavaScript, so they can be tested on their own (native/test/delivery_gate_test.cc).
// The batcher calls every method under its mutex and does what the result says.
//
// The promise it keeps: an event that is pending always has a delivery queued, or sits in a
// coalescing window whose end will queue one. No event waits for a later event to carry it.
#pragma once

#include <cstddef>

namespace parafork {

class DeliveryGate {
 public:
  // What the batcher must do now.
  struct Action {
    bool queue_delivery = false;  // queue one delivery on the ThreadSafeFunction
    bool arm_window = false;      // (re)start the window's timer
  };

  // An event was added.
  Action OnPush() {
    ++pending_;
    return QueueIfNeeded();
  }

  // A queued delivery starts on the JS thread and takes every pending event; returns how many.
  size_t OnDeliveryStart() {
    queued_ = false;
    const size_t taken = pending_;
    pending_ = 0;
    return taken;
  }

  // The delivery's callback has returned. `saturated`: spawn requests wait for threads, so each of
  // them waits anyway and a short window of gathering costs none of them a thread.
  Action OnDeliveryEnd(bool saturated) {
    if (saturated && !gathering_) {
      gathering_ = true;
      return {.queue_delivery = false, .arm_window = true};
    }
    if (!saturated && gathering_) return EndWindow();
    return {};
  }

  // The window's timer fired. It may be a window that had already ended and been restarted since:
  // this one then ends early, which costs a wake-up, never an event.
  Action OnWindowEnd() { return EndWindow(); }

  bool gathering() const { return gathering_; }
  bool queued() const { return queued_; }
  size_t pending() const { return pending_; }

 private:
  Action EndWindow() {
    gathering_ = false;
    return QueueIfNeeded();
  }

  Action QueueIfNeeded() {
    if (pending_ == 0 || queued_ || gathering_) return {};
    queued_ = true;
    return {.queue_delivery = true, .arm_window = false};
  }

  size_t pending_ = 0;
  bool queued_ = false;     // a delivery is queued and has not started
  bool gathering_ = false;  // inside a window: its end queues the delivery
};

}  // namespace parafork
