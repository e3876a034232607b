// An EventSink for tests: keeps every event pushed from any thread and lets a test wait for them.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "../src/event.h"

namespace parafork {

class RecordingEventSink final : public EventSink {
 public:
  void Push(const Event& event) override {
    std::lock_guard<std::mutex> guard(mutex_);
    events_.push_back(event);
    changed_.notify_all();
  }

  // Every event once `count` have arrived, or what arrived by the deadline.
  std::vector<Event> WaitFor(size_t count, std::chrono::milliseconds deadline = std::chrono::seconds(10)) {
    std::unique_lock<std::mutex> guard(mutex_);
    changed_.wait_for(guard, deadline, [&] { return events_.size() >= count; });
    return events_;
  }

  std::vector<Event> Events() {
    std::lock_guard<std::mutex> guard(mutex_);
    return events_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<Event> events_;
};

inline EventKind KindOf(const Event& event) { return static_cast<EventKind>(event.fields[EventFields::kKind]); }
inline uint64_t IdOf(const Event& event) { return static_cast<uint64_t>(event.fields[EventFields::kId]); }

}  // namespace parafork
