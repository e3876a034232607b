// One task attempt's log on disk: what its stdout and stderr pipes gave, as chunks, each one read
// of a pipe tagged once with its time and stream (issue 15 allows "each line or chunk tagged with
// its stream and a timestamp, as CRI's log format does"). A file opens with its format line, then
// holds chunks, each a header line and exactly `length` bytes as the task wrote them:
//
//   parafork-log 2
//   2026-12-06T18:08:00.123456789Z stdout 24
//   two lines\nand a half ...2026-12-06T18:08:00.223456789Z stderr 5
//   oops\n
//
// Lines are not looked at: a chunk may end mid-line (or mid-character), and the reader joins each
// stream's pieces back into lines (src/logs/log-format.ts). Why not CRI's format (a record a line,
// `<time> <stream> <P|F> <payload>`, which this file wrote before: readers still read it): for short
// lines it writes 1.76x the payload, and scanning every read for newlines, forming a record per line
// and pushing the 1.76x through the page cache was ~40% of the pump's CPU; with a header a chunk
// the pump neither scans nor copies a line (docs/benchmarks.md, "Task logs").
//
// Bounded as the kubelet's containerLogMaxSize/containerLogMaxFiles=2 are: the log is two files,
// `path` (written) and `path.1` (the one before), each at most max_bytes / 2, so the disk never
// holds more than max_bytes for a log however much the task writes. A chunk never straddles the two:
// when it would not fit in `path`, `path` is renamed over `path.1` (whose bytes are then dropped,
// the oldest first) and begun anew; a chunk larger than a whole file's room goes in pieces. Every
// file begun this way opens (after its format line) with a chunk of stream `parafork`:
//
//   2026-12-06T18:08:00.123456789Z parafork 16
//   offset 10485760\n
//
// meaning the task had written that many payload bytes before the next chunk. A reader that has
// seen fewer knows that the difference was dropped there, and says so (src/logs/log-reader.ts).
// A complete log (both pipes at EOF) ends with a `parafork` chunk `end <payload bytes>\n`:
// a follower stops there, and a log without it was cut short (the agent died).
//
// Never fails the task: a write the disk refuses (ENOSPC, EIO) drops that output, counted, and the
// pipes are still read, so the task neither blocks nor dies of a full log. Single-threaded: the
// log pump (log_pump.h) owns each LogFile. A chunk read into memory is one writev(2) of its header
// and the bytes (and the format line and offset chunk a new file still owes); one still in its pipe
// is the header's write and a splice(2) of the pipe's bytes into the file, never copied through the
// pump (AppendFromPipe): ~7% less of the pump's CPU per MiB than read and writev (measured with
// 100 children writing 16 MiB each, docs/benchmarks.md "Task logs: chunks").
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
  // Each file's half of the cap holds at least a header and some output.
  static constexpr uint64_t kMinimumMaxBytes = 64 * 1024;
  // The first line of every file the log writes: readers tell it from the CRI records of logs an
  // earlier agent wrote (no format line), which they still read.
  static constexpr char kFormatLine[] = "parafork-log 2\n";
  // The longest header: a timestamp (30), the longest stream name (8), a length (20), 2 spaces and a newline.
  static constexpr size_t kMaxHeaderBytes = 64;

  // `max_bytes` at least kMinimumMaxBytes (raised to it otherwise).
  // `create_when_written`: Open only notes the log, and the file is made at the first Append; a log
  // nothing was appended to leaves no file at all (no end chunk either). Creating a file is a
  // metadata write the disk's journal may hold up for milliseconds when it is busy, on the pump's
  // one thread: measured, a Task array of /bin/true indexes left the pump thousands of logs behind
  // (docs/arrays.md).
  LogFile(std::string path, uint64_t max_bytes, bool create_when_written = false);
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  // Creates (truncates) `path`, making the directory above it if it is missing (mode 0700: a log
  // may hold secrets).
  // 0 or an errno; on failure the log drops what is appended (counted).
  int Open();

  // What one read(2) of a stream returned, stamped `now` (CLOCK_REALTIME): one chunk (or, past
  // what a file holds, a few).
  void Append(LogStream stream, const char* data, size_t length, const timespec& now);

  // The same for `length` bytes waiting in the pipe `pipe_fd` (FIONREAD said so; the caller is its
  // only reader), moved into the file by splice(2) without passing through this process. Bytes the
  // log drops (a failed disk) are still taken from the pipe, read into `scratch`. Returns how many
  // it took (length, unless the pipe gave fewer).
  size_t AppendFromPipe(LogStream stream, int pipe_fd, size_t length, const timespec& now, char* scratch,
                        size_t scratch_bytes);

  // Writes the end chunk and closes the file; totals stay readable.
  void Close();

  const LogTotals& totals() const { return totals_; }
  const std::string& path() const { return path_; }

 private:
  // Writes what the file owes (format line, offset chunk), the header and `length` bytes with one
  // writev(2). `payload_bytes`: the task's bytes among them (0 for the log's own chunks).
  void WriteChunk(const char* stream_name, const char* payload, size_t length, uint64_t payload_bytes);
  // One chunk of `length` bytes from the pipe (AppendFromPipe); the bytes it took.
  size_t SpliceChunk(const char* stream_name, int pipe_fd, size_t length, char* scratch, size_t scratch_bytes);
  // After a splice that moved fewer bytes than `header` (written at `header_at`) announced: it is
  // written again saying `moved`. False if the file would not take it.
  bool ShortenHeader(char (&header)[kMaxHeaderBytes], size_t header_length, uint64_t header_at, size_t announced,
                     size_t moved);
  // Rotates first when `length` bytes would not fit; returns how much of them this file takes.
  size_t RoomFor(size_t length);
  void Rotate();
  void Dropped(uint64_t payload_bytes, int error_number);
  // Makes the directory (one level) and creates the file, owing its format line.
  int Create();
  // The log's own chunk (`offset N`, `end N`) is owed with the next write.
  void OweMarker(const char* kind);

  const std::string path_;
  const std::string previous_path_;  // path_ + ".1"
  const uint64_t file_limit_;        // max_bytes / 2
  UniqueFd fd_;
  bool create_when_written_;
  bool creation_deferred_ = false;   // Open was called; the file is made at the first Append
  bool failed_ = false;              // the disk refused a write or open: drop until the next rotation
  uint64_t file_bytes_ = 0;          // in path_
  uint64_t file_payload_ = 0;        // payload bytes in path_
  uint64_t previous_bytes_ = 0;      // in path_.1
  uint64_t previous_payload_ = 0;
  char timestamp_[32] = {};          // the current chunk's timestamp, formatted once an Append
  size_t timestamp_length_ = 0;
  // What the file owes before its next chunk: its format line and the offset chunk of a rotation
  // (at most ~15 + 64 + 28 bytes).
  char owed_[160] = {};
  size_t owed_length_ = 0;
  LogTotals totals_;
};

// `now` as RFC 3339 with nanoseconds, UTC (as the CRI format writes it): 30 characters and a NUL.
size_t FormatLogTimestamp(const timespec& now, char (&out)[32]);

}  // namespace parafork
