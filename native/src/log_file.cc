// See log_file.h.
#include "log_file.h"

#include <fcntl.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace parafork {

namespace {

constexpr const char* kStreamNames[] = {"stdout", "stderr"};
constexpr const char* kMarkerStream = "parafork";
constexpr size_t kFormatLineBytes = sizeof(LogFile::kFormatLine) - 1;
// Kept free in every file for the end chunk (`end <20 digits>\n` and its header), so that closing
// never rotates nor passes the cap.
constexpr uint64_t kEndChunkBytes = LogFile::kMaxHeaderBytes + 32;

// 0 or an errno; retries what a regular file may write short (a signal, a nearly full disk).
int WriteAll(int fd, struct iovec* parts, int count) {
  while (count > 0) {
    const ssize_t written = writev(fd, parts, count);
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (written == 0) return ENOSPC;
    size_t left = static_cast<size_t>(written);
    while (count > 0 && left >= parts->iov_len) {
      left -= parts->iov_len;
      ++parts;
      --count;
    }
    if (count > 0) {
      parts->iov_base = static_cast<char*>(parts->iov_base) + left;
      parts->iov_len -= left;
    }
  }
  return 0;
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? std::string() : path.substr(0, slash);
}

// `<timestamp> <stream> <length>\n` into `out` (kMaxHeaderBytes); its length.
size_t FormatHeader(const char* timestamp, size_t timestamp_length, const char* stream_name, size_t length, char* out) {
  memcpy(out, timestamp, timestamp_length);
  const int rest = snprintf(out + timestamp_length, LogFile::kMaxHeaderBytes - timestamp_length, " %s %zu\n", stream_name, length);
  return timestamp_length + (rest < 0 ? 0 : static_cast<size_t>(rest));
}

}  // namespace

size_t FormatLogTimestamp(const timespec& now, char (&out)[32]) {
  struct tm utc = {};
  gmtime_r(&now.tv_sec, &utc);
  const int length = snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", utc.tm_year + 1900,
                              utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, now.tv_nsec);
  return length < 0 ? 0 : static_cast<size_t>(length);
}

LogFile::LogFile(std::string path, uint64_t max_bytes, bool create_when_written)
    : path_(std::move(path)),
      previous_path_(path_ + ".1"),
      file_limit_((max_bytes < kMinimumMaxBytes ? kMinimumMaxBytes : max_bytes) / 2),
      create_when_written_(create_when_written) {}

int LogFile::Open() {
  if (create_when_written_) {
    creation_deferred_ = true;
    return 0;
  }
  return Create();
}

int LogFile::Create() {
  // O_NOFOLLOW: the logs directory is the agent's, but a symlink there must never redirect a task's output.
  const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW;
  // The directory first: it is new for most logs (a Task's first attempt), and mkdir(2) then
  // costs one system call where a failed open(2) and a retry would cost two.
  const std::string directory = DirectoryOf(path_);
  if (!directory.empty() && mkdir(directory.c_str(), 0700) == -1 && errno != EEXIST) {
    failed_ = true;
    return totals_.write_errno = errno;
  }
  fd_.reset(open(path_.c_str(), flags, 0600));
  if (!fd_) {
    failed_ = true;
    return totals_.write_errno = errno;
  }
  // No path.1 is removed here: an attempt's log name is never used twice (attempts count up, and a
  // Task made again has another uid), and the unlink would cost a system call every spawn.
  memcpy(owed_, kFormatLine, kFormatLineBytes);
  owed_length_ = kFormatLineBytes;
  return 0;
}

void LogFile::Append(LogStream stream, const char* data, size_t length, const timespec& now) {
  if (length == 0) return;
  if (creation_deferred_) {
    creation_deferred_ = false;
    Create();  // a log that cannot be made drops what is appended (counted), as at Open
  }
  timestamp_length_ = FormatLogTimestamp(now, timestamp_);
  const char* stream_name = kStreamNames[static_cast<int>(stream)];
  while (length > 0) {
    const size_t piece = RoomFor(length);
    WriteChunk(stream_name, data, piece, piece);
    data += piece;
    length -= piece;
  }
}

size_t LogFile::AppendFromPipe(LogStream stream, int pipe_fd, size_t length, const timespec& now, char* scratch,
                               size_t scratch_bytes) {
  if (length == 0) return 0;
  if (creation_deferred_) {
    creation_deferred_ = false;
    Create();
  }
  timestamp_length_ = FormatLogTimestamp(now, timestamp_);
  const char* stream_name = kStreamNames[static_cast<int>(stream)];
  size_t taken = 0;
  while (taken < length) {
    const size_t piece = RoomFor(length - taken);
    const size_t moved = SpliceChunk(stream_name, pipe_fd, piece, scratch, scratch_bytes);
    taken += moved;
    if (moved < piece) break;  // the pipe held less than it said: never loop on it
  }
  return taken;
}

size_t LogFile::SpliceChunk(const char* stream_name, int pipe_fd, size_t length, char* scratch, size_t scratch_bytes) {
  size_t moved = 0;
  if (!failed_ && fd_) {
    char header[kMaxHeaderBytes];
    const size_t header_length = FormatHeader(timestamp_, timestamp_length_, stream_name, length, header);
    const uint64_t header_at = file_bytes_ + owed_length_;  // the file is written in order from 0
    struct iovec parts[2] = {{owed_, owed_length_}, {header, header_length}};
    struct iovec* first = owed_length_ > 0 ? parts : parts + 1;
    const size_t bytes = owed_length_ + header_length;
    if (int error_number = WriteAll(fd_.get(), first, static_cast<int>(parts + 2 - first)); error_number != 0) {
      failed_ = true;
      if (totals_.write_errno == 0) totals_.write_errno = error_number;
    } else {
      owed_length_ = 0;
      file_bytes_ += bytes;
      totals_.disk_bytes += bytes;
      while (moved < length) {
        const ssize_t spliced = splice(pipe_fd, nullptr, fd_.get(), nullptr, length - moved, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (spliced < 0 && errno == EINTR) continue;
        if (spliced < 0 && errno != EAGAIN) {
          failed_ = true;  // the disk refused: nothing more goes to this file until the next rotation
          if (totals_.write_errno == 0) totals_.write_errno = errno;
        }
        // EAGAIN (or 0): the pipe held less than FIONREAD said, another reader having taken the
        // rest (log_pump.cc, ReadChunk).
        if (spliced <= 0) break;
        moved += static_cast<size_t>(spliced);
      }
      if (moved < length && !ShortenHeader(header, header_length, header_at, length, moved)) failed_ = true;
      file_bytes_ += moved;
      file_payload_ += moved;
      totals_.disk_bytes += moved;
      totals_.payload_bytes += moved;
    }
  }
  // What the file did not take is still taken from the pipe, and dropped.
  size_t drained = 0;
  while (moved + drained < length) {
    const size_t want = length - moved - drained;
    const ssize_t got = read(pipe_fd, scratch, want < scratch_bytes ? want : scratch_bytes);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    drained += static_cast<size_t>(got);
  }
  totals_.payload_bytes += drained;
  Dropped(drained, 0);
  return moved + drained;
}

bool LogFile::ShortenHeader(char (&header)[kMaxHeaderBytes], size_t header_length, uint64_t header_at, size_t announced,
                            size_t moved) {
  // The same header with the length that followed, zero-padded to the announced one's width (readers
  // take leading zeros), written over it: the chunks after it stay framed.
  const size_t digits = static_cast<size_t>(snprintf(nullptr, 0, "%zu", announced));
  const size_t prefix = header_length - digits - 1;  // up to the length's first digit
  snprintf(header + prefix, sizeof(header) - prefix, "%0*zu\n", static_cast<int>(digits), moved);
  return pwrite(fd_.get(), header, header_length, static_cast<off_t>(header_at)) == static_cast<ssize_t>(header_length);
}

size_t LogFile::RoomFor(size_t length) {
  const uint64_t overhead = owed_length_ + kMaxHeaderBytes + kEndChunkBytes;
  if (file_bytes_ + overhead + length <= file_limit_) return length;
  // Rotating a file that holds no output would free nothing.
  if (file_payload_ > 0) Rotate();
  const uint64_t used = file_bytes_ + owed_length_ + kMaxHeaderBytes + kEndChunkBytes;
  // kMinimumMaxBytes leaves a fresh file room for ~32 KiB of output; a file that is full of the
  // log's own chunks (a failed rotation) still takes a byte a chunk, so the loop ends.
  const uint64_t room = used < file_limit_ ? file_limit_ - used : 1;
  return length < room ? length : static_cast<size_t>(room);
}

void LogFile::WriteChunk(const char* stream_name, const char* payload, size_t length, uint64_t payload_bytes) {
  totals_.payload_bytes += payload_bytes;
  if (failed_ || !fd_) {
    Dropped(payload_bytes, 0);
    return;
  }
  char header[kMaxHeaderBytes];
  const size_t header_length = FormatHeader(timestamp_, timestamp_length_, stream_name, length, header);
  struct iovec parts[3] = {{owed_, owed_length_}, {header, header_length}, {const_cast<char*>(payload), length}};
  struct iovec* first = owed_length_ > 0 ? parts : parts + 1;
  const size_t bytes = owed_length_ + header_length + length;
  if (int error_number = WriteAll(fd_.get(), first, static_cast<int>(parts + 3 - first)); error_number != 0) {
    // What part of it reached the file is not worth tracking: the next rotation starts clean, and
    // readers drop a chunk cut short.
    failed_ = true;
    Dropped(payload_bytes, error_number);
    return;
  }
  owed_length_ = 0;
  file_bytes_ += bytes;
  file_payload_ += payload_bytes;
  totals_.disk_bytes += bytes;
}

void LogFile::Rotate() {
  if (!fd_) return;  // never opened: nothing to rotate, and everything is dropped anyway
  // rename(2) replaces path.1 atomically: a reader sees the old or the new one, never neither.
  if (rename(path_.c_str(), previous_path_.c_str()) == -1) {
    failed_ = true;
    if (totals_.write_errno == 0) totals_.write_errno = errno;
    return;
  }
  totals_.dropped_bytes += previous_payload_;
  totals_.disk_bytes -= previous_bytes_;
  previous_bytes_ = file_bytes_;
  previous_payload_ = file_payload_;
  file_bytes_ = 0;
  file_payload_ = 0;
  failed_ = false;
  fd_.reset(open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW, 0600));
  if (!fd_) {
    failed_ = true;
    if (totals_.write_errno == 0) totals_.write_errno = errno;
    return;
  }
  memcpy(owed_, kFormatLine, kFormatLineBytes);
  owed_length_ = kFormatLineBytes;
  // The payload bytes placed in chunks so far: all before the chunk that comes next.
  OweMarker("offset");
}

void LogFile::OweMarker(const char* kind) {
  char marker[48];
  const int marker_length =
      snprintf(marker, sizeof(marker), "%s %llu\n", kind, static_cast<unsigned long long>(totals_.payload_bytes));
  const size_t length = marker_length < 0 ? 0 : static_cast<size_t>(marker_length);
  char* at = owed_ + owed_length_;
  at += FormatHeader(timestamp_, timestamp_length_, kMarkerStream, length, at);
  memcpy(at, marker, length);
  owed_length_ = static_cast<size_t>(at + length - owed_);
}

void LogFile::Dropped(uint64_t payload_bytes, int error_number) {
  totals_.dropped_bytes += payload_bytes;
  if (totals_.write_errno == 0) totals_.write_errno = error_number;
}

void LogFile::Close() {
  if (fd_ && !failed_) {
    // The last chunk says the log is complete (a follower stops at it) and what it holds.
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    timestamp_length_ = FormatLogTimestamp(now, timestamp_);
    char end[48];
    const int end_length = snprintf(end, sizeof(end), "end %llu\n", static_cast<unsigned long long>(totals_.payload_bytes));
    WriteChunk(kMarkerStream, end, end_length < 0 ? 0 : static_cast<size_t>(end_length), 0);
  }
  fd_.reset();
}

}  // namespace parafork
