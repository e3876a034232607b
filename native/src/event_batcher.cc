// See event_batcher.h.
#include "event_batcher.h"

#include <sys/timerfd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

namespace parafork {

namespace {

template <size_t kCount>
Napi::Object NamedNumbers(Napi::Env env, const EventFieldName (&names)[kCount]) {
  Napi::Object object = Napi::Object::New(env);
  for (const EventFieldName& field : names) object.Set(field.name, Napi::Number::New(env, static_cast<double>(field.index)));
  return object;
}

}  // namespace

Napi::Object EventLayout(Napi::Env env) {
  Napi::Object layout = Napi::Object::New(env);
  layout.Set("kinds", NamedNumbers(env, kEventKindNames));
  layout.Set("spawned", NamedNumbers(env, kSpawnedFieldNames));
  layout.Set("failed", NamedNumbers(env, kFailedFieldNames));
  layout.Set("exited", NamedNumbers(env, kExitedFieldNames));
  layout.Set("logClosed", NamedNumbers(env, kLogClosedFieldNames));
  return layout;
}

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

void EventBatcher::Push(const Event& event) { queue_.Push(event); }

bool EventBatcher::ArmWindow() {
  itimerspec window = {};
  window.it_value.tv_nsec = static_cast<long>(kCoalesceWindowNs);
  return timerfd_settime(window_timer_.get(), 0, &window, nullptr) == 0;
}

void EventBatcher::QueueDelivery() {
  deliver_.NonBlockingCall([this](Napi::Env env, Napi::Function on_events) { Deliver(env, on_events); });
}

void EventBatcher::Deliver(Napi::Env env, Napi::Function on_events) {
  if (env == nullptr) return;  // the environment is being torn down
  queue_.TakeAll(delivering_);
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
  // Released: the engine behind the busy probe may be gone (only the JS thread releases).
  if (!busy_ || queue_.Released()) return;
  // After the callback: it has issued whatever spawns these events led to.
  queue_.EndDelivery(busy_());
}

void EventBatcher::OnWindowEnd(uv_poll_t* handle, int /*status*/, int /*events*/) {
  auto* batcher = static_cast<EventBatcher*>(handle->data);
  uint64_t expirations = 0;
  ssize_t ignored = read(batcher->window_timer_.get(), &expirations, sizeof(expirations));
  (void)ignored;
  // The delivery this queues goes through the ThreadSafeFunction even though this is the JS
  // thread: its callback scope runs the microtasks the batch queues, as for every delivery.
  batcher->queue_.EndWindow();
}

void EventBatcher::Ref(Napi::Env env) { deliver_.Ref(env); }
void EventBatcher::Unref(Napi::Env env) { deliver_.Unref(env); }

void EventBatcher::Release() {
  if (!queue_.Release()) return;
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
