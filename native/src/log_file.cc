// See log_file.h.
#include "log_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace parafork {

namespace {

constexpr const char* kStreamNames[] = {"stdout", "stderr"};
constexpr const char* kMarkerStream = "parafork";

// 0 or an errno; retries what a regular file may write short (a signal, a nearly full disk).
int WriteAll(int fd, const char* data, size_t length) {
  while (length > 0) {
    const ssize_t written = write(fd, data, length);
    if (written < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (written == 0) return ENOSPC;
    data += written;
    length -= static_cast<size_t>(written);
  }
  return 0;
}

std::string DirectoryOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos || slash == 0 ? std::string() : path.substr(0, slash);
}

}  // namespace

size_t FormatLogTimestamp(const timespec& now, char (&out)[32]) {
  struct tm utc = {};
  gmtime_r(&now.tv_sec, &utc);
  const int length = snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%09ldZ", utc.tm_year + 1900,
                              utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, now.tv_nsec);
  return length < 0 ? 0 : static_cast<size_t>(length);
}

LogFile::LogFile(std::string path, uint64_t max_bytes, std::string& records, bool create_when_written)
    : path_(std::move(path)),
      previous_path_(path_ + ".1"),
      file_limit_((max_bytes < kMinimumMaxBytes ? kMinimumMaxBytes : max_bytes) / 2),
      create_when_written_(create_when_written),
      out_(records) {}

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
  return 0;
}

void LogFile::Append(LogStream stream, const char* data, size_t length, const timespec& now) {
  if (length == 0) return;
  if (creation_deferred_) {
    creation_deferred_ = false;
    Create();  // a log that cannot be made drops what is appended (counted), as at Open
  }
  timestamp_length_ = FormatLogTimestamp(now, timestamp_);
  prefix_stream_ = nullptr;
  const char* stream_name = kStreamNames[static_cast<int>(stream)];
  const char* end = data + length;
  while (data < end) {
    const char* newline = static_cast<const char*>(memchr(data, '\n', static_cast<size_t>(end - data)));
    const char* line_end = newline != nullptr ? newline : end;
    // A line longer than a record goes out in P pieces; its last piece (or a line that ends in this
    // read) is F only when a newline ends it.
    while (static_cast<size_t>(line_end - data) > kMaxRecordPayload) {
      AddRecord(stream_name, 'P', data, kMaxRecordPayload, kMaxRecordPayload);
      data += kMaxRecordPayload;
    }
    // The newline is payload the task wrote, carried by the F record's own end.
    const size_t line_length = static_cast<size_t>(line_end - data);
    AddRecord(stream_name, newline != nullptr ? 'F' : 'P', data, line_length, line_length + (newline != nullptr ? 1 : 0));
    data = newline != nullptr ? newline + 1 : end;
  }
  Flush();
}

void LogFile::AddRecord(const char* stream_name, char tag, const char* payload, size_t length, uint64_t payload_bytes) {
  // Three appends a record, the prefix formed once per timestamp and stream: at 56-byte lines a
  // MiB is ~18,700 records, and forming each piece by piece was ~14% of the pump's CPU (perf,
  // docs/benchmarks.md "Task logs").
  PreparePrefix(stream_name);
  if (file_bytes_ + out_.size() + prefix_length_ + length + 1 > file_limit_) {
    Flush();
    Rotate();  // adds the marker record, with a prefix of its own
    PreparePrefix(stream_name);
  }
  prefix_[prefix_length_ - 2] = tag;
  out_.append(prefix_, prefix_length_);
  out_.append(payload, length);
  out_.push_back('\n');
  out_payload_ += payload_bytes;
  totals_.payload_bytes += payload_bytes;
}

void LogFile::PreparePrefix(const char* stream_name) {
  if (prefix_stream_ == stream_name) return;
  const size_t stream_length = strlen(stream_name);
  memcpy(prefix_, timestamp_, timestamp_length_);
  prefix_[timestamp_length_] = ' ';
  memcpy(prefix_ + timestamp_length_ + 1, stream_name, stream_length);
  prefix_length_ = timestamp_length_ + 1 + stream_length + 3;  // and " <tag> "
  prefix_[prefix_length_ - 3] = ' ';
  prefix_[prefix_length_ - 1] = ' ';
  prefix_stream_ = stream_name;
}

void LogFile::Flush() {
  if (out_.empty()) return;
  if (failed_ || !fd_) {
    Dropped(out_payload_, 0);
  } else if (int error_number = WriteAll(fd_.get(), out_.data(), out_.size()); error_number != 0) {
    // What part of it reached the file is not worth tracking: the next rotation starts clean.
    failed_ = true;
    Dropped(out_payload_, error_number);
  } else {
    file_bytes_ += out_.size();
    file_payload_ += out_payload_;
    totals_.disk_bytes += out_.size();
  }
  out_.clear();
  out_payload_ = 0;
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
  // The payload bytes placed in records so far: all before the record that comes next.
  char marker[48];
  const int marker_length =
      snprintf(marker, sizeof(marker), "offset %llu", static_cast<unsigned long long>(totals_.payload_bytes));
  AddRecord(kMarkerStream, 'F', marker, static_cast<size_t>(marker_length), 0);
}

void LogFile::Dropped(uint64_t payload_bytes, int error_number) {
  totals_.dropped_bytes += payload_bytes;
  if (totals_.write_errno == 0) totals_.write_errno = error_number;
}

void LogFile::Close() {
  if (fd_) {
    // The last record says the log is complete (a follower stops at it) and what it holds.
    char end[48];
    const int end_length = snprintf(end, sizeof(end), "end %llu", static_cast<unsigned long long>(totals_.payload_bytes));
    timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    timestamp_length_ = FormatLogTimestamp(now, timestamp_);
    prefix_stream_ = nullptr;
    AddRecord(kMarkerStream, 'F', end, static_cast<size_t>(end_length), 0);
  }
  Flush();
  fd_.reset();
}

}  // namespace parafork
