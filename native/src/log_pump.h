// The log pump: one thread that reads the stdout and stderr pipes of every task whose output goes to
// a log, and writes them into its LogFile (log_file.h), as conmon and containerd's shim do for
// containers. One epoll set over all the pipes' read ends, each watched EPOLLONESHOT; each report
// takes one chunk (all the pipe holds, up to its capacity) from that pipe into the log, moved by
// splice(2) (LogFile::AppendFromPipe) rather than read into this process and written out again.
// A chunk that took a full pipe means it may hold more: it is watched again at once, so a task
// that writes as fast as it can shares the thread with the others instead of starving them. A read that empties the pipe leaves it unwatched
// for as long as its writer, at the pace it kept since the last such rest, takes to fill half of
// it (at most kMaxRestNs; under kMinRestNs it is watched again at once): the next read then takes
// what gathered meanwhile in one chunk, and the writer's writes wake no one. The JS thread never
// sees a byte of it: the spawn thread hands the pipes over natively (Spawner::HandOverLog), and
// JavaScript hears once, when a log is complete (both pipes at EOF), with its totals.
//
// What a task that writes nothing costs (most of a Task array's indexes, issue 17): on the spawn
// thread its pipes' EPOLL_CTL_ADDs (no growth: kPipeBytes) (Add: the pump is not woken to take them);
// here one report a pipe at its end, EPOLLHUP without EPOLLIN, which is EOF known without a system
// call, and the pipe's close (no EPOLL_CTL_DEL: SourceEnded). Both pipes of an exiting task usually
// come in one wake-up: ~0.46 epoll_wait and 2 close(2) an index, where there were ~0.95 wake-ups, 4
// epoll_ctl, 2 FIONREAD and ~2.6 read(2) (docs/benchmarks.md, "A silent index's log").
//
// Why the rest: a pump that kept up read each pipe as soon as a write made it readable, so 1,000
// Tasks writing 1 MiB of lines gave it 74,000 reads (77% of them 4 KiB or less), as many write(2)s
// of records and 63,500 wake-ups, and it cost about twice the CPU per MiB of a pump that lagged
// (and so read full 64 KiB chunks). With the rest: 20,000 reads (75% full chunks) and 7,700
// wake-ups (docs/benchmarks.md, "Task logs"). What it costs: a quiet writer's bytes reach the
// file up to kMaxRestNs later (a follower polls every 200 ms anyway: src/logs/log-reader.ts), and
// its EOF is seen as late; a writer is held up only if it speeds up to fill the other half of its
// pipe within the rest.
//
// Why a pump and not the child writing straight to a file: a file the child holds cannot be capped
// without blocking or killing the child (RLIMIT_FSIZE sends SIGXFSZ), nor rotated, nor tagged by
// stream and time. docs/benchmarks.md ("Task logs") has the measurements.
//
// What it costs (perf, 1,000 Tasks writing 1 MiB of 56-byte lines, 2026-12-07, when it wrote CRI
// records, a line each: log_file.h): ~1.3-1.6 ms of CPU per MiB, most of it in the kernel: write(2)
// of the records (1.76x the payload for short lines) into the page cache ~40%, the pipe reads ~18%,
// forming the records ~14%; with a chunk a read (and splice) the agent spends ~1.0 ms less per MiB
// of the burst (docs/benchmarks.md, "Task logs: chunks"). Making each log's directory and file
// ~10-20%: 30-50% on an ext4
// without a journal when as many logs were removed in the half-minute before: each new inode is
// checked against every recently deleted one (ext4's find_inode_bit, recently_deleted). Why one
// thread: a second would not get the agent more CPU where CPU is short (the scheduler shares it
// between processes, or sessions with autogroup, or cgroups), and where it is not, one thread moves
// some 600 MiB/s of output. What counts on a busy node is that a Task need not wait for this thread:
// its pipes take a burst of kPipeBytes (below) once the pump has seen their first bytes.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <queue>
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
  static constexpr size_t kReadBytes = 64 * 1024;  // a default pipe's whole capacity; what a read(2) takes
  // What each pipe handed over may hold once written (F_SETPIPE_SZ at its first bytes, on this
  // thread; fs.pipe-max-size's default): a task that writes up to this much in a burst writes it
  // all and goes on (or exits) without waiting for this thread, which on a busy node gets little
  // CPU (docs/benchmarks.md, "Task logs"), but for once: its first 64 KiB wake the pump, which
  // grows the pipe before it takes them (ReadChunk). A pipe never written stays small. The
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

  // Any thread (the spawn thread's, which puts the pipes in the pump's epoll set, so that the pump
  // wakes for a new log only once its pipes are written or closed): read these pipe ends (either may be invalid)
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
    size_t pipe_bytes;              // the pipe's capacity
    uint64_t quiet_since_ns = 0;    // CLOCK_MONOTONIC: when its last rest began (or it was added)
    uint64_t read_since_quiet = 0;  // bytes read from it since then
    bool written = false;           // bytes came: O_NONBLOCK set, grown to kPipeBytes unless hung up (ReadChunk)
  };
  struct Resting {
    uint64_t until_ns;
    Source* source;
    bool operator>(const Resting& other) const { return until_ns > other.until_ns; }
  };
  struct Log {
    uint64_t id;
    LogFile file;
    int open_sources = 0;  // sources in the epoll set, not yet at EOF
    bool watched = false;  // its sources were put in the epoll set (Watch)
    std::unique_ptr<Source> sources[2];
    Log(uint64_t log_id, std::string path, uint64_t max_bytes, bool create_when_written)
        : id(log_id), file(std::move(path), max_bytes, create_when_written) {}
  };
  enum class ReadResult { kData, kNothing, kEnded };
  // At Stop, at most this many chunks more from each pipe (4 MiB).
  static constexpr int kChunksReadAtStop = 64;
  // A pipe a read left empty is not watched again for the time its writer, at the pace it kept,
  // takes to fill half of it, at most kMaxRestNs, and not at all under kMinRestNs (see Run).
  static constexpr uint64_t kMaxRestNs = 100'000'000;
  static constexpr uint64_t kMinRestNs = 1'000'000;

  void Run();
  // Moves the logs Add left pending into logs_ (watching those added before Start).
  void TakePending();
  // Puts the log's sources in the epoll set (EPOLLONESHOT); drops those it refuses. With mutex_ held.
  void Watch(Log& log);
  // Takes one chunk into the source's log; kEnded at EOF (or a broken pipe). `hung_up`: epoll
  // reported EPOLLHUP. `only_if_ready`: epoll has not spoken (at Stop), so the pipe is asked.
  ReadResult ReadChunk(Source& source, bool only_if_ready, bool hung_up, size_t* read_length);
  // Closes the source (freeing it), and its log once both are done. `reported`: epoll just
  // reported it, so it is disarmed and needs no EPOLL_CTL_DEL.
  void SourceEnded(Source& source, bool reported);
  // After a read of `length` bytes (`hung_up`: its writers are gone): watched again at once when it
  // may hold more, else left to rest (RestFor).
  void AfterRead(Source& source, size_t length, bool hung_up, uint64_t now_ns);
  // How long a source that a read just emptied is left unwatched.
  static uint64_t RestFor(const Source& source, uint64_t now_ns);
  // Watches the source again (EPOLLONESHOT: each report disarms it until this).
  void Arm(Source& source);
  // Arms the sources whose rest is over; returns epoll_wait's timeout (ms) to the next one, -1 if none.
  int ArmRested(uint64_t now_ns);
  void CloseLog(Log& log);

  OnClosed on_closed_;
  WakeableEpoll epoll_;  // woken for new logs pending, or to stop
  std::mutex mutex_;
  std::vector<std::unique_ptr<Log>> pending_;  // added, not yet in logs_ (their sources watched once watching_)
  std::atomic<bool> has_pending_{false};       // pending_ is not empty (set with mutex_ held)
  std::atomic<bool> watching_{false};          // Start opened the epoll set: Add puts pipes in it
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  // The pump thread's own.
  std::unordered_map<uint64_t, std::unique_ptr<Log>> logs_;
  // Sources left unwatched until their time (a source is freed only after a report, never while here).
  std::priority_queue<Resting, std::vector<Resting>, std::greater<Resting>> resting_;
  std::vector<char> buffer_;
  // Totals of the logs already closed, and of the open ones as last read.
  std::atomic<uint64_t> open_logs_{0};
  std::atomic<uint64_t> payload_bytes_{0};
  std::atomic<uint64_t> dropped_bytes_{0};
};

}  // namespace parafork
