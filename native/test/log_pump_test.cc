// The log pump's contract (native/src/log_pump.h): it drains every pipe handed to it into its log,
// a writer that never stops is never blocked for long nor killed, the disk holds at most the cap,
// and each log is reported once, when both of its pipes are at EOF.
#include "../src/log_pump.h"
#include "test_files.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace parafork {
namespace {

using namespace std::chrono_literals;

struct Pipe {
  UniqueFd read_end;
  UniqueFd write_end;
  Pipe() {
    int ends[2];
    if (pipe2(ends, O_CLOEXEC) == 0) {
      read_end.reset(ends[0]);
      write_end.reset(ends[1]);
    }
  }
};

void WriteAll(int fd, const std::string& text) {
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t written = write(fd, text.data() + done, text.size() - done);
    ASSERT_GT(written, 0);
    done += static_cast<size_t>(written);
  }
}

// Collects OnClosed calls.
class ClosedLogs {
 public:
  LogPump::OnClosed Callback() {
    return [this](uint64_t id, const LogTotals& totals) {
      std::lock_guard<std::mutex> lock(mutex_);
      closed_.push_back({id, totals});
      changed_.notify_all();
    };
  }
  bool WaitFor(size_t count, std::chrono::milliseconds deadline = 10s) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, deadline, [&] { return closed_.size() >= count; });
  }
  std::vector<std::pair<uint64_t, LogTotals>> Closed() {
    std::lock_guard<std::mutex> lock(mutex_);
    return closed_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::pair<uint64_t, LogTotals>> closed_;
};

TEST(LogPump, WritesBothStreamsOfATaskIntoOneLogAndReportsItOnceBothAreAtEof) {
  TemporaryDirectory directory;
  ClosedLogs closed;
  LogPump pump(closed.Callback());
  pump.Start();
  Pipe out;
  Pipe err;
  const std::string path = directory.path() + "/task/1.log";  // its directory is made on demand
  pump.Add(7, path, 1 << 20, false, std::move(out.read_end), std::move(err.read_end));
  WriteAll(out.write_end.get(), "to stdout\n");
  out.write_end.reset();
  EXPECT_FALSE(closed.WaitFor(1, 100ms)) << "reported while stderr is still open";
  WriteAll(err.write_end.get(), "to stderr\n");
  err.write_end.reset();
  ASSERT_TRUE(closed.WaitFor(1));
  const auto reported = closed.Closed();
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0].first, 7u);
  EXPECT_EQ(reported[0].second.payload_bytes, 20u);
  const std::string text = ReadWholeFile(path);
  EXPECT_NE(text.find(" stdout 10\nto stdout\n"), std::string::npos);
  EXPECT_NE(text.find(" stderr 10\nto stderr\n"), std::string::npos);
  EXPECT_EQ(pump.Stats().open_logs, 0u);
  pump.Stop();
}

TEST(LogPump, GathersATricklingWritersOutputIntoFewReadsAndStillSeesItsEndPromptly) {
  TemporaryDirectory directory;
  ClosedLogs closed;
  LogPump pump(closed.Callback());
  pump.Start();
  Pipe out;
  const std::string path = directory.path() + "/1.log";
  pump.Add(2, path, 1 << 20, false, std::move(out.read_end), UniqueFd());
  // One line in 21 writes 2 ms apart: a pump that read each write as it came would make a chunk
  // of each.
  for (int piece = 0; piece < 20; ++piece) {
    WriteAll(out.write_end.get(), "piece ");
    std::this_thread::sleep_for(2ms);
  }
  WriteAll(out.write_end.get(), "end\n");
  const auto closed_at = std::chrono::steady_clock::now();
  out.write_end.reset();
  ASSERT_TRUE(closed.WaitFor(1));
  // The rest after a read is at most LogPump::kMaxRestNs (100 ms); this allows for a loaded machine.
  EXPECT_LT(std::chrono::steady_clock::now() - closed_at, 2s) << "the end was seen late";
  const std::string text = ReadWholeFile(path);
  size_t chunks = 0;
  for (const LogChunkOnDisk& chunk : LogChunks(text)) chunks += chunk.stream == "stdout" ? 1 : 0;
  EXPECT_LE(chunks, 5u) << text;
  EXPECT_EQ(closed.Closed()[0].second.payload_bytes, 20u * 6 + 4);
  pump.Stop();
}

TEST(LogPump, GrowsAPipeToAMebibyteAtItsFirstBytesSoABurstWaitsForThePumpThreadOnceAtMost) {
  TemporaryDirectory directory;
  ClosedLogs closed;
  LogPump pump(closed.Callback());  // not started yet: nothing reads the pipes
  Pipe out;
  Pipe err;
  const int write_end = out.write_end.get();
  pump.Add(5, directory.path() + "/1.log", 4 << 20, false, std::move(out.read_end), std::move(err.read_end));
  ASSERT_EQ(fcntl(write_end, F_SETFL, O_NONBLOCK), 0);
  const std::string line = std::string(1023, 'b') + "\n";
  size_t taken = 0;
  while (taken < static_cast<size_t>(LogPump::kPipeBytes)) {
    const ssize_t written = write(write_end, line.data(), line.size());
    if (written < 0) break;  // EAGAIN: the pipe is full
    taken += static_cast<size_t>(written);
  }
  EXPECT_EQ(taken, LogPump::kReadBytes) << "a pipe the pump has not seen written has its default 64 KiB";
  pump.Start();
  // Its first bytes wake the pump, which grows the pipe before it takes them (ReadChunk).
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (fcntl(write_end, F_GETPIPE_SZ) != LogPump::kPipeBytes && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(1ms);
  }
  EXPECT_EQ(fcntl(write_end, F_GETPIPE_SZ), LogPump::kPipeBytes) << "a written pipe takes a burst of 1 MiB";
  EXPECT_EQ(fcntl(err.write_end.get(), F_GETPIPE_SZ), static_cast<int>(LogPump::kReadBytes)) << "a pipe never written is not grown";
  out.write_end.reset();
  err.write_end.reset();
  ASSERT_TRUE(closed.WaitFor(1));
  EXPECT_EQ(closed.Closed()[0].second.payload_bytes, taken);
  pump.Stop();
}

TEST(LogPump, LetsAWriterOf256MiBRunToItsEndWithAtMostTheCapOnDisk) {
  TemporaryDirectory directory;
  ClosedLogs closed;
  LogPump pump(closed.Callback());
  pump.Start();
  Pipe out;
  const std::string path = directory.path() + "/1.log";
  const uint64_t cap = 1 << 20;
  pump.Add(1, path, cap, false, std::move(out.read_end), UniqueFd());
  const std::string block(1 << 16, 'y');  // 64 KiB lines of 'y' with a newline now and then
  const std::string chunk = block + "\n";
  constexpr int kChunks = 4096;
  std::atomic<uint64_t> largest_on_disk{0};
  std::atomic<bool> writing{true};
  std::thread watcher([&] {
    while (writing.load()) {
      const uint64_t on_disk = FileSize(path) + FileSize(path + ".1");
      if (on_disk > largest_on_disk.load()) largest_on_disk.store(on_disk);
      std::this_thread::sleep_for(1ms);
    }
  });
  for (int index = 0; index < kChunks; ++index) WriteAll(out.write_end.get(), chunk);
  out.write_end.reset();
  ASSERT_TRUE(closed.WaitFor(1, 60s));
  writing.store(false);
  watcher.join();
  const LogTotals totals = closed.Closed()[0].second;
  EXPECT_EQ(totals.payload_bytes, chunk.size() * kChunks);
  EXPECT_LE(FileSize(path) + FileSize(path + ".1"), cap);
  EXPECT_LE(largest_on_disk.load(), cap);
  EXPECT_EQ(totals.disk_bytes, FileSize(path) + FileSize(path + ".1"));
  EXPECT_GT(totals.dropped_bytes, totals.payload_bytes - cap);
  EXPECT_EQ(pump.Stats().payload_bytes, totals.payload_bytes);
  EXPECT_EQ(pump.Stats().dropped_bytes, totals.dropped_bytes);
  pump.Stop();
}

TEST(LogPump, DrainsThePipesOfALogItCannotOpenSoTheTaskNeverBlocks) {
  TemporaryDirectory directory;
  ClosedLogs closed;
  LogPump pump(closed.Callback());
  pump.Start();
  Pipe out;
  // Two missing levels: the pump makes one directory, never a whole tree.
  pump.Add(3, directory.path() + "/missing/deeper/1.log", 1 << 20, false, std::move(out.read_end), UniqueFd());
  const std::string chunk(1 << 16, 'z');
  for (int index = 0; index < 64; ++index) WriteAll(out.write_end.get(), chunk);  // 4 MiB: 64 pipefuls
  out.write_end.reset();
  ASSERT_TRUE(closed.WaitFor(1));
  const LogTotals totals = closed.Closed()[0].second;
  EXPECT_EQ(totals.write_errno, ENOENT);
  EXPECT_EQ(totals.payload_bytes, 4u << 20);
  EXPECT_EQ(totals.dropped_bytes, 4u << 20);
  pump.Stop();
}

TEST(LogPump, ClosesTheLogsStillOpenWhenItStops) {
  TemporaryDirectory directory;
  ClosedLogs closed;
  LogPump pump(closed.Callback());
  pump.Start();
  Pipe out;
  pump.Add(9, directory.path() + "/1.log", 1 << 20, false, std::move(out.read_end), UniqueFd());
  WriteAll(out.write_end.get(), "before the stop\n");
  pump.Stop();
  ASSERT_TRUE(closed.WaitFor(1, 0ms));
  EXPECT_EQ(closed.Closed()[0].second.payload_bytes, 16u);
  EXPECT_NE(ReadWholeFile(directory.path() + "/1.log").find(" stdout 16\nbefore the stop\n"), std::string::npos);
}

}  // namespace
}  // namespace parafork
