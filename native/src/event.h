// The records the engine hands JavaScript, one per spawned, failed or exited child and per closed log: kEventStride
// doubles each, the kind first and the request id second. The layout is defined here and nowhere
// else: the named constructors below fill it, and the binding exports it (`eventStride`, and
// `eventLayout` built from the name tables below: event_batcher.cc) for src/launcher/event-batch.ts
// to read, so the two sides cannot drift apart.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

#include "syscall_id.h"

namespace parafork {

struct ExitInfo;   // child_table.h
struct LogTotals;  // log_file.h

constexpr size_t kEventStride = 8;
enum class EventKind : uint8_t { kSpawned = 1, kFailed = 2, kExited = 3, kLogClosed = 4 };

// Field indices inside one record.
struct EventFields {
  static constexpr size_t kKind = 0;
  static constexpr size_t kId = 1;
};
struct SpawnedFields {
  static constexpr size_t kPid = 2, kStdoutFd = 3, kStderrFd = 4, kQueuedNs = 5, kSpawnNs = 6, kResultFd = 7;
};
struct FailedFields {
  static constexpr size_t kErrno = 2, kSyscall = 3, kQueuedNs = 4, kSpawnNs = 5;
};
struct ExitedFields {
  static constexpr size_t kExitCode = 2, kSignal = 3, kDurationNs = 4, kUserUs = 5, kSystemUs = 6, kMaxRssKb = 7;
};
struct LogClosedFields {
  static constexpr size_t kPayloadBytes = 2, kDroppedBytes = 3, kDiskBytes = 4, kWriteErrno = 5;
};

// The names JavaScript reads the fields by (src/native/binding.ts: NativeEventLayout).
struct EventFieldName {
  const char* name;
  size_t index;
};
inline constexpr EventFieldName kEventKindNames[] = {
    {"spawned", static_cast<size_t>(EventKind::kSpawned)},
    {"failed", static_cast<size_t>(EventKind::kFailed)},
    {"exited", static_cast<size_t>(EventKind::kExited)},
    {"logClosed", static_cast<size_t>(EventKind::kLogClosed)},
};
inline constexpr EventFieldName kSpawnedFieldNames[] = {
    {"pid", SpawnedFields::kPid},           {"stdoutFd", SpawnedFields::kStdoutFd},
    {"stderrFd", SpawnedFields::kStderrFd}, {"queuedNs", SpawnedFields::kQueuedNs},
    {"spawnNs", SpawnedFields::kSpawnNs},   {"resultFd", SpawnedFields::kResultFd},
};
inline constexpr EventFieldName kFailedFieldNames[] = {
    {"errno", FailedFields::kErrno},
    {"syscall", FailedFields::kSyscall},
    {"queuedNs", FailedFields::kQueuedNs},
    {"spawnNs", FailedFields::kSpawnNs},
};
inline constexpr EventFieldName kExitedFieldNames[] = {
    {"exitCode", ExitedFields::kExitCode}, {"signal", ExitedFields::kSignal},
    {"durationNs", ExitedFields::kDurationNs}, {"userUs", ExitedFields::kUserUs},
    {"systemUs", ExitedFields::kSystemUs}, {"maxRssKb", ExitedFields::kMaxRssKb},
};
inline constexpr EventFieldName kLogClosedFieldNames[] = {
    {"payloadBytes", LogClosedFields::kPayloadBytes},
    {"droppedBytes", LogClosedFields::kDroppedBytes},
    {"diskBytes", LogClosedFields::kDiskBytes},
    {"writeErrno", LogClosedFields::kWriteErrno},
};

struct Event {
  double fields[kEventStride] = {};
};

// A child that has exec'd: its pid, the parent ends of its stdout and stderr pipes and its result
// file (-1: none; the event hands them to JavaScript), the time its request waited for a thread and
// the clone-to-exec time.
Event SpawnedEvent(uint64_t id, pid_t pid, int stdout_fd, int stderr_fd, int result_fd, uint64_t queued_ns,
                   uint64_t spawn_ns);
// A spawn that failed in `syscall` with `error_number`; spawn_ns is 0 when no clone was made.
Event FailedEvent(uint64_t id, int error_number, Syscall syscall, uint64_t queued_ns, uint64_t spawn_ns);
// A child reaped `duration_ns` after its clone; the exit code is -1 when a signal ended it.
Event ExitedEvent(uint64_t id, const ExitInfo& exit, uint64_t duration_ns);
// A task's log complete, both its pipes at EOF (log_pump.h): always after that task's spawned event.
Event LogClosedEvent(uint64_t id, const LogTotals& totals);

// Where the spawn threads and the reaper put events: the EventBatcher, or a test's recorder.
class EventSink {
 public:
  // Any thread.
  virtual void Push(const Event& event) = 0;

 protected:
  ~EventSink() = default;
};

}  // namespace parafork
