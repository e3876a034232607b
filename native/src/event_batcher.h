// Spawn and exit events from the spawn threads and the reaper, delivered to JavaScript in batches.
// Producers append under a short lock and wake the JS thread at most once per batch through one
// ThreadSafeFunction; the JS thread swaps the whole batch out and passes it as one Float64Array,
// so a burst of thousands of exits costs one callback, not thousands.
#pragma once

#include <napi.h>

#include <cstdint>
#include <mutex>
#include <vector>

namespace parafork {

// One event is kEventStride doubles; the layout is mirrored in src/launcher/native-binding.ts.
//   spawned: [1, id, pid, stdoutFd, stderrFd, queuedNs, spawnNs, 0]
//   failed:  [2, id, errno, syscall, queuedNs, spawnNs, 0, 0]
//   exited:  [3, id, exitCode (-1: signal), signal, durationNs, userUs, systemUs, maxRssKb]
constexpr size_t kEventStride = 8;
enum class EventKind : uint8_t { kSpawned = 1, kFailed = 2, kExited = 3 };

struct Event {
  double fields[kEventStride];
};

class EventBatcher {
 public:
  // The batcher deletes itself when its ThreadSafeFunction is finalized (after Release() and the
  // last queued delivery), so a delivery already queued can never outlive it.
  static EventBatcher* Create(Napi::Env env, Napi::Function on_events);
  EventBatcher(const EventBatcher&) = delete;
  EventBatcher& operator=(const EventBatcher&) = delete;

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

  Napi::ThreadSafeFunction deliver_;
  std::mutex mutex_;
  std::vector<Event> pending_;
  std::vector<Event> delivering_;  // JS thread only: reused so a steady stream allocates nothing
  bool scheduled_ = false;
  bool released_ = false;
};

}  // namespace parafork
