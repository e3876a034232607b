// See event_queue.h.
#include "event_queue.h"

namespace parafork {

void EventQueue::Push(const Event& event) {
  std::lock_guard<std::mutex> guard(mutex_);
  if (released_) return;
  pending_.push_back(event);
  Act(gate_.OnPush());
}

void EventQueue::TakeAll(std::vector<Event>& batch) {
  std::lock_guard<std::mutex> guard(mutex_);
  batch.swap(pending_);
  gate_.OnDeliveryStart();
}

void EventQueue::EndDelivery(bool saturated) {
  std::lock_guard<std::mutex> guard(mutex_);
  if (!released_) Act(gate_.OnDeliveryEnd(saturated));
}

void EventQueue::EndWindow() {
  std::lock_guard<std::mutex> guard(mutex_);
  if (!released_) Act(gate_.OnWindowEnd());
}

bool EventQueue::Release() {
  std::lock_guard<std::mutex> guard(mutex_);
  if (released_) return false;
  released_ = true;
  return true;
}

bool EventQueue::Released() {
  std::lock_guard<std::mutex> guard(mutex_);
  return released_;
}

void EventQueue::Act(DeliveryGate::Action action) {
  // A window whose timer cannot start must not gather: nothing would end it.
  if (action.arm_window && !wakeups_.ArmWindow()) action = gate_.OnWindowEnd();
  if (action.queue_delivery) wakeups_.QueueDelivery();
}

}  // namespace parafork
