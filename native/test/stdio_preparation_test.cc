// The child's stdout and stderr as the spawn thread opens them (native/src/stdio_preparation.h):
// every fd the child gets sits above 2 and is close-on-exec, a pipe's read end is JavaScript's,
// two streams naming one file share one open file, and a failure names the step that failed.
#include "../src/stdio_preparation.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "temporary_directory.h"

namespace parafork {
namespace {

bool CloseOnExec(int fd) { return (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0; }

class StdioPreparation : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(directory_.path().empty());
    dev_null_.reset(open("/dev/null", O_RDWR | O_CLOEXEC));
    request_.stdout_target = {OutputMode::kIgnore, ""};
    request_.stderr_target = {OutputMode::kIgnore, ""};
  }

  TemporaryDirectory directory_;
  UniqueFd dev_null_;
  SpawnRequest request_;
};

TEST_F(StdioPreparation, IgnoredOutputGoesToTheSharedDevNullAndOpensNothing) {
  PreparedStdio stdio;
  EXPECT_FALSE(stdio.Prepare(request_, dev_null_.get()));
  EXPECT_EQ(stdio.stdout_output.child_fd, dev_null_.get());
  EXPECT_EQ(stdio.stderr_output.child_fd, dev_null_.get());
  EXPECT_FALSE(stdio.stdout_output.owned_child_end) << "the shared /dev/null is the spawner's, not closed here";
  EXPECT_FALSE(stdio.stdout_output.parent_end);
}

TEST_F(StdioPreparation, APipeGivesTheChildTheWriteEndAndJavaScriptTheReadEndBothCloseOnExecAbove2) {
  request_.stdout_target = {OutputMode::kPipe, ""};
  PreparedStdio stdio;
  ASSERT_FALSE(stdio.Prepare(request_, dev_null_.get()));
  const int child_end = stdio.stdout_output.child_fd;
  const int parent_end = stdio.stdout_output.parent_end.get();
  EXPECT_GT(child_end, 2);
  EXPECT_GT(parent_end, 2);
  EXPECT_TRUE(CloseOnExec(child_end));
  EXPECT_TRUE(CloseOnExec(parent_end));
  ASSERT_EQ(write(child_end, "out", 3), 3);
  char read_back[8] = {};
  EXPECT_EQ(read(parent_end, read_back, sizeof(read_back)), 3);
  EXPECT_STREQ(read_back, "out");
}

TEST_F(StdioPreparation, ClosingTheChildEndsLetsThePipeReadEndOfFile) {
  request_.stderr_target = {OutputMode::kPipe, ""};
  PreparedStdio stdio;
  ASSERT_FALSE(stdio.Prepare(request_, dev_null_.get()));
  stdio.CloseChildEnds();
  char byte;
  EXPECT_EQ(read(stdio.stderr_output.parent_end.get(), &byte, 1), 0) << "EOF: no writer is left";
}

TEST_F(StdioPreparation, AFileIsTruncatedOrAppendedToAsAsked) {
  WriteWholeFile(directory_ / "out", "old");
  WriteWholeFile(directory_ / "err", "old");
  request_.stdout_target = {OutputMode::kFile, directory_ / "out"};
  request_.stderr_target = {OutputMode::kFileAppend, directory_ / "err"};
  PreparedStdio stdio;
  ASSERT_FALSE(stdio.Prepare(request_, dev_null_.get()));
  EXPECT_TRUE(CloseOnExec(stdio.stdout_output.child_fd));
  ASSERT_EQ(write(stdio.stdout_output.child_fd, "new", 3), 3);
  ASSERT_EQ(write(stdio.stderr_output.child_fd, "new", 3), 3);
  EXPECT_EQ(ReadWholeFile(directory_ / "out"), "new");
  EXPECT_EQ(ReadWholeFile(directory_ / "err"), "oldnew");
}

TEST_F(StdioPreparation, BothStreamsNamingOneFileShareOneOpenFileSoTheirWritesInterleave) {
  request_.stdout_target = {OutputMode::kFile, directory_ / "both"};
  request_.stderr_target = {OutputMode::kFile, directory_ / "both"};
  PreparedStdio stdio;
  ASSERT_FALSE(stdio.Prepare(request_, dev_null_.get()));
  EXPECT_EQ(stdio.stderr_output.child_fd, stdio.stdout_output.child_fd);
  ASSERT_EQ(write(stdio.stdout_output.child_fd, "a", 1), 1);
  ASSERT_EQ(write(stdio.stderr_output.child_fd, "b", 1), 1);
  EXPECT_EQ(ReadWholeFile(directory_ / "both"), "ab");
}

TEST_F(StdioPreparation, AFileThatCannotBeOpenedFailsInOpenWithItsErrno) {
  request_.stderr_target = {OutputMode::kFile, directory_ / "missing-directory/err"};
  PreparedStdio stdio;
  const SpawnFailure failure = stdio.Prepare(request_, dev_null_.get());
  EXPECT_EQ(failure.error_number, ENOENT);
  EXPECT_EQ(failure.syscall, Syscall::kOpen);
}

}  // namespace
}  // namespace parafork
