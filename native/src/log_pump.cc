// See log_pump.h.
#include "log_pump.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

#include "monotonic_clock.h"

namespace parafork {

LogPump::LogPump(OnClosed on_closed) : on_closed_(std::move(on_closed)), buffer_(kReadBytes) {}

LogPump::~LogPump() { Stop(); }

void LogPump::Start() {
  epoll_.Open();
  thread_ = std::thread([this] { Run(); });
}

void LogPump::Stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  epoll_.Wake();
  thread_.join();
}

void LogPump::Add(uint64_t id, std::string path, uint64_t max_bytes, bool create_when_written, UniqueFd stdout_read,
                  UniqueFd stderr_read) {
  // EPERM past fs.pipe-user-pages-soft without CAP_SYS_RESOURCE, EBUSY if it already holds
  // more: either way the pipe keeps its 64 KiB and the task waits for the pump a little sooner.
  size_t pipe_bytes[2] = {kReadBytes, kReadBytes};
  const UniqueFd* ends[2] = {&stdout_read, &stderr_read};
  for (int stream = 0; stream < 2; ++stream) {
    if (!*ends[stream]) continue;
    // Non-blocking (ReadChunk says why); F_SETFL cannot fail on an open pipe.
    fcntl(ends[stream]->get(), F_SETFL, O_NONBLOCK);
    const int size = fcntl(ends[stream]->get(), F_SETPIPE_SZ, kPipeBytes);
    if (size > 0) pipe_bytes[stream] = static_cast<size_t>(size);
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Pending pending{id,
                    std::move(path),
                    max_bytes,
                    create_when_written,
                    {std::move(stdout_read), std::move(stderr_read)},
                    {pipe_bytes[0], pipe_bytes[1]}};
    pending_.push_back(std::move(pending));
  }
  open_logs_.fetch_add(1);
  epoll_.Wake();
}

LogPumpStats LogPump::Stats() const {
  return {open_logs_.load(), payload_bytes_.load(), dropped_bytes_.load()};
}

void LogPump::Run() {
  BlockAllSignals();
  pthread_setname_np(pthread_self(), "parafork-logs");
  constexpr int kMaxEvents = 64;
  struct epoll_event events[kMaxEvents];
  TakePending();  // added before Start: their wake-up found no eventfd yet
  while (!stopping_.load()) {
    const int ready = epoll_wait(epoll_.fd(), events, kMaxEvents, ArmRested(MonotonicNanoseconds()));
    if (ready < 0) {
      if (errno == EINTR) continue;
      break;
    }
    const uint64_t now_ns = MonotonicNanoseconds();
    for (int index = 0; index < ready; ++index) {
      auto* source = static_cast<Source*>(events[index].data.ptr);
      if (source == nullptr) {
        epoll_.Drain();
        TakePending();
        continue;
      }
      // One chunk a report, for fairness: a pipe with more is armed again at once (AfterRead).
      size_t length = 0;
      if (ReadChunk(*source, false, &length) == ReadResult::kEnded) {
        SourceEnded(*source);  // frees `source`
      } else {
        AfterRead(*source, length, (events[index].events & (EPOLLHUP | EPOLLERR)) != 0, now_ns);
      }
    }
  }
  // Stopping: what the pipes already hold still goes to the logs, then every log closes.
  // Bounded: a task still writing would otherwise keep us here.
  TakePending();
  resting_ = {};  // every source is read below, armed or not
  std::vector<Source*> open;
  for (auto& [id, log] : logs_) {
    for (auto& source : log->sources) {
      if (source) open.push_back(source.get());
    }
  }
  for (Source* source : open) {
    for (int chunk = 0; chunk < kChunksReadAtStop && ReadChunk(*source, true, nullptr) == ReadResult::kData; ++chunk) {
    }
    SourceEnded(*source);  // frees `source`, and its log once both of the log's sources are done
  }
}

void LogPump::TakePending() {
  std::vector<Pending> taken;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    taken.swap(pending_);
  }
  for (Pending& pending : taken) {
    auto log = std::make_unique<Log>(pending.id, std::move(pending.path), pending.max_bytes,
                                     pending.create_when_written);
    log->file.Open();  // a log that cannot be opened still drains its pipes (its output dropped)
    for (int stream = 0; stream < 2; ++stream) {
      UniqueFd& end = pending.ends[stream];
      if (!end) continue;
      auto source = std::make_unique<Source>(Source{std::move(end), static_cast<LogStream>(stream), log.get(),
                                                    pending.pipe_bytes[stream], MonotonicNanoseconds(), 0});
      struct epoll_event event = {};
      event.events = EPOLLIN | EPOLLONESHOT;
      event.data.ptr = source.get();
      if (epoll_ctl(epoll_.fd(), EPOLL_CTL_ADD, source->fd.get(), &event) == -1) continue;  // closed: EOF for the task
      log->sources[stream] = std::move(source);
      ++log->open_sources;
    }
    Log* added = log.get();
    logs_[pending.id] = std::move(log);
    if (added->open_sources == 0) CloseLog(*added);
  }
}

LogPump::ReadResult LogPump::ReadChunk(Source& source, bool only_if_ready, size_t* read_length) {
  // The read ends are non-blocking (Add): a pipe epoll reported readable may be empty by the time
  // we read it, because the pump is not always its only reader. A task running as host uid 0
  // owns the pipe's inode (no capability needed) and can open its own stdout again for reading
  // through /proc/self/fd/1, and take back what it wrote between epoll's report and our read: a
  // blocking read then waited for its next write, and every other task's log with it
  // (test/security/log-pump-stall.test.ts). EAGAIN is kNothing: the source rests and is watched
  // again. At Stop, when epoll has not spoken, an empty pipe is asked whether it is at EOF. For
  // the same reason a splice may find fewer bytes than FIONREAD said (LogFile::AppendFromPipe).
  int available = 0;
  if (ioctl(source.fd.get(), FIONREAD, &available) == -1) return ReadResult::kEnded;
  if (only_if_ready) {
    if (available == 0) {
      struct pollfd ready = {source.fd.get(), POLLIN, 0};
      // Empty: at EOF (POLLHUP, the writers gone) or merely quiet.
      if (poll(&ready, 1, 0) == 1 && (ready.revents & (POLLHUP | POLLERR)) != 0) return ReadResult::kEnded;
      return ReadResult::kNothing;
    }
  }
  // What the pipe holds goes to the file by splice(2), never copied into this process (measured:
  // docs/benchmarks.md, "Task logs"); an empty pipe that epoll calls readable is at EOF, or was
  // written since: a read tells.
  LogFile& file = source.log->file;
  const uint64_t dropped_before = file.totals().dropped_bytes;
  struct timespec now;
  size_t length = 0;
  if (available > 0) {
    clock_gettime(CLOCK_REALTIME, &now);
    // All it holds, as one chunk: each chunk costs a header's write and a splice whatever its size,
    // and taking 64 KiB at a time cost the pump ~25% more CPU per MiB (docs/benchmarks.md, "Task
    // logs: a pipe a chunk").
    const size_t wanted = static_cast<size_t>(available) < source.pipe_bytes ? static_cast<size_t>(available) : source.pipe_bytes;
    length = file.AppendFromPipe(source.stream, source.fd.get(), wanted, now, buffer_.data(), buffer_.size());
    if (length == 0) return ReadResult::kNothing;  // another reader took it first (above)
  } else {
    ssize_t got;
    do {
      got = read(source.fd.get(), buffer_.data(), buffer_.size());
    } while (got < 0 && errno == EINTR);
    if (got < 0) return errno == EAGAIN ? ReadResult::kNothing : ReadResult::kEnded;
    if (got == 0) return ReadResult::kEnded;
    length = static_cast<size_t>(got);
    clock_gettime(CLOCK_REALTIME, &now);
    file.Append(source.stream, buffer_.data(), length, now);
  }
  source.read_since_quiet += length;
  if (read_length != nullptr) *read_length = length;
  payload_bytes_.fetch_add(length);
  dropped_bytes_.fetch_add(file.totals().dropped_bytes - dropped_before);
  return ReadResult::kData;
}

void LogPump::AfterRead(Source& source, size_t length, bool hung_up, uint64_t now_ns) {
  // A full pipe taken: it may hold more already. Hung up: the next read says EOF (or takes the rest).
  if (length >= source.pipe_bytes || hung_up) {
    Arm(source);
    return;
  }
  const uint64_t rest_ns = RestFor(source, now_ns);
  source.quiet_since_ns = now_ns;
  source.read_since_quiet = 0;
  if (rest_ns < kMinRestNs) {
    Arm(source);
  } else {
    resting_.push({now_ns + rest_ns, &source});
  }
}

uint64_t LogPump::RestFor(const Source& source, uint64_t now_ns) {
  // The writer's pace since the last rest began: at it, half the pipe fills in this long, and the
  // writer is not held up by the rest (a pipe that fills sooner is read at once: AfterRead).
  if (source.read_since_quiet == 0) return kMaxRestNs;
  const double elapsed_ns = static_cast<double>(now_ns - source.quiet_since_ns);
  const double half_full_ns = elapsed_ns * (static_cast<double>(source.pipe_bytes) / 2) /
                              static_cast<double>(source.read_since_quiet);
  return half_full_ns >= static_cast<double>(kMaxRestNs) ? kMaxRestNs : static_cast<uint64_t>(half_full_ns);
}

void LogPump::Arm(Source& source) {
  struct epoll_event event = {};
  event.events = EPOLLIN | EPOLLONESHOT;
  event.data.ptr = &source;
  epoll_ctl(epoll_.fd(), EPOLL_CTL_MOD, source.fd.get(), &event);
}

int LogPump::ArmRested(uint64_t now_ns) {
  while (!resting_.empty() && resting_.top().until_ns <= now_ns) {
    Arm(*resting_.top().source);
    resting_.pop();
  }
  if (resting_.empty()) return -1;
  // Rounded up: woken before the time, the source would wait a round more.
  return static_cast<int>((resting_.top().until_ns - now_ns + 999'999) / 1'000'000);
}

void LogPump::SourceEnded(Source& source) {
  Log& log = *source.log;
  epoll_ctl(epoll_.fd(), EPOLL_CTL_DEL, source.fd.get(), nullptr);
  log.sources[static_cast<int>(source.stream)].reset();  // frees `source`
  if (--log.open_sources == 0) CloseLog(log);
}

void LogPump::CloseLog(Log& log) {
  const uint64_t dropped_before = log.file.totals().dropped_bytes;
  log.file.Close();
  dropped_bytes_.fetch_add(log.file.totals().dropped_bytes - dropped_before);
  open_logs_.fetch_sub(1);
  const uint64_t id = log.id;
  const LogTotals totals = log.file.totals();
  logs_.erase(id);  // frees `log`
  if (on_closed_) on_closed_(id, totals);
}

}  // namespace parafork
