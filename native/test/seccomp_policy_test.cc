// The default seccomp program (native/src/seccomp_policy.h) against a plain model of its rules:
// the hand-written classic BPF (a binary search over numbers, jumps to shared returns) must decide
// exactly as the rules say for every system call number and for the arguments the rules read, on
// their low 32 bits as the kernel reads them. A small interpreter runs the program; the kernel
// itself checks it once at the end.
#include "../src/seccomp_policy.h"

#include "../src/seccomp_attach_point.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/fs.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>
#include <vector>

namespace parafork {
namespace {

#if defined(__x86_64__)
constexpr uint32_t kNativeArchitecture = AUDIT_ARCH_X86_64;
constexpr uint32_t kOtherArchitecture = AUDIT_ARCH_I386;
constexpr uint32_t kOtherScmpArchitecture = SCMP_ARCH_X86;
constexpr uint32_t kX32Bit = 0x40000000;
#elif defined(__aarch64__)
constexpr uint32_t kNativeArchitecture = AUDIT_ARCH_AARCH64;
constexpr uint32_t kOtherArchitecture = AUDIT_ARCH_ARM;
constexpr uint32_t kOtherScmpArchitecture = SCMP_ARCH_ARM;
constexpr uint32_t kX32Bit = 0;
#endif

constexpr uint32_t kAllow = SECCOMP_RET_ALLOW;
constexpr uint32_t kPermissionDenied = SECCOMP_RET_ERRNO | EPERM;
constexpr uint32_t kNotImplemented = SECCOMP_RET_ERRNO | ENOSYS;
constexpr uint32_t kFamilyNotSupported = SECCOMP_RET_ERRNO | EAFNOSUPPORT;
constexpr uint32_t kSocketTypeNotSupported = SECCOMP_RET_ERRNO | ESOCKTNOSUPPORT;
constexpr uint32_t kProtocolNotSupported = SECCOMP_RET_ERRNO | EPROTONOSUPPORT;
constexpr uint32_t kSkippedAsDone = SECCOMP_RET_ERRNO | 0;
constexpr uint32_t kInvalidArgument = SECCOMP_RET_ERRNO | EINVAL;
constexpr uint64_t kHighBits[] = {0, 1ull << 32, 0xffffffff00000000ull};

// The program run as the kernel's seccomp does (seccomp_attach_point.h): the evaluation that
// judges where the child attaches a custom profile, so that the two cannot drift apart. nullopt
// if the program leaves its bounds, reads outside seccomp_data or uses an instruction neither
// this program nor libseccomp's need.
std::optional<uint32_t> Interpret(const std::vector<sock_filter>& program, const seccomp_data& data) {
  return RunSeccompProgram(program, data);
}

template <typename Values>
bool Contains(const Values& values, uint32_t value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

int NumberOf(const char* name) { return seccomp_syscall_resolve_name(name); }

// The rules, plainly: what the program must answer.
class Model {
 public:
  Model() : rules_(DefaultSeccompPolicyRules()) {
    for (const char* name : rules_.allowed_syscalls) {
      const int number = NumberOf(name);
      if (number >= 0) allowed_.insert(static_cast<uint32_t>(number));
    }
  }

  uint32_t Decide(const seccomp_data& data) const {
    if (data.arch != kNativeArchitecture) return SECCOMP_RET_KILL_PROCESS;
    const int number = static_cast<int>(data.nr);
    const auto low_word = [&](int index) { return static_cast<uint32_t>(data.args[index]); };
    if (number == NumberOf("ioctl")) {
      return Contains(rules_.refused_ioctl_requests, low_word(1)) ? kPermissionDenied : kAllow;
    }
    if (number == NumberOf("socket") || number == NumberOf("socketpair")) return DecideSocket(low_word(0), low_word(1), low_word(2));
    if (number == NumberOf("clone")) {
      return (low_word(0) & rules_.refused_clone_flags) != 0 ? kPermissionDenied : kAllow;
    }
    for (const RefusedFlagsRule& rule : rules_.refused_flags) {
      if (number == NumberOf(rule.syscall)) {
        return (low_word(rule.argument) & rule.refused_flags) != 0 ? SECCOMP_RET_ERRNO | static_cast<uint32_t>(rule.error) : kAllow;
      }
    }
    for (const char* name : rules_.not_implemented_syscalls) {
      if (number == NumberOf(name)) return kNotImplemented;
    }
    if (number == NumberOf("personality")) {
      return Contains(rules_.allowed_personalities, low_word(0)) ? kAllow : kPermissionDenied;
    }
    for (const char* name : rules_.invalid_argument_syscalls) {
      if (number == NumberOf(name)) return kInvalidArgument;
    }
    if (number == NumberOf("prctl")) return low_word(0) == rules_.refused_prctl_option ? kInvalidArgument : kAllow;
    if (number == NumberOf("fcntl") || number == NumberOf("fcntl64")) {
      return low_word(1) == rules_.refused_fcntl_command ? kInvalidArgument : kAllow;
    }
    if (number == NumberOf("setsockopt")) {
      return low_word(1) == SOL_SOCKET && Contains(rules_.refused_socket_filter_options, low_word(2)) ? kPermissionDenied : kAllow;
    }
    if (number == NumberOf("setrlimit")) return low_word(0) == rules_.fixed_resource_limit ? kSkippedAsDone : kAllow;
    if (number == NumberOf("fadvise64")) return low_word(3) == rules_.dropped_file_advice ? kSkippedAsDone : kAllow;
    if (number == NumberOf("prlimit64")) {
      // prlimit64(pid, resource, new, old): the pointers whole, as the kernel reads them.
      if (low_word(1) != rules_.fixed_resource_limit || data.args[2] == 0) return kAllow;
      return data.args[3] == 0 ? kSkippedAsDone : kPermissionDenied;
    }
    return allowed_.contains(data.nr) ? kAllow : kPermissionDenied;
  }

  const std::set<uint32_t>& allowed() const { return allowed_; }

 private:
  uint32_t DecideSocket(uint32_t family, uint32_t type_and_flags, uint32_t protocol) const {
    if (!Contains(rules_.allowed_socket_families, family)) return kFamilyNotSupported;
    if (!Contains(rules_.internet_families, family)) return kAllow;
    const uint32_t type = type_and_flags & rules_.socket_type_mask;
    if (type >= rules_.socket_type_limit || type == SOCK_RAW) return kAllow;
    if (type == SOCK_STREAM) return Contains(rules_.stream_protocols, protocol) ? kAllow : kProtocolNotSupported;
    if (type != SOCK_DGRAM) return kSocketTypeNotSupported;
    const bool ping = (family == AF_INET && protocol == IPPROTO_ICMP) || (family == AF_INET6 && protocol == IPPROTO_ICMPV6);
    return Contains(rules_.datagram_protocols, protocol) || ping ? kAllow : kProtocolNotSupported;
  }

  const DefaultSeccompRules& rules_;
  std::set<uint32_t> allowed_;
};

seccomp_data Call(int number, uint64_t argument0 = 0, uint64_t argument1 = 0,
                  uint32_t architecture = kNativeArchitecture) {
  seccomp_data data{};
  data.nr = number;
  data.arch = architecture;
  data.args[0] = argument0;
  data.args[1] = argument1;
  return data;
}

seccomp_data Call(int number, uint64_t argument0, uint64_t argument1, uint64_t argument2, uint64_t argument3) {
  seccomp_data data = Call(number, argument0, argument1);
  data.args[2] = argument2;
  data.args[3] = argument3;
  return data;
}

class DefaultSeccompProgram : public ::testing::Test {
 protected:
  std::optional<uint32_t> ActionFor(const seccomp_data& data) const { return Interpret(program_.instructions, data); }

  void ExpectAsModel(const seccomp_data& data) {
    const std::optional<uint32_t> action = ActionFor(data);
    ASSERT_TRUE(action.has_value()) << "system call " << data.nr;
    const char* name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, static_cast<int>(data.nr));
    EXPECT_EQ(*action, model_.Decide(data)) << "system call " << data.nr << " (" << (name ? name : "?")
                                            << "), arguments " << std::hex << data.args[0] << ", " << data.args[1];
    std::free(const_cast<char*>(name));
  }

  SeccompProgram program_ = BuildDefaultSeccompProgram();
  Model model_;
};

TEST_F(DefaultSeccompProgram, DecidesEveryNumberAsTheRulesSay) {
  for (uint32_t number = 0; number < 4096; ++number) ExpectAsModel(Call(static_cast<int>(number)));
  for (uint32_t number : {0x3fffffffu, 0x7fffffffu, 0x80000000u, 0xfffffffeu, 0xffffffffu}) {
    ExpectAsModel(Call(static_cast<int>(number)));
  }
  EXPECT_GT(model_.allowed().size(), 250u);  // libseccomp named the list
}

TEST_F(DefaultSeccompProgram, RefusesX32NumbersWithEperm) {
  // The x32 ABI sets bit 30 on its numbers (x86_64): above every rule, so refused.
  for (uint32_t number = 0x40000000; number < 0x40000000 + 1024; ++number) {
    EXPECT_EQ(ActionFor(Call(static_cast<int>(number))), kPermissionDenied) << number;
  }
}

TEST_F(DefaultSeccompProgram, KillsAnotherArchitecturesCalls) {
  for (int number : {0, 1, NumberOf("read"), NumberOf("socket"), 102 /* i386 socketcall */}) {
    EXPECT_EQ(ActionFor(Call(number, 0, 0, kOtherArchitecture)), SECCOMP_RET_KILL_PROCESS);
  }
}

TEST_F(DefaultSeccompProgram, RefusesTerminalInjectionIoctlsOnTheirLow32Bits) {
  for (uint64_t high : kHighBits) {
    for (uint64_t request : {0x0ul, 0x1ul, 0x5401ul /* TCGETS */, 0x541bul /* FIONREAD */, 0x540eul /* TIOCSCTTY */,
                             0x5412ul /* TIOCSTI */, 0x541cul /* TIOCLINUX */, 0x541dul /* TIOCCONS */,
                             0x5423ul /* TIOCSETD */, 0x4b47ul /* KDSKBENT */, 0x4b49ul /* KDSKBSENT */,
                             0x4b46ul /* KDGKBENT */, 0xfffffffful}) {
      ExpectAsModel(Call(NumberOf("ioctl"), 0, high | request));
    }
  }
  EXPECT_EQ(ActionFor(Call(NumberOf("ioctl"), 0, 1ull << 32 | TIOCSTI)), kPermissionDenied);
}

TEST_F(DefaultSeccompProgram, AllowsOnlyThreeSocketFamiliesOnTheirLow32Bits) {
  for (const char* call : {"socket", "socketpair"}) {
    for (uint64_t high : kHighBits) {
      for (uint64_t family = 0; family < 300; ++family) ExpectAsModel(Call(NumberOf(call), high | family));
    }
    for (uint64_t family : {AF_UNIX, AF_INET, AF_INET6}) {
      EXPECT_EQ(ActionFor(Call(NumberOf(call), family, SOCK_STREAM)), kAllow);
    }
    // Netlink receive queues are charged to no memory cgroup (red team, session 13).
    EXPECT_EQ(ActionFor(Call(NumberOf(call), AF_NETLINK)), kFamilyNotSupported);
    EXPECT_EQ(ActionFor(Call(NumberOf(call), 1ull << 32 | AF_VSOCK)), kFamilyNotSupported);
  }
}

// Inside AF_INET and AF_INET6 only TCP, UDP and ping, raw sockets and bad types being the kernel's
// to refuse: every other type or protocol is code few programs use, and where the kernel has
// modules each such socket() runs modprobe as root (red team, session 15).
TEST_F(DefaultSeccompProgram, AllowsOnlyTcpUdpAndPingInsideTheInternetFamilies) {
  for (const char* call : {"socket", "socketpair"}) {
    for (uint64_t family : {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK}) {
      for (uint64_t high : kHighBits) {
        for (uint64_t type = 0; type < 16; ++type) {
          for (uint64_t flags : {0, SOCK_NONBLOCK | SOCK_CLOEXEC}) {
            for (uint64_t protocol = 0; protocol < 300; ++protocol) {
              ExpectAsModel(Call(NumberOf(call), family, high | flags | type, high | protocol, 0));
            }
            for (uint64_t protocol : {0x7fffffffull, 0x80000000ull, 0xfffffff9ull, 0xffffffffull}) {
              ExpectAsModel(Call(NumberOf(call), family, high | flags | type, high | protocol, 0));
            }
          }
        }
      }
    }
    const int number = NumberOf(call);
    EXPECT_EQ(ActionFor(Call(number, AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0, 0)), kAllow);
    EXPECT_EQ(ActionFor(Call(number, AF_INET6, SOCK_STREAM, IPPROTO_TCP, 0)), kAllow);
    EXPECT_EQ(ActionFor(Call(number, AF_INET, SOCK_DGRAM, IPPROTO_UDP, 0)), kAllow);
    EXPECT_EQ(ActionFor(Call(number, AF_INET, SOCK_DGRAM, IPPROTO_ICMP, 0)), kAllow);
    EXPECT_EQ(ActionFor(Call(number, AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6, 0)), kAllow);
    EXPECT_EQ(ActionFor(Call(number, AF_INET, SOCK_RAW, IPPROTO_RAW, 0)), kAllow);  // the kernel: CAP_NET_RAW
    EXPECT_EQ(ActionFor(Call(number, AF_INET, 11 /* SOCK_MAX */, 0, 0)), kAllow);   // the kernel: EINVAL
    EXPECT_EQ(ActionFor(Call(number, AF_INET, SOCK_STREAM, IPPROTO_MPTCP, 0)), kProtocolNotSupported);
    EXPECT_EQ(ActionFor(Call(number, AF_INET, SOCK_STREAM, 1ull << 32 | IPPROTO_MPTCP, 0)), kProtocolNotSupported);
    EXPECT_EQ(ActionFor(Call(number, AF_INET, SOCK_STREAM, 132 /* SCTP */, 0)), kProtocolNotSupported);
    EXPECT_EQ(ActionFor(Call(number, AF_INET, SOCK_DGRAM, IPPROTO_UDPLITE, 0)), kProtocolNotSupported);
    EXPECT_EQ(ActionFor(Call(number, AF_INET, SOCK_DGRAM, IPPROTO_ICMPV6, 0)), kProtocolNotSupported);
    EXPECT_EQ(ActionFor(Call(number, AF_INET6, SOCK_DGRAM, IPPROTO_ICMP, 0)), kProtocolNotSupported);
    EXPECT_EQ(ActionFor(Call(number, AF_INET, SOCK_SEQPACKET, 132, 0)), kSocketTypeNotSupported);
    EXPECT_EQ(ActionFor(Call(number, AF_INET, SOCK_DCCP, 0, 0)), kSocketTypeNotSupported);
    EXPECT_EQ(ActionFor(Call(number, AF_UNIX, SOCK_SEQPACKET, 0, 0)), kAllow);
  }
}

TEST_F(DefaultSeccompProgram, LetsCloneMakeThreadsAndProcessesButNoNamespaces) {
  for (uint64_t high : kHighBits) {
    for (int bit = 0; bit < 32; ++bit) ExpectAsModel(Call(NumberOf("clone"), high | 1ull << bit));
  }
  const uint64_t thread = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM |
                          CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID;
  EXPECT_EQ(ActionFor(Call(NumberOf("clone"), thread)), kAllow);
  EXPECT_EQ(ActionFor(Call(NumberOf("clone"), SIGCHLD)), kAllow);
  EXPECT_EQ(ActionFor(Call(NumberOf("clone"), SIGCHLD | CLONE_NEWUSER)), kPermissionDenied);
  EXPECT_EQ(ActionFor(Call(NumberOf("clone3"))), kNotImplemented);
}

// Native AIO contexts count against one node-wide limit (fs.aio-max-nr): answered as a kernel
// without AIO answers.
TEST_F(DefaultSeccompProgram, AnswersNativeAioNotImplemented) {
  for (const char* name : {"io_setup", "io_destroy", "io_submit", "io_getevents", "io_cancel", "io_pgetevents"}) {
    EXPECT_EQ(ActionFor(Call(NumberOf(name), 4096)), kNotImplemented) << name;
  }
}

// Huge pages are the node's pool, which no memory limit counts: refused by flag, on the low 32 bits.
TEST_F(DefaultSeccompProgram, RefusesHugePageFlagsOnly) {
  for (const RefusedFlagsRule& rule : DefaultSeccompPolicyRules().refused_flags) {
    for (uint64_t high : kHighBits) {
      for (int bit = 0; bit < 32; ++bit) {
        seccomp_data data = Call(NumberOf(rule.syscall));
        data.args[rule.argument] = high | 1ull << bit;
        ExpectAsModel(data);
      }
    }
  }
  seccomp_data huge = Call(NumberOf("mmap"));
  huge.args[3] = MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB;
  EXPECT_EQ(ActionFor(huge), kPermissionDenied);
  huge.args[3] = MAP_PRIVATE | MAP_ANONYMOUS;
  EXPECT_EQ(ActionFor(huge), kAllow);
  EXPECT_EQ(ActionFor(Call(NumberOf("memfd_create"), 0, MFD_HUGETLB)), kPermissionDenied);
  EXPECT_EQ(ActionFor(Call(NumberOf("memfd_create"), 0, MFD_CLOEXEC)), kAllow);
}

// POSIX_FADV_DONTNEED drops pages others cached: not made, answered 0; other advice allowed.
TEST_F(DefaultSeccompProgram, NeverDropsPagesByAdvice) {
  for (uint64_t high : kHighBits) {
    for (uint64_t advice = 0; advice < 10; ++advice) {
      seccomp_data data = Call(NumberOf("fadvise64"), 3, 0, 0, high | advice);
      ExpectAsModel(data);
    }
  }
  EXPECT_EQ(ActionFor(Call(NumberOf("fadvise64"), 3, 0, 0, POSIX_FADV_DONTNEED)), kSkippedAsDone);
  EXPECT_EQ(ActionFor(Call(NumberOf("fadvise64"), 3, 0, 0, POSIX_FADV_WILLNEED)), kAllow);
}

// A read with RWF_NOWAIT tells whether a file's pages are cached: refused (EOPNOTSUPP), by flag.
TEST_F(DefaultSeccompProgram, RefusesNowaitReadsOnly) {
  seccomp_data read = Call(NumberOf("preadv2"));
  for (uint64_t high : kHighBits) {
    read.args[5] = high | RWF_NOWAIT;
    EXPECT_EQ(ActionFor(read), SECCOMP_RET_ERRNO | EOPNOTSUPP);
    read.args[5] = high | RWF_HIPRI | RWF_DSYNC;
    EXPECT_EQ(ActionFor(read), kAllow);
  }
  EXPECT_EQ(ActionFor(Call(NumberOf("pwritev2"), 0, 0, 0, 0)), kAllow);
}

TEST_F(DefaultSeccompProgram, AllowsOnlyHarmlessPersonalities) {
  for (uint64_t high : kHighBits) {
    for (uint64_t persona : {0x0ul, 0x8ul, 0x20000ul, 0x20008ul, 0x40000ul /* ADDR_NO_RANDOMIZE */,
                             0x400000ul /* READ_IMPLIES_EXEC */, 0xfffffffful}) {
      ExpectAsModel(Call(NumberOf("personality"), high | persona));
    }
  }
}

// RLIMIT_CORE stays 1, which keeps a crashing task from the node's crash handler: setting it is not
// done and answers 0; asking the old value at the same time is refused; reading it, and setting any
// other limit, is allowed. The resource on its low 32 bits, the pointers whole.
TEST_F(DefaultSeccompProgram, NeverChangesTheCoreDumpLimit) {
  const uint64_t pointers[] = {0, 1, 1ull << 32, 0x7ffd00000000ull, 0x7ffd12345678ull};
  for (uint64_t high : kHighBits) {
    for (uint64_t resource = 0; resource < 20; ++resource) {
      ExpectAsModel(Call(NumberOf("setrlimit"), high | resource, 0x7ffd12345678ull));
      for (uint64_t new_limit : pointers) {
        for (uint64_t old_limit : pointers) {
          ExpectAsModel(Call(NumberOf("prlimit64"), 0, high | resource, new_limit, old_limit));
        }
      }
    }
  }
  EXPECT_EQ(ActionFor(Call(NumberOf("setrlimit"), RLIMIT_CORE, 0x7ffd12345678ull)), kSkippedAsDone);
  EXPECT_EQ(ActionFor(Call(NumberOf("setrlimit"), RLIMIT_NOFILE, 0x7ffd12345678ull)), kAllow);
  EXPECT_EQ(ActionFor(Call(NumberOf("prlimit64"), 0, 1ull << 32 | RLIMIT_CORE, 0x7ffd00000000ull, 0)), kSkippedAsDone);
  EXPECT_EQ(ActionFor(Call(NumberOf("prlimit64"), 0, RLIMIT_CORE, 0x7ffd00000000ull, 0x7ffd00000000ull)), kPermissionDenied);
  EXPECT_EQ(ActionFor(Call(NumberOf("prlimit64"), 0, RLIMIT_CORE, 0, 0x7ffd12345678ull)), kAllow);
  EXPECT_EQ(ActionFor(Call(NumberOf("getrlimit"), RLIMIT_CORE, 0x7ffd12345678ull)), kAllow);
}

// Classic BPF programs of the task's own, whose machine code counts against the node's one
// bpf_jit_limit: setsockopt never attaches a socket filter (EPERM; the level and the option on
// their low 32 bits, the same numbers at other levels allowed), seccomp(2) and prctl
// PR_SET_SECCOMP answer EINVAL; every other prctl is allowed.
TEST_F(DefaultSeccompProgram, RefusesTheTasksOwnBpfPrograms) {
  for (uint64_t high : kHighBits) {
    for (uint64_t level : {0ul, 1ul /* SOL_SOCKET */, 6ul /* IPPROTO_TCP */, 41ul /* IPPROTO_IPV6 */, 0xfffful}) {
      for (uint64_t name = 0; name < 80; ++name) {
        ExpectAsModel(Call(NumberOf("setsockopt"), 3, high | level, high | name, 0x7ffd12345678ull));
      }
    }
    for (uint64_t option = 0; option < 80; ++option) ExpectAsModel(Call(NumberOf("prctl"), high | option, 2));
    for (uint64_t operation = 0; operation < 5; ++operation) ExpectAsModel(Call(NumberOf("seccomp"), high | operation));
  }
  EXPECT_EQ(ActionFor(Call(NumberOf("setsockopt"), 3, SOL_SOCKET, SO_ATTACH_FILTER, 0x7ffd12345678ull)), kPermissionDenied);
  EXPECT_EQ(ActionFor(Call(NumberOf("setsockopt"), 3, 1ull << 32 | SOL_SOCKET, 1ull << 32 | SO_ATTACH_REUSEPORT_CBPF, 0x7ffd12345678ull)), kPermissionDenied);
  EXPECT_EQ(ActionFor(Call(NumberOf("setsockopt"), 3, IPPROTO_IPV6, SO_ATTACH_FILTER /* IPV6_V6ONLY */, 0x7ffd12345678ull)), kAllow);
  EXPECT_EQ(ActionFor(Call(NumberOf("setsockopt"), 3, SOL_SOCKET, SO_REUSEADDR, 0x7ffd12345678ull)), kAllow);
  EXPECT_EQ(ActionFor(Call(NumberOf("seccomp"), SECCOMP_SET_MODE_FILTER, 0)), kInvalidArgument);
  EXPECT_EQ(ActionFor(Call(NumberOf("prctl"), PR_SET_SECCOMP, SECCOMP_MODE_FILTER)), kInvalidArgument);
  EXPECT_EQ(ActionFor(Call(NumberOf("prctl"), PR_SET_NAME, 0x7ffd12345678ull)), kAllow);
  EXPECT_EQ(ActionFor(Call(NumberOf("prctl"), PR_GET_SECCOMP)), kAllow);
}

// The sandbox's child attaches this program before it takes the task's ids, while it still holds
// CAP_SYS_ADMIN, so that a full net.core.bpf_jit_limit never refuses it (child.cc, BuildSandbox):
// every call the child makes after that point, with the arguments it makes it with, must be
// allowed, or no default task would start. The calls are the list a custom profile is judged by
// (seccomp_attach_point.h), kept in step with child.cc; the arguments that vary from spawn to
// spawn (ids, addresses, fds) are read as any value.
TEST_F(DefaultSeccompProgram, AllowsTheChildsOwnCallsAfterItsAttach) {
  const std::span<const ChildCall> calls = ChildCallsAfterPrivilegedAttach();
  ASSERT_GE(calls.size(), 20u);
  for (const ChildCall& call : calls) {
    EXPECT_EQ(call.number, NumberOf(call.name)) << call.name;
    const std::optional<uint32_t> answer = AnswerToChildCall(program_.instructions, call);
    if (call.when == ChildCall::When::kWhenEmptyingUserKeyrings) {
      // The child empties the task uid's keyrings only under a filter that lets keyctl through
      // (sandbox_preparation.cc, empty_user_keyrings): never under this one.
      EXPECT_EQ(answer, kPermissionDenied) << call.name;
      continue;
    }
    EXPECT_EQ(answer, kAllow) << call.name;
  }
  // As a custom profile would be judged: attached while privileged, and no spawn under it
  // empties keyrings.
  EXPECT_EQ(JudgeSeccompAttachPoint(program_.instructions), SeccompAttachPoint::kPrivilegedUnlessEmptyingUserKeyrings);
}

// A call whose answer depends on an argument that varies from spawn to spawn (the task's uid) is
// not judged by the example value in the list: a program that refuses setresuid for one uid only
// is not attached while privileged, whatever uid the example names.
TEST(SeccompAttachPoint, ReadsAVaryingArgumentAsAnyValue) {
  const std::vector<sock_filter> refuses_one_uid = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(NumberOf("setresuid")), 0, 3),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1000, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, kPermissionDenied),
      BPF_STMT(BPF_RET | BPF_K, kAllow),
  };
  const ChildCall* setresuid = nullptr;
  for (const ChildCall& call : ChildCallsAfterPrivilegedAttach()) {
    if (std::strcmp(call.name, "setresuid") == 0) setresuid = &call;
  }
  ASSERT_NE(setresuid, nullptr);
  EXPECT_EQ(AnswerToChildCall(refuses_one_uid, *setresuid), std::nullopt);
  EXPECT_EQ(JudgeSeccompAttachPoint(refuses_one_uid), SeccompAttachPoint::kLast);
  // The same program over the example's own uid alone answers: the varying bit is what stops it.
  const seccomp_data example = Call(NumberOf("setresuid"), 65534, 65534, 65534, 0);
  EXPECT_EQ(Interpret(refuses_one_uid, example), kAllow);
}

// The decision for one spawn (sandbox_preparation.cc): a program allowed all but keyctl goes last
// on a spawn that empties the uid's keyrings; any program goes last in a user namespace.
TEST(SeccompAttachPoint, ASpawnThatEmptiesKeyringsOrHasAUserNamespaceDecidesTheRest) {
  using enum SeccompAttachPoint;
  EXPECT_TRUE(AttachesWhilePrivileged(kPrivileged, true, false));
  EXPECT_TRUE(AttachesWhilePrivileged(kPrivilegedUnlessEmptyingUserKeyrings, false, false));
  EXPECT_FALSE(AttachesWhilePrivileged(kPrivilegedUnlessEmptyingUserKeyrings, true, false));
  EXPECT_FALSE(AttachesWhilePrivileged(kLast, false, false));
  for (SeccompAttachPoint point : {kPrivileged, kPrivilegedUnlessEmptyingUserKeyrings, kLast}) {
    EXPECT_FALSE(AttachesWhilePrivileged(point, false, true));
  }
}

// Unconfined's guard alone allows every call of the list: Unconfined attaches it while privileged.
TEST(SeccompAttachPoint, TheResourceLimitGuardAllowsTheChildsOwnCalls) {
  EXPECT_EQ(JudgeSeccompAttachPoint(BuildResourceLimitGuardProgram().instructions), SeccompAttachPoint::kPrivileged);
}

// Watches on files (red team, session 16): inotify answers ENOSYS, as a kernel without it; fcntl
// F_NOTIFY (dnotify) EINVAL, every other fcntl command allowed, on the command's low 32 bits.
TEST_F(DefaultSeccompProgram, RefusesFileWatches) {
  for (uint64_t high : kHighBits) {
    for (uint64_t command = 0; command < 1100; ++command) ExpectAsModel(Call(NumberOf("fcntl"), 3, high | command, 0x3f, 0));
  }
  for (const char* name : {"inotify_init", "inotify_init1", "inotify_add_watch", "inotify_rm_watch"}) {
    if (NumberOf(name) >= 0) {
      EXPECT_EQ(ActionFor(Call(NumberOf(name), 0)), kNotImplemented) << name;
    }
  }
  EXPECT_EQ(ActionFor(Call(NumberOf("fcntl"), 3, F_NOTIFY, 0x3f, 0)), kInvalidArgument);
  EXPECT_EQ(ActionFor(Call(NumberOf("fcntl"), 3, 1ull << 32 | F_NOTIFY, 0x3f, 0)), kInvalidArgument);
  EXPECT_EQ(ActionFor(Call(NumberOf("fcntl"), 3, F_SETFD, FD_CLOEXEC, 0)), kAllow);
  EXPECT_EQ(ActionFor(Call(NumberOf("fcntl"), 3, F_GETFL, 0, 0)), kAllow);
}

// The kernel compiles the program and runs it for every system call number at each attach
// (seccomp(2) fills a cache of always-allowed calls), so each spawn pays for its length and for
// the path through it: a binary search keeps both small. Raise the bound only knowingly (120: the
// huge page flag rules of mmap, memfd_create and shmget, 2 instructions each and their segments;
// 135: the RLIMIT_CORE rules of setrlimit and prlimit64, 13 instructions and their segments; 140:
// the page-cache rules of preadv2 and fadvise64, 3 and 2 instructions and their segments; 151: the
// rules that keep a task's own BPF programs out, of setsockopt (5), prctl (2) and seccomp (its
// return) and their segments: attach p50 49.5-59.6 µs against main's 50.0-60.1 µs, alternated in
// one run, docs/benchmarks.md; 150 once netlink left the socket families; 170: the type and
// protocol rule inside AF_INET and AF_INET6, 20 instructions, all on the path of socket and
// socketpair alone: docs/benchmarks.md, red team session 15; 177: fcntl's F_NOTIFY rule, 2
// instructions, and the segments of it and of inotify's calls: red team session 16).
TEST_F(DefaultSeccompProgram, StaysShort) { EXPECT_LE(program_.instructions.size(), 177u); }

TEST_F(DefaultSeccompProgram, IsAcceptedByTheKernelAndAnswersAsTheModel) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const struct rlimit one = {1, 1};  // as the sandbox sets it
    if (setrlimit(RLIMIT_CORE, &one) != 0) _exit(9);
    // Raw calls only from here: the filter refuses what a sanitizer's exit path might make.
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(10);
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program_.program) != 0) _exit(11);
    if (syscall(SYS_socket, AF_VSOCK, SOCK_STREAM, 0) != -1 || errno != EAFNOSUPPORT) _exit(12);
    if (syscall(SYS_ioctl, 0, TIOCSTI, "x") != -1 || errno != EPERM) _exit(13);
    if (syscall(SYS_getpid) <= 0) _exit(14);
    struct rlimit core = {0, 0};
    if (syscall(SYS_setrlimit, RLIMIT_CORE, &core) != 0) _exit(15);  // answered done...
    if (syscall(SYS_prlimit64, 0, RLIMIT_CORE, nullptr, &core) != 0 || core.rlim_max != 1) _exit(16);  // ...not done
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program_.program) != -1 || errno != EINVAL) _exit(17);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// The guard a custom profile and Unconfined get (ResourceLimitGuardPrefix): the default program's
// RLIMIT_CORE answers for setrlimit and prlimit64, in the native ABI, x32 and the compat ABI, and
// every other call left to what follows (alone: allowed).
class ResourceLimitGuard : public ::testing::Test {
 protected:
  std::optional<uint32_t> ActionFor(const seccomp_data& data) const { return Interpret(guard_.instructions, data); }

  // What the default program answers for a native call with these arguments.
  uint32_t DefaultFor(const char* name, const seccomp_data& data) const {
    seccomp_data native = data;
    native.arch = kNativeArchitecture;
    native.nr = static_cast<uint32_t>(NumberOf(name));
    return *Interpret(default_.instructions, native);
  }

  SeccompProgram guard_ = BuildResourceLimitGuardProgram();
  SeccompProgram default_ = BuildDefaultSeccompProgram();
};

TEST_F(ResourceLimitGuard, AnswersSetrlimitAndPrlimit64AsTheDefaultProgramInEveryAbi) {
  const uint64_t pointers[] = {0, 1, 1ull << 32, 0x7ffd00000000ull, 0x7ffd12345678ull};
  struct Abi {
    uint32_t architecture;
    int setrlimit;
    int prlimit64;
  };
  std::vector<Abi> abis = {{kNativeArchitecture, NumberOf("setrlimit"), NumberOf("prlimit64")},
                           {kOtherArchitecture, seccomp_syscall_resolve_name_arch(kOtherScmpArchitecture, "setrlimit"),
                            seccomp_syscall_resolve_name_arch(kOtherScmpArchitecture, "prlimit64")}};
  if (kX32Bit != 0) {
    abis.push_back({kNativeArchitecture, static_cast<int>(kX32Bit | static_cast<uint32_t>(NumberOf("setrlimit"))),
                    static_cast<int>(kX32Bit | static_cast<uint32_t>(NumberOf("prlimit64")))});
  }
  for (const Abi& abi : abis) {
    ASSERT_GT(abi.setrlimit, 0);
    ASSERT_GT(abi.prlimit64, 0);
    for (uint64_t high : kHighBits) {
      for (uint64_t resource = 0; resource < 20; ++resource) {
        seccomp_data set = Call(abi.setrlimit, high | resource, 0x7ffd12345678ull, abi.architecture);
        EXPECT_EQ(ActionFor(set), DefaultFor("setrlimit", set)) << abi.architecture << " " << resource;
        for (uint64_t new_limit : pointers) {
          for (uint64_t old_limit : pointers) {
            seccomp_data limit = Call(abi.prlimit64, 0, high | resource, abi.architecture);
            limit.args[2] = new_limit;
            limit.args[3] = old_limit;
            EXPECT_EQ(ActionFor(limit), DefaultFor("prlimit64", limit)) << abi.architecture << " " << resource;
          }
        }
      }
    }
    EXPECT_EQ(ActionFor(Call(abi.setrlimit, RLIMIT_CORE, 0x1000, abi.architecture)), kSkippedAsDone);
  }
}

TEST_F(ResourceLimitGuard, LeavesEveryOtherCallAlone) {
  for (uint32_t architecture : {kNativeArchitecture, kOtherArchitecture, 0x12345678u}) {
    for (uint32_t number = 0; number < 4096; ++number) {
      const seccomp_data call = Call(static_cast<int>(number), RLIMIT_CORE, RLIMIT_CORE, 1, 0);
      const bool guarded = architecture == kNativeArchitecture
                               ? number == static_cast<uint32_t>(NumberOf("setrlimit")) ||
                                     number == static_cast<uint32_t>(NumberOf("prlimit64"))
                               : architecture == kOtherArchitecture &&
                                     (static_cast<int>(number) == seccomp_syscall_resolve_name_arch(kOtherScmpArchitecture, "setrlimit") ||
                                      static_cast<int>(number) == seccomp_syscall_resolve_name_arch(kOtherScmpArchitecture, "prlimit64"));
      if (guarded) continue;
      seccomp_data data = call;
      data.arch = architecture;
      EXPECT_EQ(ActionFor(data), kAllow) << architecture << " " << number;
    }
  }
  // Falls through to what follows: no instruction of its own returns for another call.
  const std::vector<sock_filter> prefix = ResourceLimitGuardPrefix();
  EXPECT_EQ(Interpret(prefix, Call(NumberOf("getpid"))), std::nullopt);
  EXPECT_LE(prefix.size(), 32u);
}

TEST_F(ResourceLimitGuard, IsAcceptedByTheKernelAndKeepsTheLimit) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const struct rlimit one = {1, 1};
    if (setrlimit(RLIMIT_CORE, &one) != 0) _exit(9);
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) _exit(10);
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &guard_.program) != 0) _exit(11);
    struct rlimit core = {0, 0};
    if (syscall(SYS_setrlimit, RLIMIT_CORE, &core) != 0) _exit(12);
    if (syscall(SYS_prlimit64, 0, RLIMIT_CORE, nullptr, &core) != 0 || core.rlim_cur != 1) _exit(13);
    struct rlimit files = {64, 64};
    if (syscall(SYS_setrlimit, RLIMIT_NOFILE, &files) != 0) _exit(14);  // others still change
    if (syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &files) != 0 || files.rlim_cur != 64) _exit(15);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace parafork
