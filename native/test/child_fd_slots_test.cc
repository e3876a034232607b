// The low fd slots of the spawn threads (native/src/child_fd_slots.h): reserved above fd 3 and
// close-on-exec, an fd above the limit copied into the thread's next slot and one below it left
// as it is, out of slots the spawn falls back to copying the whole table, and every slot holds the
// placeholder again after a restore (the copies closed: a pipe's write end then sees no writer).
#include "../src/child_fd_slots.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../src/unique_fd.h"

namespace parafork {
namespace {

bool SameFile(int left, int right) {
  struct stat a = {};
  struct stat b = {};
  return fstat(left, &a) == 0 && fstat(right, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

TEST(ChildFdSlots, ReservesCloseOnExecSlotsAboveTheResultFd) {
  UniqueFd dev_null(open("/dev/null", O_RDWR | O_CLOEXEC));
  ChildFdSlots slots;
  ASSERT_TRUE(slots.Reserve(dev_null.get(), 3, 2));
  for (int thread = 0; thread < 3; ++thread) {
    for (int index = 0; index < slots.per_thread(); ++index) {
      const int slot = slots.ThreadSlots(thread)[index];
      EXPECT_GE(slot, 4);
      EXPECT_LT(slot, slots.limit());
      EXPECT_NE(fcntl(slot, F_GETFD) & FD_CLOEXEC, 0);
      EXPECT_TRUE(SameFile(slot, dev_null.get()));
    }
  }
  slots.Release();
  EXPECT_EQ(slots.limit(), 0);
}

TEST(ChildFdSlots, LowersHighFdsIntoTheThreadsSlotsAndRestoresThem) {
  UniqueFd dev_null(open("/dev/null", O_RDWR | O_CLOEXEC));
  ChildFdSlots slots;
  ASSERT_TRUE(slots.Reserve(dev_null.get(), 2, 2));
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd read_end(pipe_fds[0]);
  UniqueFd write_end(fcntl(pipe_fds[1], F_DUPFD_CLOEXEC, slots.limit() + 100));
  close(pipe_fds[1]);
  ASSERT_GE(write_end.get(), slots.limit());
  {
    LoweredChildFds lowered(&slots, 1);
    EXPECT_TRUE(lowered.shared());
    EXPECT_EQ(lowered.Lower(-1), -1);
    EXPECT_EQ(lowered.Lower(dev_null.get()), dev_null.get());  // below the limit already
    const int low = lowered.Lower(write_end.get());
    EXPECT_EQ(low, slots.ThreadSlots(1)[0]);
    EXPECT_TRUE(SameFile(low, write_end.get()));
    EXPECT_EQ(lowered.Lower(write_end.get()), slots.ThreadSlots(1)[1]);
    EXPECT_TRUE(lowered.shared());
    // A third high fd has no slot: the fd itself, and the child copies the whole table.
    EXPECT_EQ(lowered.Lower(write_end.get()), write_end.get());
    EXPECT_FALSE(lowered.shared());
  }
  for (int index = 0; index < 2; ++index) EXPECT_TRUE(SameFile(slots.ThreadSlots(1)[index], dev_null.get()));
  write_end.reset();
  char byte;
  EXPECT_EQ(read(read_end.get(), &byte, 1), 0);  // EOF: no copy of the write end is left
}

TEST(ChildFdSlots, NothingReservedMeansNothingShared) {
  LoweredChildFds lowered(nullptr, 0);
  EXPECT_FALSE(lowered.shared());
  EXPECT_EQ(lowered.Lower(1000), 1000);
}

}  // namespace
}  // namespace parafork
