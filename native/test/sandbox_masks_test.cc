// The masked-path lists (native/src/sandbox_masks.h): which paths are accepted, how a request's
// list is parsed and reused, and how a list comes to read-only knobs, /proc masks and root masks
// on a given /proc (here a fake one in a temporary directory).
#include "../src/sandbox_masks.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <string>

namespace parafork {
namespace {

TEST(MaskedPathProblem, AcceptsNormalizedAbsolutePaths) {
  for (const char* path : {"/root", "/etc/shadow", "/proc/kcore", "/var/lib/kubelet", "/proc/sys/kernel/core_pattern"}) {
    EXPECT_EQ(MaskedPathProblem(path), "") << path;
  }
}

TEST(MaskedPathProblem, RefusesWhatCannotOrMustNotBeMasked) {
  for (const char* path : {"", "relative", "/", "/root/", "/etc//shadow", "/etc/./shadow", "/etc/../root", "/proc", "/dev",
                           "/tmp", "/dev/null", "/tmp/x"}) {
    EXPECT_NE(MaskedPathProblem(path), "") << path;
  }
}

TEST(IsBelow, MeansStrictlyInsideTheDirectory) {
  EXPECT_TRUE(IsBelow("/run/x", "/run"));
  EXPECT_FALSE(IsBelow("/run", "/run"));
  EXPECT_FALSE(IsBelow("/running", "/run"));
  EXPECT_FALSE(IsBelow("/ru", "/run"));
}

TEST(MaskedPathsCache, ParsesOnePathPerLineAndReusesTheLastList) {
  MaskedPathsCache cache;
  std::string problem;
  auto first = cache.Parse("/root\n/proc/kcore", &problem);
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->paths, (std::vector<std::string>{"/root", "/proc/kcore"}));
  EXPECT_EQ(cache.Parse("/root\n/proc/kcore", &problem), first);
  auto empty = cache.Parse("", &problem);
  ASSERT_NE(empty, nullptr);
  EXPECT_TRUE(empty->paths.empty());
}

TEST(MaskedPathsCache, RefusesABadPathNamingIt) {
  MaskedPathsCache cache;
  std::string problem;
  EXPECT_EQ(cache.Parse("/root\n/tmp/x", &problem), nullptr);
  EXPECT_NE(problem.find("/tmp/x"), std::string::npos);
  EXPECT_EQ(cache.Parse("/root\n\n/home", &problem), nullptr);
}

class FakeProc : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/parafork-fake-proc-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    for (const char* directory : {"sys", "irq", "acpi"}) ASSERT_EQ(mkdir((root_ + "/" + directory).c_str(), 0755), 0);
    for (const char* file : {"sysrq-trigger", "kcore", "timer_list"}) std::ofstream(root_ + "/" + file) << "";
  }
  void TearDown() override {
    for (const char* directory : {"sys", "irq", "acpi"}) rmdir((root_ + "/" + directory).c_str());
    for (const char* file : {"sysrq-trigger", "kcore", "timer_list"}) unlink((root_ + "/" + file).c_str());
    rmdir(root_.c_str());
  }
  std::string root_;
};

TEST_F(FakeProc, ALayoutHoldsOnlyTheKnobsAndMasksThisProcHasWithTheirKinds) {
  MaskLayout layout;
  BuildMaskLayout({"/root", "/proc/kcore", "/proc/acpi", "/proc/keys", "/etc/hostname"}, root_, &layout);
  EXPECT_EQ(layout.proc_read_only, (std::vector<std::string>{"/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}));
  EXPECT_EQ(layout.proc_masks, (std::vector<std::string>{"/proc/kcore", "/proc/acpi"}));  // no /proc/keys here
  EXPECT_EQ(layout.root_masks, (std::vector<std::string>{"/root", "/etc/hostname"}));
  // The template binds its read-only knobs, then the masks: the empty file or directory by kind.
  ASSERT_EQ(layout.template_proc_mounts.size(), 5u);
  EXPECT_STREQ(layout.template_proc_mounts[0].source, "read-only/irq");
  EXPECT_STREQ(layout.template_proc_mounts[0].target, "/proc/irq");
  EXPECT_STREQ(layout.template_proc_mounts[3].source, kMaskFileName);
  EXPECT_STREQ(layout.template_proc_mounts[3].target, "/proc/kcore");
  EXPECT_STREQ(layout.template_proc_mounts[4].source, kMaskDirectoryName);
  // The per-task path makes the knobs read-only in place, then binds the same masks.
  ASSERT_EQ(layout.proc_read_only_targets.size(), 3u);
  EXPECT_STREQ(layout.proc_read_only_targets[1], "/proc/sys");
  ASSERT_EQ(layout.proc_mask_mounts.size(), 2u);
  EXPECT_STREQ(layout.proc_mask_mounts[1].target, "/proc/acpi");
}

}  // namespace
}  // namespace parafork
