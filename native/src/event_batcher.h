// Spawn and exit events from the spawn threads and the reaper, delivered to JavaScript in batches.
// Producers append under a short lock and wake the JS thread at most once per batch through one
// ThreadSafeFunction; the JS thread swaps the whole batch out and passes it as one Float64Array and
// its length, so a burst of thousands of exits costs one callback, not thousands. The array is
// reused from batch to batch: JavaScript reads it inside the callback and keeps nothing.
//
// Under load the batcher also coalesces. Each wake-up of the JS thread costs more than the events it
// delivers (measured on a 2-CPU VM at c=50: ~1.8 wake-ups a spawn, ~64 us of JS-thread time a
// spawn), so while the engine is saturated (the busy probe says spawn requests are already waiting
// for threads, so every one of them waits anyway) a delivery is followed by a window of
// kCoalesceWindowNs in which producers do not wake the JS thread: a timer on the JS thread's own
// event loop delivers what gathered at the window's end. When the engine is not saturated every
// event is delivered at once, so a lone spawn resolves as soon as its child has exec'd.
#pragma once

#include <napi.h>
#include <uv.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "delivery_gate.h"
#include "unique_fd.h"

namespace parafork {

// One event is kEventStride doubles; the layout is mirrored in src/launcher/event-batch.ts.
//   spawned: [1, id, pid, stdoutFd, stderrFd, queuedNs, spawnNs, 0]
//   failed:  [2, id, errno, syscall, queuedNs, spawnNs, 0, 0]
//   exited:  [3, id, exitCode (-1: signal), signal, durationNs, userUs, systemUs, maxRssKb]
//   logClosed: [4, id, payloadBytes, droppedBytes, diskBytes, writeErrno, 0, 0] (after its spawned)
constexpr size_t kEventStride = 8;
enum class EventKind : uint8_t { kSpawned = 1, kFailed = 2, kExited = 3, kLogClosed = 4 };

struct Event {
  double fields[kEventStride];
};

class EventBatcher {
 public:
  // How long events gather after a delivery while the engine is saturated: at most this much added
  // to a spawn's resolution then, when requests already wait for a thread. Measured at c=50 on the
  // 2-CPU VM against the C limit in the same rounds (medians of 6): 0.25 ms 0.93x, 0.5 ms 0.95x,
  // 1 ms 0.97x, with the c=50 p50 spawn latency no higher (14.1 ms) and c=1 and c=10 unchanged.
  static constexpr uint64_t kCoalesceWindowNs = 1'000'000;

  // The batcher deletes itself once its ThreadSafeFunction is finalized and its timer closed (after
  // Release() and the last queued delivery), so a delivery already queued can never outlive it.
  // Throws std::system_error when the timer cannot be made.
  static EventBatcher* Create(Napi::Env env, Napi::Function on_events);
  EventBatcher(const EventBatcher&) = delete;
  EventBatcher& operator=(const EventBatcher&) = delete;

  // JS thread, before the first event: true while spawn requests wait for threads.
  void SetBusyProbe(std::function<bool()> busy);

  // Any thread.
  void Push(const Event& event);

  // JS thread: keep the event loop alive while work is outstanding, like a child_process handle.
  void Ref(Napi::Env env);
  void Unref(Napi::Env env);
  // JS thread or teardown: no more deliveries after this.
  void Release();

 private:
  EventBatcher() = default;
  void Deliver(Napi::Env env, Napi::Function on_events);
  void Act(DeliveryGate::Action action);  // with mutex_ held
  static void OnWindowEnd(uv_poll_t* handle, int status, int events);
  void CloseWindow();  // JS thread: closes the timer's handle, which then drops its ownership
  void Owned(int delta);  // JS thread: counts the TSFN and the timer handle; deletes at zero

  Napi::ThreadSafeFunction deliver_;
  std::function<bool()> busy_;
  std::mutex mutex_;
  std::vector<Event> pending_;
  DeliveryGate gate_;  // counts pending_ and decides when to wake the JS thread
  bool released_ = false;
  // JS thread only.
  std::vector<Event> delivering_;  // reused so a steady stream allocates nothing
  static constexpr size_t kInitialBufferEvents = 256;
  Napi::Reference<Napi::Float64Array> buffer_;  // the array handed to JavaScript
  UniqueFd window_timer_;  // a timerfd: nanosecond windows (libuv's own timers count milliseconds)
  uv_poll_t window_poll_ = {};
  int owners_ = 0;
};

}  // namespace parafork
