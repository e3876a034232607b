// One task attempt's log on disk: what its stdout and stderr pipes gave, as lines in the CRI log
// format the kubelet writes (kubernetes/cri-api, "CRI container log format"), one record a line:
//
//   2026-12-06T18:08:00.123456789Z stdout F a complete line
//   2026-12-06T18:08:00.123456789Z stderr P the start of a line that goes on in the next record
//
// `F` ends a line (its newline is the record's own), `P` is part of one: the payload of every read
// that did not end in a newline, and the pieces of a line longer than kMaxRecordPayload.
//
// Bounded as the kubelet's containerLogMaxSize/containerLogMaxFiles=2 are: the log is two files,
// `path` (written) and `path.1` (the one before), each at most max_bytes / 2, so the disk never
// holds more than max_bytes for a log however much the task writes. When `path` would pass its
// half it is renamed over `path.1` (whose bytes are then dropped, the oldest first) and begun
// anew. Every file begun this way opens with a record of stream `parafork`:
//
//   2026-12-06T18:08:00.123456789Z parafork F offset 10485760
//
// meaning the task had written that many payload bytes before the next record. A reader that has
// seen fewer knows that the difference was dropped there, and says so (src/logs/log-reader.ts).
// A complete log (both pipes at EOF) ends with `parafork F end <payload bytes>`:
// a follower stops there, and a log without it was cut short (the agent died).
//
// Never fails the task: a write the disk refuses (ENOSPC, EIO) drops that output, counted, and the
// pipes are still read, so the task neither blocks nor dies of a full log. Single-threaded: the
// log pump (log_pump.h) owns each LogFile.
//
// The records of one Append are formed in a buffer the caller lends (`records`) and written with
// one write(2): the pump lends every log of its thread the same one, as it is empty between calls.
// A buffer per log would keep a read's worth of records (up to ~115 KiB for 64 KiB of short lines)
// in memory for every open log: +110 MB of agent RSS at 1,000 Tasks writing at once (bench:logs,
// docs/benchmarks.md).
#pragma once

#include <time.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "unique_fd.h"

namespace parafork {

enum class LogStream : uint8_t { kStdout = 0, kStderr = 1 };

struct LogTotals {
  uint64_t payload_bytes = 0;  // what the task wrote (and the log took in)
  uint64_t dropped_bytes = 0;  // payload bytes no longer on disk: rotated away, or refused by it
  uint64_t disk_bytes = 0;     // bytes of both files now
  int write_errno = 0;         // the first error the disk gave, 0 if none
};

class LogFile {
 public:
  // Below this a single record (up to kMaxRecordPayload and its prefix) might not fit in a half.
  static constexpr uint64_t kMinimumMaxBytes = 64 * 1024;
  // Longer lines are cut into `P` records of at most this much, as containerd's CRI plugin does.
  static constexpr size_t kMaxRecordPayload = 16 * 1024;

  // `max_bytes` at least kMinimumMaxBytes (raised to it otherwise). `records` must outlive the log
  // and be used by no other thread while it appends or closes; it is left empty after each call.
  // `create_when_written`: Open only notes the log, and the file is made at the first Append; a log
  // nothing was appended to leaves no file at all (no end record either). Creating a file is a
  // metadata write the disk's journal may hold up for milliseconds when it is busy, on the pump's
  // one thread: measured, a Task array of /bin/true indexes left the pump thousands of logs behind
  // (docs/arrays.md).
  LogFile(std::string path, uint64_t max_bytes, std::string& records, bool create_when_written = false);
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  // Creates (truncates) `path`, making the directory above it if it is missing (mode 0700: a log
  // may hold secrets).
  // 0 or an errno; on failure the log drops what is appended (counted).
  int Open();

  // What one read(2) of a stream returned, stamped `now` (CLOCK_REALTIME).
  void Append(LogStream stream, const char* data, size_t length, const timespec& now);

  // Writes the end record and closes the file; totals stay readable.
  void Close();

  const LogTotals& totals() const { return totals_; }
  const std::string& path() const { return path_; }

 private:
  // Adds one record to out_, first writing out_ and rotating when the record would not fit.
  // `payload_bytes`: the task's bytes it carries (its payload, and the newline an F record ends).
  void AddRecord(const char* stream_name, char tag, const char* payload, size_t length, uint64_t payload_bytes);
  // Forms prefix_ for `stream_name` (a constant's address) unless it is formed already.
  void PreparePrefix(const char* stream_name);
  void Flush();
  void Rotate();
  void Dropped(uint64_t payload_bytes, int error_number);
  // Makes the directory (one level) and creates the file.
  int Create();

  const std::string path_;
  const std::string previous_path_;  // path_ + ".1"
  const uint64_t file_limit_;        // max_bytes / 2
  UniqueFd fd_;
  bool create_when_written_;
  bool creation_deferred_ = false;   // Open was called; the file is made at the first Append
  bool failed_ = false;              // the disk refused a write or open: drop until the next rotation
  std::string& out_;                 // records not yet written (the lent buffer)
  uint64_t out_payload_ = 0;         // payload bytes in out_
  uint64_t file_bytes_ = 0;          // in path_
  uint64_t file_payload_ = 0;        // payload bytes in path_
  uint64_t previous_bytes_ = 0;      // in path_.1
  uint64_t previous_payload_ = 0;
  char timestamp_[32] = {};          // the current records' timestamp, formatted once an Append
  size_t timestamp_length_ = 0;
  // `<timestamp> <stream> <tag> ` of the records being formed, for the stream it names (null: none
  // since the timestamp changed); the tag is set per record.
  char prefix_[64] = {};
  size_t prefix_length_ = 0;
  const char* prefix_stream_ = nullptr;
  LogTotals totals_;
};

// `now` as the CRI format writes it (RFC 3339 with nanoseconds, UTC): 30 characters and a NUL.
size_t FormatLogTimestamp(const timespec& now, char (&out)[32]);

}  // namespace parafork
