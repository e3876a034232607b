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
  watching_.store(true);
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
  auto log = std::make_unique<Log>(id, std::move(path), max_bytes, create_when_written);
  UniqueFd* ends[2] = {&stdout_read, &stderr_read};
  for (int stream = 0; stream < 2; ++stream) {
    if (!*ends[stream]) continue;
    // Its default 64 KiB until its first bytes (ReadChunk grows it then).
    log->sources[stream] = std::make_unique<Source>(
        Source{std::move(*ends[stream]), static_cast<LogStream>(stream), log.get(), kReadBytes, MonotonicNanoseconds(), 0});
  }
  open_logs_.fetch_add(1);
  bool wake;
  {
    // The pipes join the epoll set here, under the lock the pump takes the new log with
    // (TakePending): a report of them can come before the pump has the log, but the pump takes
    // what is pending before it handles the reports of a wake-up (Run), and waits here for the
    // lock if need be. So a new log wakes the pump only when its pipes are written or closed,
    // not once more to be handed over (docs/benchmarks.md, "A silent index's log").
    std::lock_guard<std::mutex> lock(mutex_);
    Log* added = log.get();
    pending_.push_back(std::move(log));
    has_pending_.store(true);
    if (watching_.load()) Watch(*added);
    // Before Start the pump watches them itself; a log with no pipe left is closed by the pump.
    wake = !added->watched || added->open_sources == 0;
  }
  if (wake) epoll_.Wake();
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
    // The logs added since the last wake-up first: their pipes may be among the reports (Add).
    if (has_pending_.load()) TakePending();
    for (int index = 0; index < ready; ++index) {
      auto* source = static_cast<Source*>(events[index].data.ptr);
      if (source == nullptr) {
        epoll_.Drain();  // Add woke us (a log before Start, or one without pipes), or Stop did
        if (has_pending_.load()) TakePending();
        continue;
      }
      const uint32_t reported = events[index].events;
      const bool hung_up = (reported & (EPOLLHUP | EPOLLERR)) != 0;
      if (hung_up && (reported & EPOLLIN) == 0) {
        // Its writers gone and nothing in it (a pipe reports EPOLLIN only while it holds bytes:
        // pipe_poll in fs/pipe.c): EOF, known without a system call. Most tasks write nothing, so
        // this is how most pipes end.
        SourceEnded(*source, /*reported=*/true);  // frees `source`
        continue;
      }
      // One chunk a report, for fairness: a pipe with more is armed again at once (AfterRead).
      size_t length = 0;
      if (ReadChunk(*source, false, hung_up, &length) == ReadResult::kEnded) {
        SourceEnded(*source, /*reported=*/true);  // frees `source`
      } else {
        AfterRead(*source, length, hung_up, now_ns);
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
    for (int chunk = 0; chunk < kChunksReadAtStop && ReadChunk(*source, true, false, nullptr) == ReadResult::kData; ++chunk) {
    }
    SourceEnded(*source, /*reported=*/false);  // frees `source`, and its log once both of the log's sources are done
  }
}

void LogPump::Watch(Log& log) {
  log.watched = true;
  for (auto& source : log.sources) {
    if (!source) continue;
    struct epoll_event event = {};
    event.events = EPOLLIN | EPOLLONESHOT;
    event.data.ptr = source.get();
    if (epoll_ctl(epoll_.fd(), EPOLL_CTL_ADD, source->fd.get(), &event) == 0) {
      ++log.open_sources;
    } else {
      source.reset();  // closed: EOF for the task
    }
  }
}

void LogPump::TakePending() {
  std::vector<std::unique_ptr<Log>> taken;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    taken.swap(pending_);
    has_pending_.store(false);
    for (auto& log : taken) {
      if (!log->watched) Watch(*log);  // added before Start
    }
  }
  for (auto& log : taken) {
    log->file.Open();  // a log that cannot be opened still drains its pipes (its output dropped)
    Log* added = log.get();
    logs_[added->id] = std::move(log);
    if (added->open_sources == 0) CloseLog(*added);
  }
}

LogPump::ReadResult LogPump::ReadChunk(Source& source, bool only_if_ready, bool hung_up, size_t* read_length) {
  // Nothing here waits on the pipe: a pipe epoll reported readable may be empty by the time we
  // take from it, because the pump is not always its only reader. A task running as host uid 0
  // owns the pipe's inode (no capability needed) and can open its own stdout again for reading
  // through /proc/self/fd/1, and take back what it wrote between epoll's report and our read: a
  // blocking read then waited for its next write, and every other task's log with it
  // (test/security/log-pump-stall.test.ts). So an empty pipe is never read: FIONREAD says what it
  // holds, the bytes go by splice(2) with SPLICE_F_NONBLOCK, and the read end is made
  // non-blocking at its first bytes (for LogFile's reads of what a failed disk drops). For the
  // same reason a splice may find fewer bytes than FIONREAD said (LogFile::AppendFromPipe).
  int available = 0;
  if (ioctl(source.fd.get(), FIONREAD, &available) == -1) return ReadResult::kEnded;
  if (available == 0) {
    // Empty: at EOF if its writers are gone (no writer can come back: only the pump holds the
    // pipe), else quiet (another reader took what epoll saw): the source rests and is watched
    // again, and epoll then reports the hang-up if it came since. EPOLLHUP with nothing left is
    // EOF without a read(2) that returns 0. At Stop, when epoll has not spoken, poll(2) is asked.
    if (only_if_ready) {
      struct pollfd ready = {source.fd.get(), POLLIN, 0};
      hung_up = poll(&ready, 1, 0) == 1 && (ready.revents & (POLLHUP | POLLERR)) != 0;
    }
    return hung_up ? ReadResult::kEnded : ReadResult::kNothing;
  }
  if (!source.written) {
    // Its first bytes: here rather than at Add, since most tasks never write (a pipe grown at
    // every spawn cost the spawn thread two fcntls and the pipe's release a 10 KiB ring array).
    // F_SETFL cannot fail on an open pipe. F_SETPIPE_SZ: EPERM past fs.pipe-user-pages-soft
    // without CAP_SYS_RESOURCE: the pipe keeps its 64 KiB and the task waits for the pump sooner.
    // Not for a pipe whose writers are gone (a task that printed a little and exited): nobody is
    // left to write a burst into it.
    fcntl(source.fd.get(), F_SETFL, O_NONBLOCK);
    if (!hung_up) {
      const int size = fcntl(source.fd.get(), F_SETPIPE_SZ, kPipeBytes);
      if (size > 0) source.pipe_bytes = static_cast<size_t>(size);
    }
    source.written = true;
  }
  // What the pipe holds goes to the file by splice(2), never copied into this process (measured:
  // docs/benchmarks.md, "Task logs").
  LogFile& file = source.log->file;
  const uint64_t dropped_before = file.totals().dropped_bytes;
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  // All it holds, as one chunk: each chunk costs a header's write and a splice whatever its size,
  // and taking 64 KiB at a time cost the pump ~25% more CPU per MiB (docs/benchmarks.md, "Task
  // logs: a pipe a chunk").
  const size_t wanted = static_cast<size_t>(available) < source.pipe_bytes ? static_cast<size_t>(available) : source.pipe_bytes;
  const size_t length = file.AppendFromPipe(source.stream, source.fd.get(), wanted, now, buffer_.data(), buffer_.size());
  if (length == 0) return ReadResult::kNothing;  // another reader took it first (above)
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

void LogPump::SourceEnded(Source& source, bool reported) {
  Log& log = *source.log;
  // A source epoll just reported is disarmed (EPOLLONESHOT) and stays so, so close(2) alone ends
  // it: the set drops a pipe when its last fd closes, and should a copy outlive ours (a child
  // forked by Node holds one until its exec), its disarmed entry reports nothing (ep_poll_callback
  // and ep_send_events skip an entry whose events are cleared) until it goes with that copy. One
  // that may be armed (at Stop) is taken out first.
  if (!reported) epoll_ctl(epoll_.fd(), EPOLL_CTL_DEL, source.fd.get(), nullptr);
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
