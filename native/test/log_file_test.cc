// The task log's contract (native/src/log_file.h): CRI records tagged by stream and time, partial
// lines as P records, and a cap that keeps the newest output and says where the rest was dropped.
#include "../src/log_file.h"
#include "test_files.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace parafork {
namespace {

constexpr timespec kNoon = {1796558400, 123456789};  // 2026-12-06T12:00:00.123456789Z

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::stringstream stream(text);
  for (std::string line; std::getline(stream, line);) lines.push_back(line);
  return lines;
}

void Append(LogFile& log, LogStream stream, const std::string& text) {
  log.Append(stream, text.data(), text.size(), kNoon);
}

TEST(LogTimestamp, IsRfc3339WithNanosecondsInUtc) {
  char out[32];
  ASSERT_EQ(FormatLogTimestamp(kNoon, out), 30u);
  EXPECT_STREQ(out, "2026-12-06T12:00:00.123456789Z");
}

TEST(LogFile, WritesEachCompleteLineAsAnFRecordTaggedWithItsStream) {
  TemporaryDirectory directory;
  std::string records;
  LogFile log(directory.path() + "/1.log", 1 << 20, records);
  ASSERT_EQ(log.Open(), 0);
  Append(log, LogStream::kStdout, "hello\nworld\n");
  Append(log, LogStream::kStderr, "oops\n");
  log.Close();
  std::vector<std::string> lines = Lines(ReadWholeFile(directory.path() + "/1.log"));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[3].substr(30), " parafork F end 17");
  lines.pop_back();
  EXPECT_EQ(lines, (std::vector<std::string>{"2026-12-06T12:00:00.123456789Z stdout F hello",
                                             "2026-12-06T12:00:00.123456789Z stdout F world",
                                             "2026-12-06T12:00:00.123456789Z stderr F oops"}));
  EXPECT_EQ(log.totals().payload_bytes, 17u);
  EXPECT_EQ(log.totals().dropped_bytes, 0u);
}

TEST(LogFile, CreatedWhenWrittenLeavesNoFileForATaskThatWritesNothing) {
  TemporaryDirectory directory;
  const std::string path = directory.path() + "/shard/1.log";
  std::string records;
  LogFile log(path, 1 << 20, records, /*create_when_written=*/true);
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
  std::string records;
  LogFile log(path, 1 << 20, records, /*create_when_written=*/true);
  ASSERT_EQ(log.Open(), 0);
  Append(log, LogStream::kStderr, "late\n");
  log.Close();
  const std::vector<std::string> lines = Lines(ReadWholeFile(path));
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "2026-12-06T12:00:00.123456789Z stderr F late");
  EXPECT_EQ(lines[1].substr(30), " parafork F end 5");
}

TEST(LogFile, WritesAReadThatEndsMidLineAsAPRecordContinuedByTheNext) {
  TemporaryDirectory directory;
  std::string records;
  LogFile log(directory.path() + "/1.log", 1 << 20, records);
  ASSERT_EQ(log.Open(), 0);
  Append(log, LogStream::kStdout, "progress: 10%");
  Append(log, LogStream::kStdout, " 20%\nnext");
  log.Close();
  std::vector<std::string> lines = Lines(ReadWholeFile(directory.path() + "/1.log"));
  lines.pop_back();  // the end record
  EXPECT_EQ(lines, (std::vector<std::string>{"2026-12-06T12:00:00.123456789Z stdout P progress: 10%",
                                             "2026-12-06T12:00:00.123456789Z stdout F  20%",
                                             "2026-12-06T12:00:00.123456789Z stdout P next"}));
}

TEST(LogFile, SharesItsRecordBufferWithTheOtherLogsOfItsThreadAndLeavesItEmpty) {
  TemporaryDirectory directory;
  std::string records;
  LogFile first(directory.path() + "/1.log", 1 << 20, records);
  LogFile second(directory.path() + "/2.log", 1 << 20, records);
  ASSERT_EQ(first.Open(), 0);
  ASSERT_EQ(second.Open(), 0);
  for (int round = 0; round < 3; ++round) {
    Append(first, LogStream::kStdout, "first " + std::to_string(round) + "\npartial");
    EXPECT_TRUE(records.empty());
    Append(second, LogStream::kStderr, "second " + std::to_string(round) + "\n");
    EXPECT_TRUE(records.empty());
  }
  first.Close();
  second.Close();
  EXPECT_TRUE(records.empty());
  std::vector<std::string> lines = Lines(ReadWholeFile(directory.path() + "/1.log"));
  ASSERT_EQ(lines.size(), 7u);
  EXPECT_EQ(lines[0].substr(31), "stdout F first 0");
  EXPECT_EQ(lines[1].substr(31), "stdout P partial");
  EXPECT_EQ(lines[2].substr(31), "stdout F first 1");
  EXPECT_EQ(lines[6].substr(31), "parafork F end 45");
  lines = Lines(ReadWholeFile(directory.path() + "/2.log"));
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[2].substr(31), "stderr F second 2");
  EXPECT_EQ(lines[3].substr(31), "parafork F end 27");
}

TEST(LogFile, CutsALineLongerThanARecordIntoPPieces) {
  TemporaryDirectory directory;
  std::string records;
  LogFile log(directory.path() + "/1.log", 1 << 20, records);
  ASSERT_EQ(log.Open(), 0);
  Append(log, LogStream::kStdout, std::string(LogFile::kMaxRecordPayload * 2 + 5, 'x') + "\n");
  log.Close();
  const std::vector<std::string> lines = Lines(ReadWholeFile(directory.path() + "/1.log"));
  ASSERT_EQ(lines.size(), 4u);  // three pieces and the end record
  EXPECT_EQ(lines[0].substr(31, 9), "stdout P ");
  EXPECT_EQ(lines[0].size(), 40 + LogFile::kMaxRecordPayload);
  EXPECT_EQ(lines[1].substr(31, 9), "stdout P ");
  EXPECT_EQ(lines[2], "2026-12-06T12:00:00.123456789Z stdout F xxxxx");
}

TEST(LogFile, NeverHoldsMoreThanItsCapOnDiskAndKeepsTheNewestOutput) {
  TemporaryDirectory directory;
  const std::string path = directory.path() + "/1.log";
  const uint64_t cap = 128 * 1024;
  std::string records;
  LogFile log(path, cap, records);
  ASSERT_EQ(log.Open(), 0);
  for (int line = 0; line < 20000; ++line) {
    Append(log, LogStream::kStdout, "line " + std::to_string(line) + "\n");
    ASSERT_LE(FileSize(path) + FileSize(path + ".1"), cap);
  }
  log.Close();
  EXPECT_EQ(log.totals().disk_bytes, FileSize(path) + FileSize(path + ".1"));
  const std::vector<std::string> newest = Lines(ReadWholeFile(path));
  EXPECT_EQ(newest[newest.size() - 2], "2026-12-06T12:00:00.123456789Z stdout F line 19999");
  EXPECT_GT(log.totals().dropped_bytes, 0u);
  EXPECT_LT(log.totals().dropped_bytes, log.totals().payload_bytes);
}

TEST(LogFile, BeginsEachRotatedFileWithTheOffsetOfItsFirstPayloadByte) {
  TemporaryDirectory directory;
  const std::string path = directory.path() + "/1.log";
  std::string records;
  LogFile log(path, LogFile::kMinimumMaxBytes, records);
  ASSERT_EQ(log.Open(), 0);
  // 10-byte lines (9 characters and the newline): the offset of any line is a multiple of 10.
  for (int line = 0; line < 10000; ++line) {
    char text[24];
    snprintf(text, sizeof(text), "%09d\n", line);
    Append(log, LogStream::kStdout, text);
  }
  log.Close();
  // Each file opens with the offset of the payload byte its next record starts with; the older
  // file's offset is what was dropped before it.
  const std::vector<std::string> older = Lines(ReadWholeFile(path + ".1"));
  const std::vector<std::string> newer = Lines(ReadWholeFile(path));
  const std::string marker_prefix = "2026-12-06T12:00:00.123456789Z parafork F offset ";
  ASSERT_EQ(older[0].rfind(marker_prefix, 0), 0u);
  ASSERT_EQ(newer[0].rfind(marker_prefix, 0), 0u);
  const uint64_t older_offset = std::stoull(older[0].substr(marker_prefix.size()));
  const uint64_t newer_offset = std::stoull(newer[0].substr(marker_prefix.size()));
  char first_line[24];
  snprintf(first_line, sizeof(first_line), "%09llu", static_cast<unsigned long long>(older_offset / 10));
  EXPECT_EQ(older[1], "2026-12-06T12:00:00.123456789Z stdout F " + std::string(first_line));
  EXPECT_EQ(newer_offset, older_offset + (older.size() - 1) * 10);
  EXPECT_EQ(newer.back().substr(30), " parafork F end 100000");
  EXPECT_EQ(log.totals().dropped_bytes, older_offset);
  EXPECT_EQ(log.totals().payload_bytes, 100000u);
}

}  // namespace
}  // namespace parafork
