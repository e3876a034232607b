// Which uids own keys (native/src/user_keyrings.h): a task leased a uid has its keyrings emptied
// only when /proc/key-users lists that uid, since looking a user keyring up creates it for good.
#include "../src/user_keyrings.h"

#include <gtest/gtest.h>
#include <unistd.h>

namespace parafork {
namespace {

// As the kernel prints it (security/keys/proc.c, proc_key_users_show: "%5u: %5d %d/%d %d/%d %d/%d").
constexpr const char* kKeyUsers =
    "    0:    13 12/12 6/1000000 209/25000000\n"
    "  100:     1 1/1 1/200 9/20000\n"
    "1789919232:     3 3/3 2/200 36/20000\n";

TEST(KeyUsersTest, FindsAListedUidWhateverItsWidth) {
  EXPECT_TRUE(KeyUsersListUid(kKeyUsers, 0));
  EXPECT_TRUE(KeyUsersListUid(kKeyUsers, 100));
  EXPECT_TRUE(KeyUsersListUid(kKeyUsers, 1789919232));
}

TEST(KeyUsersTest, DoesNotTakeANumberInsideALineOrAPrefixForAUid) {
  EXPECT_FALSE(KeyUsersListUid(kKeyUsers, 10));         // a prefix of 100
  EXPECT_FALSE(KeyUsersListUid(kKeyUsers, 13));         // the usage column of root's line
  EXPECT_FALSE(KeyUsersListUid(kKeyUsers, 1789919));    // a prefix of the last
  EXPECT_FALSE(KeyUsersListUid("", 0));
  EXPECT_FALSE(KeyUsersListUid("garbage without colons\n", 0));
  EXPECT_TRUE(KeyUsersListUid("  7: 1 1/1 1/200 9/20000", 7));  // no newline at the end
}

TEST(KeyUsersTest, ReadsTheKernelsList) {
  // A uid no process has ever run as owns no key; a kernel without keys has no list and no keys.
  if (access("/proc/key-users", R_OK) != 0) GTEST_SKIP() << "no /proc/key-users";
  EXPECT_FALSE(UidMayHoldKeys(4294967293u));
}

}  // namespace
}  // namespace parafork
