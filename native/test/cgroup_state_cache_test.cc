// Task cgroups as the spawn thread makes them (native/src/cgroup_state_cache.h, cgroup_join.h),
// on a directory standing in for cgroupfs: directories made or kept, limit files written unless
// they already read their value, what the cache knows skipped only when trusted, and a cgroup
// removed behind the cache's back made anew.
#include "../src/cgroup_state_cache.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <vector>

#include "../src/cgroup_join.h"
#include "temporary_directory.h"

namespace parafork {
namespace {

class CgroupStateCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(root_.path().empty());
    request_.cgroup = root_ / "task-1";
    request_.create_cgroups = true;
  }

  // A limit file that reads `read_back` once written (cgroupfs adds a newline).
  void AddLimit(const std::string& name, const std::string& value, const std::string& read_back = "") {
    request_.cgroup_files.push_back({request_.cgroup + "/" + name, value, read_back, false});
  }

  TemporaryDirectory root_;
  SpawnRequest request_;
  CgroupStateCache cache_;
};

TEST_F(CgroupStateCacheTest, MakesTheDirectoryAndWritesItsLimitFiles) {
  AddLimit("memory.max", "1048576");
  // cgroupfs has the file once the directory exists; a plain directory needs it made.
  ASSERT_EQ(mkdir(request_.cgroup.c_str(), 0755), 0);
  WriteWholeFile(request_.cgroup + "/memory.max", "max\n");
  EXPECT_EQ(cache_.Create(request_, /*trusted=*/true), 0);
  EXPECT_EQ(ReadWholeFile(request_.cgroup + "/memory.max"), "1048576");
}

TEST_F(CgroupStateCacheTest, AFileAlreadyReadingItsValueIsNotWritten) {
  ASSERT_EQ(mkdir(request_.cgroup.c_str(), 0755), 0);
  WriteWholeFile(request_.cgroup + "/memory.max", "1073741824\n");
  AddLimit("memory.max", "1G", "1073741824");
  EXPECT_EQ(cache_.Create(request_, /*trusted=*/false), 0);
  EXPECT_EQ(ReadWholeFile(request_.cgroup + "/memory.max"), "1073741824\n") << "a write would have left 1G73741824";
}

TEST_F(CgroupStateCacheTest, WhatTheCacheWroteIsSkippedWhenTrustedAndCheckedWhenNot) {
  ASSERT_EQ(mkdir(request_.cgroup.c_str(), 0755), 0);
  // Values of one length: a plain file, unlike cgroupfs, keeps what a shorter write leaves behind.
  WriteWholeFile(request_.cgroup + "/pids.max", "10");
  AddLimit("pids.max", "16", "16");
  ASSERT_EQ(cache_.Create(request_, /*trusted=*/true), 0);
  ASSERT_EQ(ReadWholeFile(request_.cgroup + "/pids.max"), "16");
  WriteWholeFile(request_.cgroup + "/pids.max", "99");  // changed behind the cache's back
  ASSERT_EQ(cache_.Create(request_, /*trusted=*/true), 0);
  EXPECT_EQ(ReadWholeFile(request_.cgroup + "/pids.max"), "99") << "trusted: skipped";
  ASSERT_EQ(cache_.Create(request_, /*trusted=*/false), 0);
  EXPECT_EQ(ReadWholeFile(request_.cgroup + "/pids.max"), "16") << "untrusted: read and written again";
}

TEST_F(CgroupStateCacheTest, ARefusedWriteFailsTheSpawnUnlessTheFileMayFail) {
  ASSERT_EQ(mkdir(request_.cgroup.c_str(), 0755), 0);
  request_.cgroup_files.push_back({request_.cgroup + "/absent.file", "1", "", /*may_fail=*/true});
  EXPECT_EQ(cache_.Create(request_, /*trusted=*/true), 0);
  request_.cgroup_files.push_back({request_.cgroup + "/absent.other", "1", "", /*may_fail=*/false});
  EXPECT_EQ(cache_.Create(request_, /*trusted=*/true), ENOENT);
}

TEST_F(CgroupStateCacheTest, AnExistingDirectoryIsKeptAndAMissingParentIsAnError) {
  ASSERT_EQ(mkdir(request_.cgroup.c_str(), 0755), 0);
  WriteWholeFile(request_.cgroup + "/kept", "");
  EXPECT_EQ(cache_.Create(request_, /*trusted=*/false), 0);
  EXPECT_TRUE(std::filesystem::exists(request_.cgroup + "/kept"));
  request_.cgroup = root_ / "no-parent/task";
  EXPECT_EQ(cache_.Create(request_, /*trusted=*/false), ENOENT);
}

TEST_F(CgroupStateCacheTest, JoiningACgroupRemovedBehindTheCachesBackMakesItAnew) {
  PreparedCgroups first;
  ASSERT_FALSE(first.Prepare(request_, cache_, /*use_clone3=*/true));
  EXPECT_GT(first.cgroup_fd, 2);
  first.Close();
  ASSERT_TRUE(std::filesystem::remove(request_.cgroup)) << "a sweep removes it";
  PreparedCgroups second;
  EXPECT_FALSE(second.Prepare(request_, cache_, /*use_clone3=*/true)) << "the trusted pass meets ENOENT, then remakes";
  EXPECT_TRUE(std::filesystem::is_directory(request_.cgroup));
  EXPECT_GE(second.cgroup_fd, 0);
}

TEST_F(CgroupStateCacheTest, FdsKeptByTheCallerAreUsedAsTheyAreAndNeverClosedHere) {
  const std::string v1 = root_ / "v1-task-1";
  request_.cgroups_v1 = {v1};
  request_.cgroup_join_fd = 1000;  // the numbers are the caller's: not opened, checked or closed here
  request_.cgroups_v1_join_fds = {1001};
  PreparedCgroups prepared;
  ASSERT_FALSE(prepared.Prepare(request_, cache_, /*use_clone3=*/true));
  EXPECT_TRUE(std::filesystem::is_directory(v1)) << "still made: the fds are only for the joins";
  EXPECT_EQ(prepared.cgroup_fd, 1000);
  EXPECT_EQ(prepared.v1_fds, std::vector<int>{1001});
  EXPECT_TRUE(prepared.kept);
  prepared.Close();
  // The clone(2) path joins v2 through cgroup.procs, which the kept directory fd is not: opened here.
  WriteWholeFile(request_.cgroup + "/cgroup.procs", "");
  PreparedCgroups without_clone3;
  ASSERT_FALSE(without_clone3.Prepare(request_, cache_, /*use_clone3=*/false));
  EXPECT_NE(without_clone3.cgroup_fd, 1000);
  EXPECT_GE(without_clone3.cgroup_fd, 0);
  EXPECT_EQ(without_clone3.v1_fds, std::vector<int>{1001});
  // Kept fds for some v1 directories only are not used: each directory's is opened here.
  request_.cgroups_v1 = {v1, root_ / "v1-other"};
  WriteWholeFile(v1 + "/tasks", "");
  ASSERT_EQ(mkdir(request_.cgroups_v1[1].c_str(), 0755), 0);
  WriteWholeFile(request_.cgroups_v1[1] + "/tasks", "");
  PreparedCgroups partly;
  ASSERT_FALSE(partly.Prepare(request_, cache_, /*use_clone3=*/true));
  ASSERT_EQ(partly.v1_fds.size(), 2u);
  EXPECT_NE(partly.v1_fds[0], 1001);
  EXPECT_EQ(partly.v1_owned.size(), 2u);
}

TEST_F(CgroupStateCacheTest, ACgroupThatCannotBeJoinedFailsInAttachOrCreateAsItWasAsked) {
  request_.create_cgroups = false;
  PreparedCgroups prepared;
  const SpawnFailure attach = prepared.Prepare(request_, cache_, /*use_clone3=*/true);
  EXPECT_EQ(attach.error_number, ENOENT);
  EXPECT_EQ(attach.syscall, Syscall::kCgroupAttach);
  request_.create_cgroups = true;
  request_.cgroup = root_ / "no-parent/task";
  const SpawnFailure create = prepared.Prepare(request_, cache_, /*use_clone3=*/true);
  EXPECT_EQ(create.error_number, ENOENT);
  EXPECT_EQ(create.syscall, Syscall::kCgroupCreate);
}

// Through `tasks`, not cgroup.procs: the write of "0" there moves only the writing thread, which
// the kernel spares its global cgroup_threadgroup_rwsem (cgroup_join.cc).
TEST_F(CgroupStateCacheTest, CgroupV1DirectoriesAreJoinedThroughTheirTasksFiles) {
  request_.cgroup.clear();
  request_.cgroups_v1 = {root_ / "pids-task", root_ / "memory-task"};
  for (const std::string& directory : request_.cgroups_v1) {
    ASSERT_EQ(mkdir(directory.c_str(), 0755), 0);
    WriteWholeFile(directory + "/tasks", "");
  }
  PreparedCgroups prepared;
  ASSERT_FALSE(prepared.Prepare(request_, cache_, /*use_clone3=*/true));
  EXPECT_LT(prepared.cgroup_fd, 0);
  ASSERT_EQ(prepared.v1_fds.size(), 2u);
  EXPECT_EQ(prepared.v1_fds[0], prepared.v1_owned[0].get());
  for (size_t index = 0; index < 2; ++index) {
    char target[4096];
    const std::string link = "/proc/self/fd/" + std::to_string(prepared.v1_fds[index]);
    const ssize_t length = readlink(link.c_str(), target, sizeof target - 1);
    ASSERT_GT(length, 0);
    EXPECT_EQ(std::string(target, static_cast<size_t>(length)), request_.cgroups_v1[index] + "/tasks");
  }
}

}  // namespace
}  // namespace parafork
