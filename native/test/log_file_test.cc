// The task log's contract (native/src/log_file.h): a format line, then each read as one chunk tagged
// by stream and time and kept byte for byte, and a cap that keeps the newest output, never splits a
// chunk across the two files, and says where the rest was dropped.
#include "../src/log_file.h"
#include "test_files.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace parafork {
namespace {

constexpr timespec kNoon = {1796558400, 123456789};  // 2026-12-06T12:00:00.123456789Z
const std::string kNoonText = "2026-12-06T12:00:00.123456789Z";

void Append(LogFile& log, LogStream stream, const std::string& text) {
  log.Append(stream, text.data(), text.size(), kNoon);
}

std::vector<LogChunkOnDisk> ChunksOf(const std::string& path) {
  bool ok = false;
  std::vector<LogChunkOnDisk> chunks = LogChunks(ReadWholeFile(path), &ok);
  EXPECT_TRUE(ok) << path << " is not a whole log of chunks";
  return chunks;
}

TEST(LogTimestamp, IsRfc3339WithNanosecondsInUtc) {
  char out[32];
  ASSERT_EQ(FormatLogTimestamp(kNoon, out), 30u);
  EXPECT_STREQ(out, "2026-12-06T12:00:00.123456789Z");
}

TEST(LogFile, OpensWithItsFormatLineAndWritesEachReadAsOneChunkTaggedWithItsStream) {
  TemporaryDirectory directory;
  LogFile log(directory.path() + "/1.log", 1 << 20);
  ASSERT_EQ(log.Open(), 0);
  Append(log, LogStream::kStdout, "hello\nworld\n");
  Append(log, LogStream::kStderr, "oops\n");
  log.Close();
  const std::string text = ReadWholeFile(directory.path() + "/1.log");
  EXPECT_EQ(text.substr(0, 15 + 31 + 10 + 12), "parafork-log 2\n" + kNoonText + " stdout 12\nhello\nworld\n");
  std::vector<LogChunkOnDisk> chunks = ChunksOf(directory.path() + "/1.log");
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[2].stream, "parafork");
  EXPECT_EQ(chunks[2].payload, "end 17\n");
  chunks.pop_back();
  EXPECT_EQ(chunks, (std::vector<LogChunkOnDisk>{{kNoonText, "stdout", "hello\nworld\n"}, {kNoonText, "stderr", "oops\n"}}));
  EXPECT_EQ(log.totals().payload_bytes, 17u);
  EXPECT_EQ(log.totals().dropped_bytes, 0u);
  EXPECT_EQ(log.totals().disk_bytes, text.size());
}

TEST(LogFile, KeepsAReadThatEndsMidLineOrMidCharacterAsItIs) {
  TemporaryDirectory directory;
  LogFile log(directory.path() + "/1.log", 1 << 20);
  ASSERT_EQ(log.Open(), 0);
  Append(log, LogStream::kStdout, "progress: 10% \xE2\x9C");  // the first two bytes of U+2713
  Append(log, LogStream::kStdout, "\x93 20%\nnext");
  log.Close();
  std::vector<LogChunkOnDisk> chunks = ChunksOf(directory.path() + "/1.log");
  chunks.pop_back();  // the end chunk
  EXPECT_EQ(chunks, (std::vector<LogChunkOnDisk>{{kNoonText, "stdout", "progress: 10% \xE2\x9C"},
                                                 {kNoonText, "stdout", "\x93 20%\nnext"}}));
}

TEST(LogFile, CreatedWhenWrittenLeavesNoFileForATaskThatWritesNothing) {
  TemporaryDirectory directory;
  const std::string path = directory.path() + "/shard/1.log";
  LogFile log(path, 1 << 20, /*create_when_written=*/true);
  ASSERT_EQ(log.Open(), 0);
  struct stat status;
  EXPECT_EQ(stat((directory.path() + "/shard").c_str(), &status), -1);  // not even its directory
  log.Close();
  EXPECT_EQ(stat(path.c_str(), &status), -1);
  EXPECT_EQ(log.totals().payload_bytes, 0u);
  EXPECT_EQ(log.totals().disk_bytes, 0u);
}

TEST(LogFile, CreatedWhenWrittenMakesTheFileAtTheFirstByteAndEndsItAsAnyLog) {
  TemporaryDirectory directory;
  const std::string path = directory.path() + "/shard/1.log";
  LogFile log(path, 1 << 20, /*create_when_written=*/true);
  ASSERT_EQ(log.Open(), 0);
  Append(log, LogStream::kStderr, "late\n");
  log.Close();
  const std::vector<LogChunkOnDisk> chunks = ChunksOf(path);
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0], (LogChunkOnDisk{kNoonText, "stderr", "late\n"}));
  EXPECT_EQ(chunks[1].payload, "end 5\n");
}

TEST(LogFile, ALogOpenedAndNeverWrittenHoldsItsFormatLineAndEnd) {
  TemporaryDirectory directory;
  LogFile log(directory.path() + "/1.log", 1 << 20);
  ASSERT_EQ(log.Open(), 0);
  log.Close();
  const std::vector<LogChunkOnDisk> chunks = ChunksOf(directory.path() + "/1.log");
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].stream, "parafork");
  EXPECT_EQ(chunks[0].payload, "end 0\n");
}

TEST(LogFile, NeverHoldsMoreThanItsCapOnDiskAndKeepsTheNewestOutput) {
  TemporaryDirectory directory;
  const std::string path = directory.path() + "/1.log";
  const uint64_t cap = 128 * 1024;
  LogFile log(path, cap);
  ASSERT_EQ(log.Open(), 0);
  for (int line = 0; line < 20000; ++line) {
    Append(log, LogStream::kStdout, "line " + std::to_string(line) + "\n");
    ASSERT_LE(FileSize(path) + FileSize(path + ".1"), cap);
  }
  log.Close();
  EXPECT_LE(FileSize(path) + FileSize(path + ".1"), cap);
  EXPECT_EQ(log.totals().disk_bytes, FileSize(path) + FileSize(path + ".1"));
  const std::vector<LogChunkOnDisk> newest = ChunksOf(path);
  ASSERT_GE(newest.size(), 2u);
  EXPECT_EQ(newest[newest.size() - 2].payload, "line 19999\n");
  EXPECT_GT(log.totals().dropped_bytes, 0u);
  EXPECT_LT(log.totals().dropped_bytes, log.totals().payload_bytes);
}

TEST(LogFile, NeverSplitsAChunkBetweenItsFilesAndCutsOneLargerThanAFileIntoWholeChunks) {
  TemporaryDirectory directory;
  const std::string path = directory.path() + "/1.log";
  LogFile log(path, LogFile::kMinimumMaxBytes);  // 32 KiB a file
  ASSERT_EQ(log.Open(), 0);
  std::string read(64 * 1024, 'x');  // a whole pipe's read: twice a file
  for (size_t at = 0; at < read.size(); at += 1000) read[at] = '\n';
  Append(log, LogStream::kStdout, read);
  Append(log, LogStream::kStderr, "after\n");
  log.Close();
  for (const std::string& file : {path + ".1", path}) EXPECT_LE(FileSize(file), LogFile::kMinimumMaxBytes / 2);
  std::string kept;
  for (const std::string& file : {path + ".1", path}) {
    for (const LogChunkOnDisk& chunk : ChunksOf(file)) {
      if (chunk.stream == "stdout") kept += chunk.payload;
    }
  }
  // What the two files hold is the read's last bytes, whole.
  ASSERT_GT(kept.size(), 0u);
  EXPECT_EQ(kept, read.substr(read.size() - kept.size()));
  EXPECT_EQ(log.totals().dropped_bytes, read.size() - kept.size());
  EXPECT_EQ(log.totals().payload_bytes, read.size() + 6);
}

TEST(LogFile, BeginsEachRotatedFileWithItsFormatLineAndTheOffsetOfItsFirstPayloadByte) {
  TemporaryDirectory directory;
  const std::string path = directory.path() + "/1.log";
  LogFile log(path, LogFile::kMinimumMaxBytes);
  ASSERT_EQ(log.Open(), 0);
  // 10-byte lines (9 characters and the newline), one a read: the offset of any chunk is a multiple of 10.
  for (int line = 0; line < 10000; ++line) {
    char text[24];
    snprintf(text, sizeof(text), "%09d\n", line);
    Append(log, LogStream::kStdout, text);
  }
  log.Close();
  // Each file opens with the offset of the payload byte its next chunk starts with; the older
  // file's offset is what was dropped before it.
  const std::vector<LogChunkOnDisk> older = ChunksOf(path + ".1");
  const std::vector<LogChunkOnDisk> newer = ChunksOf(path);
  ASSERT_EQ(older[0].stream, "parafork");
  ASSERT_EQ(newer[0].stream, "parafork");
  ASSERT_EQ(older[0].payload.rfind("offset ", 0), 0u);
  ASSERT_EQ(newer[0].payload.rfind("offset ", 0), 0u);
  const uint64_t older_offset = std::stoull(older[0].payload.substr(7));
  const uint64_t newer_offset = std::stoull(newer[0].payload.substr(7));
  char first_line[24];
  snprintf(first_line, sizeof(first_line), "%09llu\n", static_cast<unsigned long long>(older_offset / 10));
  EXPECT_EQ(older[1].payload, first_line);
  EXPECT_EQ(newer_offset, older_offset + (older.size() - 1) * 10);
  EXPECT_EQ(newer.back().payload, "end 100000\n");
  EXPECT_EQ(log.totals().dropped_bytes, older_offset);
  EXPECT_EQ(log.totals().payload_bytes, 100000u);
}

// A pipe holding `text`, its read end returned (the write end closed).
UniqueFd PipeHolding(const std::string& text) {
  int ends[2];
  EXPECT_EQ(pipe2(ends, O_CLOEXEC), 0);
  EXPECT_EQ(fcntl(ends[1], F_SETPIPE_SZ, 1 << 20) > 0, true);
  EXPECT_EQ(write(ends[1], text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(ends[1]);
  return UniqueFd(ends[0]);
}

TEST(LogFile, MovesWhatAPipeHoldsIntoAChunkWithoutReadingIt) {
  TemporaryDirectory directory;
  LogFile log(directory.path() + "/1.log", 1 << 20);
  ASSERT_EQ(log.Open(), 0);
  UniqueFd pipe = PipeHolding("spliced\nand half");
  char scratch[16];
  EXPECT_EQ(log.AppendFromPipe(LogStream::kStderr, pipe.get(), 16, kNoon, scratch, sizeof(scratch)), 16u);
  Append(log, LogStream::kStdout, "read\n");
  log.Close();
  const std::vector<LogChunkOnDisk> chunks = ChunksOf(directory.path() + "/1.log");
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0], (LogChunkOnDisk{kNoonText, "stderr", "spliced\nand half"}));
  EXPECT_EQ(chunks[1], (LogChunkOnDisk{kNoonText, "stdout", "read\n"}));
  EXPECT_EQ(chunks[2].payload, "end 21\n");
  EXPECT_EQ(log.totals().payload_bytes, 21u);
}

TEST(LogFile, MovesAPipefulLargerThanAFileInWholeChunksAcrossARotation) {
  TemporaryDirectory directory;
  const std::string path = directory.path() + "/1.log";
  LogFile log(path, LogFile::kMinimumMaxBytes);  // 32 KiB a file
  ASSERT_EQ(log.Open(), 0);
  std::string text(48 * 1024, 'x');
  for (size_t at = 0; at < text.size(); at += 100) text[at] = '\n';
  UniqueFd pipe = PipeHolding(text);
  char scratch[4096];
  EXPECT_EQ(log.AppendFromPipe(LogStream::kStdout, pipe.get(), text.size(), kNoon, scratch, sizeof(scratch)), text.size());
  log.Close();
  std::string kept;
  for (const std::string& file : {path + ".1", path}) {
    EXPECT_LE(FileSize(file), LogFile::kMinimumMaxBytes / 2);
    for (const LogChunkOnDisk& chunk : ChunksOf(file)) {
      if (chunk.stream == "stdout") kept += chunk.payload;
    }
  }
  EXPECT_EQ(kept, text);
  EXPECT_EQ(log.totals().dropped_bytes, 0u);
}

TEST(LogFile, SaysInItsHeaderHowMuchFollowedWhenThePipeHeldLessThanItSaidAndStaysFramed) {
  // Another reader of the pipe (a uid 0 task reading its own stdout back: log_pump.cc) took bytes
  // between FIONREAD and the splice: the chunk announced 100 more than came.
  TemporaryDirectory directory;
  LogFile log(directory.path() + "/1.log", 1 << 20);
  ASSERT_EQ(log.Open(), 0);
  UniqueFd pipe = PipeHolding("what was left\n");
  char scratch[64];
  EXPECT_EQ(log.AppendFromPipe(LogStream::kStdout, pipe.get(), 114, kNoon, scratch, sizeof(scratch)), 14u);
  Append(log, LogStream::kStderr, "next\n");
  log.Close();
  const std::vector<LogChunkOnDisk> chunks = ChunksOf(directory.path() + "/1.log");
  ASSERT_EQ(chunks.size(), 3u);
  EXPECT_EQ(chunks[0], (LogChunkOnDisk{kNoonText, "stdout", "what was left\n"}));
  EXPECT_EQ(chunks[1], (LogChunkOnDisk{kNoonText, "stderr", "next\n"}));
  EXPECT_EQ(chunks[2].payload, "end 19\n");
  EXPECT_NE(ReadWholeFile(directory.path() + "/1.log").find(" stdout 014\n"), std::string::npos);
  EXPECT_EQ(log.totals().write_errno, 0);
}

TEST(LogFile, StillEmptiesThePipeOfALogItCannotWrite) {
  TemporaryDirectory directory;
  LogFile log(directory.path() + "/missing/deeper/1.log", 1 << 20);
  EXPECT_EQ(log.Open(), ENOENT);
  const std::string text(10000, 'z');
  UniqueFd pipe = PipeHolding(text);
  char scratch[4096];
  EXPECT_EQ(log.AppendFromPipe(LogStream::kStdout, pipe.get(), text.size(), kNoon, scratch, sizeof(scratch)), text.size());
  char rest;
  EXPECT_EQ(read(pipe.get(), &rest, 1), 0) << "bytes left in the pipe";
  EXPECT_EQ(log.totals().payload_bytes, text.size());
  EXPECT_EQ(log.totals().dropped_bytes, text.size());
}

}  // namespace
}  // namespace parafork
