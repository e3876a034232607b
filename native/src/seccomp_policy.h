// The sandbox's default system-call policy, written once into a classic BPF program (numbers
// named by libseccomp) and loaded by each sandboxed child (seccomp(2)) before it takes the task's
// ids, while it still holds CAP_SYS_ADMIN (child.cc, BuildSandbox): it judges the child's own last
// calls too, and must allow them (seccomp_policy_test.cc, AllowsTheChildsOwnCallsAfterItsAttach).
//
// An allow-list at least as strict as Docker's default profile (docs/security.md compares them
// call by call): anything not listed fails with EPERM; clone3 fails with ENOSYS (so libc falls
// back to clone, whose flags a filter can see) and clone may not create namespaces; socket and
// socketpair only for AF_UNIX, AF_INET and AF_INET6 (others, netlink among them: EAFNOSUPPORT); ioctl
// never with TIOCSTI, TIOCLINUX, TIOCCONS or TIOCSETD (EPERM); personality only with harmless
// values; setrlimit and prlimit64 never change RLIMIT_CORE (answered 0, EPERM when the old value is
// asked for too); no huge pages by flag (EPERM); preadv2 never with RWF_NOWAIT (EOPNOTSUPP);
// fadvise64 never drops pages (POSIX_FADV_DONTNEED not made, answered 0); no classic BPF program
// of the task's own, whose code counts against the node's bpf_jit_limit (setsockopt attaching a
// socket filter: EPERM; seccomp(2) and prctl PR_SET_SECCOMP: EINVAL); another ABI (i386 on x86_64, AArch32) kills the process. Not allowed, among others:
// mount and the new mount API, pivot_root, chroot, unshare, setns, ptrace, process_vm_*, bpf,
// perf_event_open, keyctl, add_key, request_key, kernel modules, kexec, reboot, swapon/swapoff,
// io_uring, userfaultfd, open_by_handle_at, clock and time setting, acct, quotactl, syslog.
#pragma once

#include <linux/filter.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace parafork {

// Move-only: `program` points into `instructions`, whose buffer a move hands over intact and a
// copy would not.
struct SeccompProgram {
  std::vector<sock_filter> instructions;
  sock_fprog program{};  // points into `instructions`: fixed up by Finish()

  SeccompProgram() = default;
  SeccompProgram(const SeccompProgram&) = delete;
  SeccompProgram& operator=(const SeccompProgram&) = delete;
  SeccompProgram(SeccompProgram&&) = default;
  SeccompProgram& operator=(SeccompProgram&&) = default;

  bool empty() const { return instructions.empty(); }

  void Finish() {
    program.len = static_cast<unsigned short>(instructions.size());
    program.filter = instructions.data();
  }
};

// A system call allowed unless one of `refused_flags` is set in its argument number `argument`;
// then answered with `error` (not made).
struct RefusedFlagsRule {
  const char* syscall;
  int argument;
  uint32_t refused_flags;
  int error;
};

// The rules BuildDefaultSeccompProgram writes out (for its tests). Arguments are compared on their
// low 32 bits, as the kernel reads them.
struct DefaultSeccompRules {
  std::span<const char* const> allowed_syscalls;  // by name; names this architecture lacks are skipped
  std::span<const char* const> not_implemented_syscalls;  // answered ENOSYS, by name as above
  std::span<const uint32_t> refused_ioctl_requests;   // ioctl's second argument
  std::span<const uint32_t> allowed_socket_families;  // socket's and socketpair's first argument
  std::span<const uint32_t> allowed_personalities;    // personality's argument
  uint32_t refused_clone_flags;                       // clone's first argument: none of these bits
  std::span<const RefusedFlagsRule> refused_flags;    // the rule's errno when the flags are set
  uint32_t fixed_resource_limit;  // setrlimit/prlimit64 of it: not made, answered 0 (EPERM if asking the old value)
  uint32_t dropped_file_advice;   // fadvise64's advice (fourth argument): not made, answered 0
  std::span<const uint32_t> refused_socket_filter_options;  // setsockopt at SOL_SOCKET: EPERM
  std::span<const char* const> invalid_argument_syscalls;   // answered EINVAL, by name
  uint32_t refused_prctl_option;                            // prctl's first argument: EINVAL
  // socket's and socketpair's type (second argument, masked) and protocol (third) in these
  // families: raw sockets and types from the limit on are the kernel's to answer; a stream
  // takes the stream protocols, a datagram socket the datagram ones or ping (ICMP in AF_INET,
  // ICMPv6 in AF_INET6); any other type ESOCKTNOSUPPORT, any other protocol EPROTONOSUPPORT.
  std::span<const uint32_t> internet_families;
  uint32_t socket_type_mask;
  uint32_t socket_type_limit;
  std::span<const uint32_t> stream_protocols;
  std::span<const uint32_t> datagram_protocols;
  uint32_t refused_fcntl_command;  // fcntl's (and fcntl64's) second argument: EINVAL
};
const DefaultSeccompRules& DefaultSeccompPolicyRules();

// Builds the default policy for this architecture. Throws std::runtime_error if libseccomp does
// not know a system call with a rule of its own, or if the program would not fit classic BPF.
SeccompProgram BuildDefaultSeccompProgram();

// RLIMIT_CORE under a filter other than the default, which keeps it as the sandbox set it (1) by
// itself: setrlimit and prlimit64 of it answered as by the default policy (not made, 0; EPERM when
// the old value is asked for too), in the native ABI, x32 and the compat one (i386, AArch32).
// Everything else is left to what follows. A Localhost profile that allowed those calls (Kubernetes'
// SCMP_ACT_LOG audit example, Docker's default.json), and Unconfined, let a task lower its soft
// limit to 0 and crash: a pipe in kernel.core_pattern then started the node's crash handler as
// root (red team, session 11; sandbox-crash-handler.test.ts).
//
// The guard's instructions, to go before a custom profile's program: a call they leave alone
// falls through to the profile's first instruction (seccomp_profile.cc).
std::vector<sock_filter> ResourceLimitGuardPrefix();
// The guard alone, allowing everything else: the filter of an Unconfined task.
SeccompProgram BuildResourceLimitGuardProgram();

}  // namespace parafork
