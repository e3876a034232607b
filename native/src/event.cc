// See event.h.
#include "event.h"

#include "child_table.h"
#include "log_file.h"

namespace parafork {

namespace {

Event Record(EventKind kind, uint64_t id) {
  Event event;
  event.fields[EventFields::kKind] = static_cast<double>(kind);
  event.fields[EventFields::kId] = static_cast<double>(id);
  return event;
}

}  // namespace

Event SpawnedEvent(uint64_t id, pid_t pid, int stdout_fd, int stderr_fd, int result_fd, uint64_t queued_ns,
                   uint64_t spawn_ns) {
  Event event = Record(EventKind::kSpawned, id);
  event.fields[SpawnedFields::kPid] = static_cast<double>(pid);
  event.fields[SpawnedFields::kStdoutFd] = static_cast<double>(stdout_fd);
  event.fields[SpawnedFields::kStderrFd] = static_cast<double>(stderr_fd);
  event.fields[SpawnedFields::kQueuedNs] = static_cast<double>(queued_ns);
  event.fields[SpawnedFields::kSpawnNs] = static_cast<double>(spawn_ns);
  event.fields[SpawnedFields::kResultFd] = static_cast<double>(result_fd);
  return event;
}

Event FailedEvent(uint64_t id, int error_number, Syscall syscall, uint64_t queued_ns, uint64_t spawn_ns) {
  Event event = Record(EventKind::kFailed, id);
  event.fields[FailedFields::kErrno] = static_cast<double>(error_number);
  event.fields[FailedFields::kSyscall] = static_cast<double>(syscall);
  event.fields[FailedFields::kQueuedNs] = static_cast<double>(queued_ns);
  event.fields[FailedFields::kSpawnNs] = static_cast<double>(spawn_ns);
  return event;
}

Event ExitedEvent(uint64_t id, const ExitInfo& exit, uint64_t duration_ns) {
  Event event = Record(EventKind::kExited, id);
  event.fields[ExitedFields::kExitCode] = static_cast<double>(exit.exit_code);
  event.fields[ExitedFields::kSignal] = static_cast<double>(exit.signal);
  event.fields[ExitedFields::kDurationNs] = static_cast<double>(duration_ns);
  event.fields[ExitedFields::kUserUs] = static_cast<double>(exit.user_us);
  event.fields[ExitedFields::kSystemUs] = static_cast<double>(exit.system_us);
  event.fields[ExitedFields::kMaxRssKb] = static_cast<double>(exit.max_rss_kb);
  return event;
}

Event LogClosedEvent(uint64_t id, const LogTotals& totals) {
  Event event = Record(EventKind::kLogClosed, id);
  event.fields[LogClosedFields::kPayloadBytes] = static_cast<double>(totals.payload_bytes);
  event.fields[LogClosedFields::kDroppedBytes] = static_cast<double>(totals.dropped_bytes);
  event.fields[LogClosedFields::kDiskBytes] = static_cast<double>(totals.disk_bytes);
  event.fields[LogClosedFields::kWriteErrno] = static_cast<double>(totals.write_errno);
  return event;
}

}  // namespace parafork
