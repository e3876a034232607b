// The child table (native/src/child_table.h): it owns each child's record from Insert until Reap
// hands it back, signals only children it still holds, reaps with the exit status and resource
// usage, and at its end lets running children go without killing them.
#include "../src/child_table.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <cerrno>

#include "test_children.h"

namespace parafork {
namespace {

bool FdIsOpen(int fd) { return fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

TEST(ChildTable, AnExitedChildIsReapedWithItsExitCodeAndHandedBackWithItsPidfdClosed) {
  ChildTable table;
  ChildRecord* record = table.Insert(StartChild(/*id=*/1, /*exit_code=*/3));
  ASSERT_TRUE(record->pidfd);
  const int pidfd = record->pidfd.get();
  ExitInfo exit;
  std::unique_ptr<ChildRecord> reaped;
  while (!(reaped = table.Reap(record, &exit))) usleep(1000);
  EXPECT_EQ(reaped.get(), record) << "the same record, now the caller's";
  EXPECT_EQ(exit.exit_code, 3);
  EXPECT_EQ(exit.signal, 0);
  EXPECT_GT(exit.max_rss_kb, 0u);
  EXPECT_FALSE(reaped->pidfd);
  EXPECT_FALSE(FdIsOpen(pidfd));
  EXPECT_EQ(table.Size(), 0u);
}

TEST(ChildTable, ARunningChildIsNotReapedAndStaysInTheTable) {
  ChildTable table;
  ChildRecord* record = table.Insert(StartChild(/*id=*/1, kWaitToBeKilled));
  ExitInfo exit;
  EXPECT_EQ(table.Reap(record, &exit), nullptr);
  EXPECT_EQ(table.Size(), 1u);
  EXPECT_EQ(table.Signal(1, SIGKILL), 0);
  std::unique_ptr<ChildRecord> reaped;
  while (!(reaped = table.Reap(record, &exit))) usleep(1000);
  EXPECT_EQ(exit.exit_code, -1) << "a signal ended it";
  EXPECT_EQ(exit.signal, SIGKILL);
}

TEST(ChildTable, AChildNoLongerInTheTableCannotBeSignalled) {
  ChildTable table;
  EXPECT_EQ(table.Signal(42, SIGTERM), ESRCH) << "never inserted";
  ChildRecord* record = table.Insert(StartChild(/*id=*/42, /*exit_code=*/0));
  ExitInfo exit;
  while (!table.Reap(record, &exit)) usleep(1000);
  EXPECT_EQ(table.Signal(42, SIGTERM), ESRCH) << "reaped: its pidfd is closed, its pid may be anyone's";
}

TEST(ChildTable, TwoChildrenUnderOneIdAreEachOwnedAndReapedOnTheirOwn) {
  ChildTable table;
  ChildRecord* first = table.Insert(StartChild(/*id=*/5, /*exit_code=*/1));
  ChildRecord* second = table.Insert(StartChild(/*id=*/5, kWaitToBeKilled));
  EXPECT_EQ(table.Size(), 2u);
  ExitInfo exit;
  std::unique_ptr<ChildRecord> reaped;
  while (!(reaped = table.Reap(first, &exit))) usleep(1000);
  EXPECT_EQ(reaped.get(), first);
  EXPECT_EQ(exit.exit_code, 1);
  EXPECT_EQ(table.Size(), 1u) << "the second child's record is still the table's";
  EXPECT_TRUE(second->pidfd) << "and still usable";
  EXPECT_EQ(table.Signal(5, SIGKILL), 0);
  while (!(reaped = table.Reap(second, &exit))) usleep(1000);
  EXPECT_EQ(exit.signal, SIGKILL);
}

TEST(ChildTable, AtItsEndRunningChildrenAreLetGoNotKilledAndTheirPidfdsClosed) {
  pid_t pid;
  int pidfd;
  {
    ChildTable table;
    ChildRecord* record = table.Insert(StartChild(/*id=*/1, kWaitToBeKilled));
    pid = record->pid;
    pidfd = record->pidfd.get();
  }
  EXPECT_FALSE(FdIsOpen(pidfd));
  EXPECT_EQ(kill(pid, 0), 0) << "still running";
  siginfo_t info = {};
  EXPECT_EQ(waitid(P_PID, pid, &info, WEXITED | WNOHANG | __WALL), 0);
  EXPECT_EQ(info.si_pid, 0) << "not exited";
  KillAndReap(pid);
}

}  // namespace
}  // namespace parafork
