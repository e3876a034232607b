// The network namespace pool's contract (native/src/network_namespace_pool.h): a namespace comes back
// into use only when it holds nothing of its last task, never while a task may still be in it, and
// never when its task could have changed what the check does not read. The pool tests need root
// (CAP_SYS_ADMIN makes network namespaces).
#include "../src/network_namespace_pool.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "../src/network_namespace_leftovers.h"

namespace parafork {
namespace {

using namespace std::chrono_literals;

constexpr const char* kFreshSockstat =
    "sockets: used 0\nTCP: inuse 0 orphan 3 tw 0 alloc 12 mem 7\nUDP: inuse 0 mem 2\nUDPLITE: inuse 0\n"
    "RAW: inuse 0\nFRAG: inuse 0 memory 0\n";
constexpr const char* kFlowLabelHeader = "Label S Owner  Users  Linger Expires  Dst                              Opt\n";

TEST(NetworkNamespaceLeftovers, SockstatOfAFreshNamespaceCountsNoSocketWhateverTheKernelWideNumbers) {
  EXPECT_TRUE(SockstatCountsNoSocket(kFreshSockstat));
}

TEST(NetworkNamespaceLeftovers, AnySocketOfTheNamespaceCounts) {
  EXPECT_FALSE(SockstatCountsNoSocket("sockets: used 1\nTCP: inuse 0 orphan 0 tw 0 alloc 0 mem 0\n"));
  EXPECT_FALSE(SockstatCountsNoSocket("sockets: used 0\nTCP: inuse 0 orphan 0 tw 2 alloc 0 mem 0\n"));
  EXPECT_FALSE(SockstatCountsNoSocket("sockets: used 0\nTCP: inuse 0 orphan 0 tw 0 alloc 0 mem 0\nRAW: inuse 1\n"));
}

TEST(NetworkNamespaceLeftovers, SockstatThatCannotBeReadCountsAsHoldingSomething) {
  EXPECT_FALSE(SockstatCountsNoSocket(""));
  EXPECT_FALSE(SockstatCountsNoSocket("sockets: used"));
  EXPECT_FALSE(SockstatCountsNoSocket("TCP: inuse 0\n"));
}

TEST(NetworkNamespaceLeftovers, FlowLabelsAreNoneWhenOnlyTheHeaderIsListed) {
  EXPECT_TRUE(FlowLabelsListNone(kFlowLabelHeader));
  EXPECT_FALSE(FlowLabelsListNone(std::string(kFlowLabelHeader) +
                                  "857B5 1 0      0      60     59       00000000000000000000000000000001 0   \n"));
  EXPECT_FALSE(FlowLabelsListNone(""));
}

// Polls until `condition` holds or the deadline passes; returns whether it held.
template <typename Condition>
bool Eventually(Condition condition, std::chrono::milliseconds deadline = 3000ms) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return condition();
}

ino_t InodeOf(int fd) {
  struct stat status = {};
  fstat(fd, &status);
  return status.st_ino;
}

// Runs `action` on a thread that has joined the namespace `fd` (only that thread moves).
template <typename Action>
void InNamespace(int fd, Action action) {
  std::thread visitor([&] {
    ASSERT_EQ(setns(fd, CLONE_NEWNET), 0) << strerror(errno);
    action();
  });
  visitor.join();
}

// The check's kept files (network_namespace_leftovers.h) read the namespace they were opened in,
// whichever namespace the reading thread is in then: the pool's thread reads them from home.
TEST(NetworkNamespaceFiles, KeptFilesReadTheNamespaceTheyWereOpenedInFromAnywhere) {
  if (geteuid() != 0) GTEST_SKIP() << "making network namespaces needs root";
  UniqueFd made;
  NetworkNamespaceFiles files;
  std::thread maker([&] {
    // The thread's own /proc/thread-self/net, as the pool's thread keeps it.
    UniqueFd net_directory(open("/proc/thread-self/net", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << strerror(errno);
    made.reset(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_EQ(files.Open(net_directory.get()), 0);
  });
  maker.join();
  ASSERT_TRUE(made && files.opened);
  EXPECT_EQ(FindNetworkNamespaceLeftovers(files), Leftovers::kNone);
  // A socket of this (home) namespace is not the kept namespace's.
  const int here = socket(AF_INET, SOCK_DGRAM, 0);
  ASSERT_GE(here, 0);
  EXPECT_EQ(FindNetworkNamespaceLeftovers(files), Leftovers::kNone);
  close(here);
  int there = -1;
  std::thread visitor([&] {
    ASSERT_EQ(setns(made.get(), CLONE_NEWNET), 0) << strerror(errno);
    there = socket(AF_INET, SOCK_DGRAM, 0);
  });
  visitor.join();
  ASSERT_GE(there, 0);
  EXPECT_EQ(FindNetworkNamespaceLeftovers(files), Leftovers::kSockets) << "read again from offset 0, anew";
  close(there);
  EXPECT_EQ(FindNetworkNamespaceLeftovers(files), Leftovers::kNone);
}

TEST(NetworkNamespaceFiles, FilesNeverOpenedCountAsLingering) {
  EXPECT_EQ(FindNetworkNamespaceLeftovers(NetworkNamespaceFiles{}), Leftovers::kLingering);
}

class NetworkNamespacePoolTest : public testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "making network namespaces needs root";
    ASSERT_EQ(pool_.Start(), 0);
    ASSERT_TRUE(Eventually([&] { return pool_.Snapshot().idle == 2; }));
  }

  NetworkNamespacePool pool_{NetworkNamespacePool::Limits{.reserve = 2, .max_idle = 4, .trim_after = 100ms}};
};

TEST_F(NetworkNamespacePoolTest, ANamespaceGivenBackHoldingNothingIsLeasedAgain) {
  NetworkNamespaceLease lease = pool_.Lease(/*reusable=*/true);
  ASSERT_TRUE(lease);
  const ino_t leased = InodeOf(lease.fd());
  InNamespace(lease.fd(), [] { close(socket(AF_UNIX, SOCK_STREAM, 0)); });  // made and closed: nothing left
  lease.Return();
  ASSERT_TRUE(Eventually([&] { return pool_.Snapshot().reused == 1; }));
  NetworkNamespaceLease again = pool_.Lease(/*reusable=*/true);
  EXPECT_EQ(InodeOf(again.fd()), leased) << "the last one given back is leased first";
}

TEST_F(NetworkNamespacePoolTest, ANamespaceWhoseLastSocketIsFreedLateIsReusedOnceItIs) {
  NetworkNamespaceLease lease = pool_.Lease(/*reusable=*/true);
  const ino_t leased = InodeOf(lease.fd());
  // A netlink socket is freed an RCU grace period after its close: the first look may still see it.
  InNamespace(lease.fd(), [] { close(socket(AF_NETLINK, SOCK_RAW, 2 /* NETLINK_USERSOCK */)); });
  lease.Return();
  ASSERT_TRUE(Eventually([&] { return pool_.Snapshot().reused == 1; }));
  EXPECT_EQ(pool_.Snapshot().dropped, 0u);
  EXPECT_EQ(InodeOf(pool_.Lease(/*reusable=*/true).fd()), leased);
}

TEST_F(NetworkNamespacePoolTest, ANamespaceGivenBackWithASocketStillInItIsDropped) {
  NetworkNamespaceLease lease = pool_.Lease(/*reusable=*/true);
  const ino_t leased = InodeOf(lease.fd());
  int left_behind = -1;
  InNamespace(lease.fd(), [&] {
    left_behind = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address = {};
    address.sun_family = AF_UNIX;
    memcpy(address.sun_path, "\0parafork-pool-test", 19);
    ASSERT_EQ(bind(left_behind, reinterpret_cast<sockaddr*>(&address), sizeof(sa_family_t) + 19), 0);
  });
  lease.Return();
  // Looked at again 10 ms, 100 ms and 1 s later (a socket may be freed late), then dropped.
  ASSERT_TRUE(Eventually([&] { return pool_.Snapshot().settling == 1; }));
  ASSERT_TRUE(Eventually([&] { return pool_.Snapshot().dropped == 1; }, 5000ms));
  EXPECT_EQ(pool_.Snapshot().settling, 0u);
  for (int index = 0; index < 4; ++index) {
    NetworkNamespaceLease other = pool_.Lease(/*reusable=*/true);
    if (other) {
      EXPECT_NE(InodeOf(other.fd()), leased);
    }
  }
  close(left_behind);
}

TEST_F(NetworkNamespacePoolTest, ANamespaceWithALingeringIPv6FlowLabelIsDropped) {
  NetworkNamespaceLease lease = pool_.Lease(/*reusable=*/true);
  bool made = false;
  InNamespace(lease.fd(), [&] {
    int flow = socket(AF_INET6, SOCK_DGRAM, 0);
    if (flow < 0) return;  // no IPv6: nothing to test
    // struct in6_flowlabel_req: get, exclusive, create, linger 60 s (linux/in6.h).
    struct {
      in6_addr destination;
      uint32_t label;
      uint8_t action, share;
      uint16_t flags, expires, linger;
      uint32_t padding;
    } request = {in6addr_loopback, htonl(0x12345), 0, 1, 1, 0, 60, 0};
    made = setsockopt(flow, IPPROTO_IPV6, 32 /* IPV6_FLOWLABEL_MGR */, &request, sizeof(request)) == 0;
    close(flow);
  });
  if (!made) GTEST_SKIP() << "no IPv6 flow labels here";
  lease.Return();
  EXPECT_TRUE(Eventually([&] { return pool_.Snapshot().dropped == 1; }));
  EXPECT_EQ(pool_.Snapshot().reused, 0u);
}

TEST_F(NetworkNamespacePoolTest, AfterABurstTheIdleNamespacesNoLeaseNeedsAreClosedDownToTheReserve) {
  std::vector<NetworkNamespaceLease> burst;
  for (int index = 0; index < 4; ++index) burst.push_back(pool_.Lease(/*reusable=*/true));
  ASSERT_TRUE(Eventually([&] { return pool_.Snapshot().idle == 2; })) << "the reserve refilled";
  for (NetworkNamespaceLease& lease : burst) lease.Return();
  ASSERT_TRUE(Eventually([&] { return pool_.Snapshot().idle == 4; })) << "given back, up to max_idle";
  EXPECT_TRUE(Eventually([&] { return pool_.Snapshot().idle == 2 && pool_.Snapshot().trimmed >= 2; }));
}

TEST_F(NetworkNamespacePoolTest, ANamespaceLeasedAsNotReusableIsDroppedUnread) {
  NetworkNamespaceLease lease = pool_.Lease(/*reusable=*/false);
  lease.Return();
  EXPECT_EQ(pool_.Snapshot().dropped, 1u);
}

TEST_F(NetworkNamespacePoolTest, ALeaseDestroyedWithoutReturnNeverComesBack) {
  ino_t leased = 0;
  {
    NetworkNamespaceLease lease = pool_.Lease(/*reusable=*/true);
    leased = InodeOf(lease.fd());
  }
  std::this_thread::sleep_for(20ms);
  const NetworkNamespacePool::Counts counts = pool_.Snapshot();
  EXPECT_EQ(counts.reused + counts.dropped, 0u);
  for (int index = 0; index < 4; ++index) {
    NetworkNamespaceLease other = pool_.Lease(/*reusable=*/true);
    if (other) {
      EXPECT_NE(InodeOf(other.fd()), leased);
    }
  }
}

// A child that has unshared `flags` and waits to be killed, with a pidfd of it.
class ChildInNewNamespaces {
 public:
  explicit ChildInNewNamespaces(int flags) {
    int ready[2];
    if (pipe(ready) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      const char byte = unshare(flags) == 0 ? 'y' : 'n';
      if (write(ready[1], &byte, 1) != 1) _exit(1);
      pause();
      _exit(0);
    }
    char byte = 0;
    unshared_ = read(ready[0], &byte, 1) == 1 && byte == 'y';
    close(ready[0]);
    close(ready[1]);
    pidfd_ = static_cast<int>(syscall(SYS_pidfd_open, pid_, 0));
  }
  ~ChildInNewNamespaces() {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    close(pidfd_);
  }
  bool unshared() const { return unshared_; }
  int pidfd() const { return pidfd_; }
  ino_t network_namespace() const {
    struct stat status = {};
    stat(("/proc/" + std::to_string(pid_) + "/ns/net").c_str(), &status);
    return status.st_ino;
  }

 private:
  pid_t pid_ = -1;
  int pidfd_ = -1;
  bool unshared_ = false;
};

TEST_F(NetworkNamespacePoolTest, WhenNoneIsIdleTheLeaseIsEmptyAndTheClonesNamespaceCanBeAdopted) {
  std::vector<NetworkNamespaceLease> held;
  for (NetworkNamespaceLease lease = pool_.Lease(true); lease; lease = pool_.Lease(true)) held.push_back(std::move(lease));
  EXPECT_GE(pool_.Snapshot().missed, 1u);
  // What a spawn does then: the clone makes a namespace (here a forked child unshares one).
  ChildInNewNamespaces child(CLONE_NEWNET);
  ASSERT_TRUE(child.unshared());
  NetworkNamespaceLease adopted = pool_.Adopt(child.pidfd());
  if (!adopted) GTEST_SKIP() << "PIDFD_GET_NET_NAMESPACE needs Linux 6.11";
  EXPECT_EQ(InodeOf(adopted.fd()), child.network_namespace());
  adopted.Return();
  EXPECT_TRUE(Eventually([&] { return pool_.Snapshot().reused == 1; })) << "an adopted namespace joins the pool";
}

TEST_F(NetworkNamespacePoolTest, AnAdoptedNamespaceIsCheckedAsAMadeOneIs) {
  std::vector<NetworkNamespaceLease> held;
  for (NetworkNamespaceLease lease = pool_.Lease(true); lease; lease = pool_.Lease(true)) held.push_back(std::move(lease));
  ChildInNewNamespaces child(CLONE_NEWNET);
  ASSERT_TRUE(child.unshared());
  NetworkNamespaceLease adopted = pool_.Adopt(child.pidfd());
  if (!adopted) GTEST_SKIP() << "PIDFD_GET_NET_NAMESPACE needs Linux 6.11";
  // Its check's files are opened at its first check: a socket left in it is found all the same.
  int left_behind = -1;
  InNamespace(adopted.fd(), [&] { left_behind = socket(AF_INET, SOCK_DGRAM, 0); });
  ASSERT_GE(left_behind, 0);
  adopted.Return();
  ASSERT_TRUE(Eventually([&] { return pool_.Snapshot().settling == 1; }));
  EXPECT_EQ(pool_.Snapshot().reused, 0u);
  close(left_behind);
  EXPECT_TRUE(Eventually([&] { return pool_.Snapshot().reused == 1; }, 5000ms)) << "looked at again once the socket is gone";
}

TEST_F(NetworkNamespacePoolTest, ANamespaceAnotherUserNamespaceOwnsIsNeverAdopted) {
  ChildInNewNamespaces child(CLONE_NEWUSER | CLONE_NEWNET);
  if (!child.unshared()) GTEST_SKIP() << "no user namespaces here";
  EXPECT_FALSE(pool_.Adopt(child.pidfd()));
}

}  // namespace
}  // namespace parafork
