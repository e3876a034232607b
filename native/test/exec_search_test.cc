// The PATH search before the clone (native/src/exec_search.h): the candidates the child tries, in
// execvp(3)'s order, and the null-terminated arrays it hands execve(2).
#include "../src/exec_search.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace parafork {
namespace {

using Candidates = std::vector<std::string>;

TEST(ExecSearch, AFileWithASlashIsTriedAsItIsWhateverThePath) {
  EXPECT_EQ(ExecCandidates("./run.sh", "/usr/bin:/bin"), Candidates{"./run.sh"});
  EXPECT_EQ(ExecCandidates("/bin/true", "/usr/bin"), Candidates{"/bin/true"});
}

TEST(ExecSearch, WithoutAPathTheFileIsTriedAsItIs) {
  EXPECT_EQ(ExecCandidates("true", ""), Candidates{"true"});
}

TEST(ExecSearch, EachPathEntryIsJoinedWithTheFileInOrder) {
  EXPECT_EQ(ExecCandidates("true", "/usr/local/bin:/usr/bin/:/bin"),
            (Candidates{"/usr/local/bin/true", "/usr/bin/true", "/bin/true"}));
}

TEST(ExecSearch, EmptyPathEntriesAreSkippedNotReadAsTheWorkingDirectory) {
  EXPECT_EQ(ExecCandidates("true", ":/bin::/usr/bin:"), (Candidates{"/bin/true", "/usr/bin/true"}));
  EXPECT_TRUE(ExecCandidates("true", ":::").empty()) << "nothing to try: the spawn fails with ENOENT";
}

TEST(ExecSearch, ThePreparedArraysAreNullTerminatedAndPointAtTheRequestsStrings) {
  SpawnRequest request;
  request.file = "env";
  request.search_path = "/usr/bin:/bin";
  request.argv = {"env", "-i"};
  request.env = std::make_shared<const std::vector<std::string>>(std::vector<std::string>{"A=1"});
  ExecArrays arrays;
  ASSERT_TRUE(arrays.Prepare(request));
  EXPECT_STREQ(arrays.exec_paths()[0], "/usr/bin/env");
  EXPECT_STREQ(arrays.exec_paths()[1], "/bin/env");
  EXPECT_EQ(arrays.exec_paths()[2], nullptr);
  EXPECT_STREQ(arrays.argv()[0], "env");
  EXPECT_STREQ(arrays.argv()[1], "-i");
  EXPECT_EQ(arrays.argv()[2], nullptr);
  EXPECT_EQ(arrays.argv_pointers().size(), 3u) << "argv with its terminating nullptr";
  EXPECT_STREQ(arrays.envp()[0], "A=1");
  EXPECT_EQ(arrays.envp()[1], nullptr);
}

TEST(ExecSearch, APathOfOnlyEmptyEntriesLeavesNothingToPrepare) {
  SpawnRequest request;
  request.file = "true";
  request.search_path = "::";
  request.argv = {"true"};
  request.env = std::make_shared<const std::vector<std::string>>();
  ExecArrays arrays;
  EXPECT_FALSE(arrays.Prepare(request));
}

}  // namespace
}  // namespace parafork
