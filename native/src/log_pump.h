// The log pump: one thread that reads the stdout and stderr pipes of every task whose output goes to
// a log, and writes them into its LogFile (log_file.h), as conmon and containerd's shim do for
// containers. One epoll set over all the pipes' read ends; each wake-up reads one chunk (up to
// kReadBytes) from each readable pipe, so a task that writes as fast as it can shares the thread
// with the others instead of starving them. The JS thread never sees a byte of it: the spawn
// thread hands the pipes over natively (Spawner::HandOverLog), and JavaScript hears once, when
// a log is complete (both pipes at EOF), with its totals.
//
// Why a pump and not the child writing straight to a file: a file the child holds cannot be capped
// without blocking or killing the child (RLIMIT_FSIZE sends SIGXFSZ), nor rotated, nor tagged by
// stream and time. docs/benchmarks.md ("Task logs") has the measurements.
//
// What it costs (perf, 1,000 Tasks writing 1 MiB of 56-byte lines): ~2-3 ms of CPU per MiB, most
// of it in the kernel: write(2) of the CRI records (1.76x the payload for short lines) into the
// page cache, then the pipe reads; forming the records is ~6%. Why one thread: a second would not
// get the agent more CPU where CPU is short (the scheduler shares it between processes, or
// sessions with autogroup, or cgroups: each Task is one of its own), and where it is not, one
// thread moves some 400 MiB/s of output. What counts on a busy node is that a Task need not wait
// for this thread: its pipes take a burst of kPipeBytes (below).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "log_file.h"
#include "unique_fd.h"
#include "wakeable_epoll.h"

namespace parafork {

// Node-wide totals, readable from any thread (the engine's stats()).
struct LogPumpStats {
  uint64_t open_logs = 0;
  uint64_t payload_bytes = 0;  // taken in from tasks since the pump started
  uint64_t dropped_bytes = 0;  // of those, no longer on disk (rotated away or refused)
};

class LogPump {
 public:
  static constexpr size_t kReadBytes = 64 * 1024;  // a default pipe's whole capacity
  // What each pipe handed over may hold (F_SETPIPE_SZ; fs.pipe-max-size's default): a task that
  // writes up to this much in a burst writes it all and goes on (or exits) without waiting for
  // this thread, which on a busy node gets little CPU (docs/benchmarks.md, "Task logs"). The
  // pages exist only while output waits, and are charged to the writer's memory cgroup (the
  // task's), never the agent's. Their capacity counts against the agent's uid in
  // fs.pipe-user-pages-soft (64 MiB): past it, new pipes of that uid's processes without
  // CAP_SYS_RESOURCE or CAP_SYS_ADMIN get 2 pages (pipe(7)); 32 running Tasks pass it now, 512 did
  // with 64 KiB pipes. The agent itself has CAP_SYS_ADMIN and is not limited.
  static constexpr int kPipeBytes = 1024 * 1024;

  // Called on the pump's thread once a log is complete (or the pump stops), with its totals.
  using OnClosed = std::function<void(uint64_t id, const LogTotals& totals)>;

  explicit LogPump(OnClosed on_closed);
  LogPump(const LogPump&) = delete;
  LogPump& operator=(const LogPump&) = delete;
  ~LogPump();

  // Throws std::system_error when epoll or the wake-up eventfd cannot be made.
  void Start();
  // Reads what the pipes still hold, closes every log (calling OnClosed), stops the thread.
  void Stop();

  // Any thread (the spawn thread's, which also grows the pipes to kPipeBytes: best effort, a
  // pipe the kernel will not grow keeps its size): read these pipe ends (either may be invalid)
  // into a log at `path` of at most `max_bytes`, until both are at EOF. Takes ownership of the ends.
  // `create_when_written`: the file is made at the first byte (LogFile), so a task that writes
  // nothing costs no file.
  void Add(uint64_t id, std::string path, uint64_t max_bytes, bool create_when_written, UniqueFd stdout_read,
           UniqueFd stderr_read);

  LogPumpStats Stats() const;

 private:
  struct Log;
  struct Source {
    UniqueFd fd;
    LogStream stream;
    Log* log;
  };
  struct Log {
    uint64_t id;
    LogFile file;
    int open_sources = 0;
    std::unique_ptr<Source> sources[2];
    Log(uint64_t log_id, std::string path, uint64_t max_bytes, std::string& records, bool create_when_written)
        : id(log_id), file(std::move(path), max_bytes, records, create_when_written) {}
  };
  struct Pending {
    uint64_t id;
    std::string path;
    uint64_t max_bytes;
    bool create_when_written;
    UniqueFd ends[2];
  };

  enum class ReadResult { kData, kNothing, kEnded };
  // At Stop, at most this many chunks more from each pipe (4 MiB).
  static constexpr int kChunksReadAtStop = 64;

  void Run();
  void TakePending();
  // Reads one chunk into the source's log; kEnded at EOF (or a broken pipe). `only_if_ready`:
  // epoll has not said the pipe is readable (at Stop), so it is asked first.
  ReadResult ReadChunk(Source& source, bool only_if_ready);
  void SourceEnded(Source& source);
  void CloseLog(Log& log);

  OnClosed on_closed_;
  WakeableEpoll epoll_;  // woken for new logs pending, or to stop
  std::mutex mutex_;
  std::vector<Pending> pending_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  // The pump thread's own. records_ first: the logs hold it (destroyed after them).
  std::string records_;  // lent to every log (log_file.h): one read's records at a time
  std::unordered_map<uint64_t, std::unique_ptr<Log>> logs_;
  std::vector<char> buffer_;
  // Totals of the logs already closed, and of the open ones as last read.
  std::atomic<uint64_t> open_logs_{0};
  std::atomic<uint64_t> payload_bytes_{0};
  std::atomic<uint64_t> dropped_bytes_{0};
};

}  // namespace parafork
