// Whether the sandbox's child may attach a seccomp program while it still holds CAP_SYS_ADMIN
// (child.cc, BuildSandbox), where a full net.core.bpf_jit_limit does not refuse it, or must attach
// it last, as the task's user. The program then judges every call the child itself makes after that
// point, so only a program that allows (SECCOMP_RET_ALLOW) each of them may go there: a refused
// setresuid or capset would fail every spawn, SCMP_ACT_KILL kill the child, SCMP_ACT_LOG fill the
// audit log, SCMP_ACT_TRACE stop it for a tracer. Decided once per program, on the JS thread, by
// running it over those calls; the child only reads the answer (spawn_request.h).
//
// The calls are listed here, in ONE place: the decision for a custom profile and the default
// policy's unit test (seccomp_policy_test.cc) both read this list, and child.cc points here from
// each call it makes after the attach.
#pragma once

#include <linux/filter.h>
#include <linux/seccomp.h>

#include <cstdint>
#include <optional>
#include <span>

namespace parafork {

// One system call of the child after the privileged attach point, with the arguments it makes it
// with. An argument that differs from spawn to spawn (an id, an address, an fd) is marked in
// `varying_arguments`; its value here is only an example, and the program may not read it.
struct ChildCall {
  enum class When : uint8_t {
    kAlways,                   // or at least on some spawns, whatever the profile
    kWhenEmptyingUserKeyrings  // only when SandboxPlan::empty_user_keyrings
  };
  const char* name;
  long number;  // SYS_*
  uint64_t arguments[6];
  uint8_t varying_arguments;  // bit i: argument i varies
  When when;
};

// child.cc from the privileged attach in BuildSandbox to the execveat, in order; calls that only a
// fallback or a failure makes (getdents64 without close_range(CLOSE_RANGE_CLOEXEC), exit_group
// from Fail) included.
std::span<const ChildCall> ChildCallsAfterPrivilegedAttach();

// Runs a classic BPF seccomp program over `data` the way the kernel does. The 32-bit words of
// seccomp_data marked in `unknown_words` (bit i: the word at byte 4 * i) stand for any value: a
// jump or a return that depends on one answers nullopt. nullopt too if the program leaves its
// bounds, reads outside seccomp_data or uses an instruction not interpreted here (neither
// libseccomp nor seccomp_policy.cc writes them).
std::optional<uint32_t> RunSeccompProgram(std::span<const sock_filter> program, const seccomp_data& data,
                                          uint16_t unknown_words = 0);

// What `program` answers to `call` in the native ABI, for every value of its varying arguments
// and of the instruction pointer; nullopt when the answer depends on them (or see above).
std::optional<uint32_t> AnswerToChildCall(std::span<const sock_filter> program, const ChildCall& call);

// Where the child attaches a program: while privileged (it allows every ChildCall), while
// privileged unless the spawn empties the task uid's keyrings (it allows all but those keyctl
// calls), or last (any other answer to any of them).
enum class SeccompAttachPoint : uint8_t { kLast, kPrivilegedUnlessEmptyingUserKeyrings, kPrivileged };

SeccompAttachPoint JudgeSeccompAttachPoint(std::span<const sock_filter> program);

// The attach point for one spawn: in the child's own user namespace (it has given up the node's
// capabilities by then) always last.
inline bool AttachesWhilePrivileged(SeccompAttachPoint point, bool empty_user_keyrings, bool user_namespace) {
  if (user_namespace) return false;
  return point == SeccompAttachPoint::kPrivileged ||
         (point == SeccompAttachPoint::kPrivilegedUnlessEmptyingUserKeyrings && !empty_user_keyrings);
}

// "privileged", "privilegedUnlessEmptyingUserKeyrings", "last": as JavaScript names them.
const char* SeccompAttachPointName(SeccompAttachPoint point);
std::optional<SeccompAttachPoint> SeccompAttachPointNamed(const char* name);

}  // namespace parafork
