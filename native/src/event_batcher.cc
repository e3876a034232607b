// See event_batcher.h.
#include "event_batcher.h"

#include <cstring>

namespace parafork {

EventBatcher* EventBatcher::Create(Napi::Env env, Napi::Function on_events) {
  EventBatcher* batcher = new EventBatcher();
  batcher->deliver_ = Napi::ThreadSafeFunction::New(
      env, on_events, "parafork-events", /*maxQueueSize=*/0, /*initialThreadCount=*/1,
      [batcher](Napi::Env) { delete batcher; });
  // An idle launcher must not keep the process alive; JavaScript refs it while work is outstanding.
  batcher->deliver_.Unref(env);
  return batcher;
}

void EventBatcher::Push(const Event& event) {
  bool wake = false;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (released_) return;
    pending_.push_back(event);
    wake = !scheduled_;
    scheduled_ = true;
  }
  if (wake) {
    deliver_.NonBlockingCall([this](Napi::Env env, Napi::Function on_events) { Deliver(env, on_events); });
  }
}

void EventBatcher::Deliver(Napi::Env env, Napi::Function on_events) {
  if (env == nullptr) return;  // the environment is being torn down
  {
    std::lock_guard<std::mutex> guard(mutex_);
    delivering_.swap(pending_);
    scheduled_ = false;
  }
  if (delivering_.empty()) return;
  const size_t values = delivering_.size() * kEventStride;
  Napi::Float64Array batch = Napi::Float64Array::New(env, values);
  std::memcpy(batch.Data(), delivering_.data(), values * sizeof(double));
  delivering_.clear();
  on_events.Call({batch});
}

void EventBatcher::Ref(Napi::Env env) { deliver_.Ref(env); }
void EventBatcher::Unref(Napi::Env env) { deliver_.Unref(env); }

void EventBatcher::Release() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (released_) return;
    released_ = true;
  }
  deliver_.Release();
}

}  // namespace parafork
