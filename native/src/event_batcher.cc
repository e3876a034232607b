// See event_batcher.h.
#include "event_batcher.h"

#include <sys/timerfd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace parafork {

EventBatcher* EventBatcher::Create(Napi::Env env, Napi::Function on_events) {
  UniqueFd timer(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!timer) throw std::system_error(errno, std::generic_category(), "timerfd_create");
  uv_loop_t* loop = nullptr;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
    throw std::system_error(EINVAL, std::generic_category(), "napi_get_uv_event_loop");
  }
  EventBatcher* batcher = new EventBatcher();
  batcher->window_timer_ = std::move(timer);
  if (int error = uv_poll_init(loop, &batcher->window_poll_, batcher->window_timer_.get()); error != 0) {
    delete batcher;
    throw std::system_error(-error, std::generic_category(), "uv_poll_init");
  }
  batcher->window_poll_.data = batcher;
  // The window alone never keeps the process alive: the ThreadSafeFunction's ref does while work is
  // outstanding (see Ref).
  uv_unref(reinterpret_cast<uv_handle_t*>(&batcher->window_poll_));
  batcher->owners_ = 1;
  if (int error = uv_poll_start(&batcher->window_poll_, UV_READABLE, &EventBatcher::OnWindowEnd); error != 0) {
    batcher->CloseWindow();
    throw std::system_error(-error, std::generic_category(), "uv_poll_start");
  }
  try {
    batcher->deliver_ = Napi::ThreadSafeFunction::New(
        env, on_events, "parafork-events", /*maxQueueSize=*/0, /*initialThreadCount=*/1,
        [batcher](Napi::Env) { batcher->Owned(-1); });
  } catch (...) {
    batcher->CloseWindow();
    throw;
  }
  batcher->owners_ = 2;
  // An idle launcher must not keep the process alive; JavaScript refs it while work is outstanding.
  batcher->deliver_.Unref(env);
  return batcher;
}

void EventBatcher::SetBusyProbe(std::function<bool()> busy) { busy_ = std::move(busy); }

void EventBatcher::Push(const Event& event) {
  std::lock_guard<std::mutex> guard(mutex_);
  if (released_) return;
  pending_.push_back(event);
  Act(gate_.OnPush());
}

void EventBatcher::Act(DeliveryGate::Action action) {
  if (action.arm_window) {
    itimerspec window = {};
    window.it_value.tv_nsec = static_cast<long>(kCoalesceWindowNs);
    // A window whose timer cannot start must not gather: nothing would end it.
    if (timerfd_settime(window_timer_.get(), 0, &window, nullptr) != 0) action = gate_.OnWindowEnd();
  }
  // Under mutex_: Release() cannot slip in between the check of released_ and this call.
  if (action.queue_delivery) {
    deliver_.NonBlockingCall([this](Napi::Env env, Napi::Function on_events) { Deliver(env, on_events); });
  }
}

void EventBatcher::Deliver(Napi::Env env, Napi::Function on_events) {
  if (env == nullptr) return;  // the environment is being torn down
  {
    std::lock_guard<std::mutex> guard(mutex_);
    delivering_.swap(pending_);
    gate_.OnDeliveryStart();
  }
  if (!delivering_.empty()) {
    const size_t values = delivering_.size() * kEventStride;
    if (buffer_.IsEmpty() || buffer_.Value().ElementLength() < values) {
      // Grown to the largest batch seen, so a steady stream reuses one array.
      buffer_ = Napi::Persistent(Napi::Float64Array::New(env, std::max(values, kInitialBufferEvents * kEventStride)));
    }
    Napi::Float64Array batch = buffer_.Value();
    std::memcpy(batch.Data(), delivering_.data(), values * sizeof(double));
    delivering_.clear();
    on_events.Call({batch, Napi::Number::New(env, static_cast<double>(values))});
  }
  {
    std::lock_guard<std::mutex> guard(mutex_);
    // Released: the engine behind the busy probe may be gone (only the JS thread releases).
    if (released_ || !busy_) return;
  }
  // After the callback: it has issued whatever spawns these events led to.
  const bool saturated = busy_();
  std::lock_guard<std::mutex> guard(mutex_);
  if (!released_) Act(gate_.OnDeliveryEnd(saturated));
}

void EventBatcher::OnWindowEnd(uv_poll_t* handle, int /*status*/, int /*events*/) {
  auto* batcher = static_cast<EventBatcher*>(handle->data);
  uint64_t expirations = 0;
  ssize_t ignored = read(batcher->window_timer_.get(), &expirations, sizeof(expirations));
  (void)ignored;
  std::lock_guard<std::mutex> guard(batcher->mutex_);
  // The delivery this queues goes through the ThreadSafeFunction even though this is the JS
  // thread: its callback scope runs the microtasks the batch queues, as for every delivery.
  if (!batcher->released_) batcher->Act(batcher->gate_.OnWindowEnd());
}

void EventBatcher::Ref(Napi::Env env) { deliver_.Ref(env); }
void EventBatcher::Unref(Napi::Env env) { deliver_.Unref(env); }

void EventBatcher::Release() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (released_) return;
    released_ = true;
  }
  CloseWindow();
  deliver_.Release();
}

void EventBatcher::CloseWindow() {
  uv_poll_stop(&window_poll_);
  uv_close(reinterpret_cast<uv_handle_t*>(&window_poll_),
           [](uv_handle_t* handle) { static_cast<EventBatcher*>(handle->data)->Owned(-1); });
}

void EventBatcher::Owned(int delta) {
  owners_ += delta;
  if (owners_ == 0) delete this;
}

}  // namespace parafork
