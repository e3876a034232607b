// See seccomp_attach_point.h.
#include "seccomp_attach_point.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <cstring>

namespace parafork {

namespace {

#if defined(__x86_64__)
constexpr uint32_t kNativeArchitecture = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kNativeArchitecture = AUDIT_ARCH_AARCH64;
#else
#error "seccomp_attach_point.cc knows x86_64 and aarch64"
#endif

constexpr uint64_t kAddress = 0x7ffd12345678ull;  // an example: every address varies
constexpr uint64_t kCwd = static_cast<uint64_t>(static_cast<long>(AT_FDCWD));
constexpr uint64_t kOwnSessionKeyring = static_cast<uint64_t>(-3L);  // KEY_SPEC_SESSION_KEYRING
constexpr uint64_t kUserKeyring = static_cast<uint64_t>(-4L);
constexpr uint64_t kUserSessionKeyring = static_cast<uint64_t>(-5L);
constexpr uint64_t kKeyctlClear = 7, kKeyctlUnlink = 9, kKeyctlGetPersistent = 22;
constexpr uint8_t kFirst = 1, kSecond = 2, kThird = 4, kFourth = 8, kFifth = 16;

#define PARAFORK_CALL(name) #name, SYS_##name

// Keep in step with child.cc, from `if (sandbox.seccomp_while_privileged) AttachFilter(plan);` in
// BuildSandbox to the execveat in RunChild: sandbox-bpf-programs.test.ts checks the order under
// strace(1), seccomp_policy_test.cc that the default policy allows every call here.
constexpr ChildCall kChildCalls[] = {
    // TakeTaskIdentity
    {PARAFORK_CALL(setgroups), {0, 0}, 0, ChildCall::When::kAlways},
    {PARAFORK_CALL(setresgid), {65534, 65534, 65534}, kFirst | kSecond | kThird, ChildCall::When::kAlways},
    {PARAFORK_CALL(setresuid), {65534, 65534, 65534}, kFirst | kSecond | kThird, ChildCall::When::kAlways},
    {PARAFORK_CALL(capset), {kAddress, kAddress}, kFirst | kSecond, ChildCall::When::kAlways},
    // EmptyUserKeyrings
    {PARAFORK_CALL(keyctl), {kKeyctlClear, kUserKeyring}, 0, ChildCall::When::kWhenEmptyingUserKeyrings},
    {PARAFORK_CALL(keyctl), {kKeyctlClear, kUserSessionKeyring}, 0, ChildCall::When::kWhenEmptyingUserKeyrings},
    {PARAFORK_CALL(keyctl), {kKeyctlGetPersistent, static_cast<uint64_t>(-1L), kOwnSessionKeyring}, 0,
     ChildCall::When::kWhenEmptyingUserKeyrings},
    {PARAFORK_CALL(keyctl), {kKeyctlClear, 123456789}, kSecond, ChildCall::When::kWhenEmptyingUserKeyrings},
    {PARAFORK_CALL(keyctl), {kKeyctlUnlink, 123456789, kOwnSessionKeyring}, kSecond,
     ChildCall::When::kWhenEmptyingUserKeyrings},
    // EnterWorkingDirectory
    {PARAFORK_CALL(chdir), {kAddress}, kFirst, ChildCall::When::kAlways},
    {PARAFORK_CALL(getcwd), {kAddress, 4096}, kFirst, ChildCall::When::kAlways},
    // CloseInheritedFdsOnExec, and MarkInheritedFdsCloseOnExecSlowly where close_range fails
    {PARAFORK_CALL(close_range), {3, ~0U, CLOSE_RANGE_CLOEXEC}, 0, ChildCall::When::kAlways},
    {PARAFORK_CALL(openat), {kCwd, kAddress, O_RDONLY | O_DIRECTORY | O_CLOEXEC}, kSecond, ChildCall::When::kAlways},
    {PARAFORK_CALL(getdents64), {5, kAddress, 2048}, kFirst | kSecond, ChildCall::When::kAlways},
    {PARAFORK_CALL(fcntl), {9, F_SETFD, FD_CLOEXEC}, kFirst, ChildCall::When::kAlways},
    {PARAFORK_CALL(close), {5}, kFirst, ChildCall::When::kAlways},
    // PlaceResultFile
    {PARAFORK_CALL(fcntl), {3, F_SETFD, 0}, 0, ChildCall::When::kAlways},
    {PARAFORK_CALL(dup3), {9, 3, 0}, kFirst, ChildCall::When::kAlways},
    // RunChild: init's signal mask, FindExecutable, the exec, and Fail
    {PARAFORK_CALL(rt_sigprocmask), {SIG_SETMASK, kAddress, 0, 8}, kSecond, ChildCall::When::kAlways},
    {PARAFORK_CALL(faccessat), {kCwd, kAddress, X_OK}, kSecond, ChildCall::When::kAlways},
    {PARAFORK_CALL(statx), {kCwd, kAddress, 0, STATX_TYPE, kAddress}, kSecond | kFifth, ChildCall::When::kAlways},
    {PARAFORK_CALL(execveat), {7, kAddress, kAddress, kAddress, AT_EMPTY_PATH}, kFirst | kSecond | kThird | kFourth,
     ChildCall::When::kAlways},
    {PARAFORK_CALL(exit_group), {127}, 0, ChildCall::When::kAlways},
};

#undef PARAFORK_CALL

// seccomp_data's 32-bit words: nr (0), arch (1), instruction_pointer (2, 3), args[i] (4 + 2i, 5 + 2i).
constexpr uint16_t kInstructionPointerWords = (1u << 2) | (1u << 3);

uint16_t ArgumentWords(uint8_t arguments) {
  uint16_t words = 0;
  for (int index = 0; index < 6; ++index) {
    if ((arguments & (1u << index)) != 0) words |= static_cast<uint16_t>(3u << (4 + 2 * index));
  }
  return words;
}

}  // namespace

std::span<const ChildCall> ChildCallsAfterPrivilegedAttach() { return kChildCalls; }

std::optional<uint32_t> RunSeccompProgram(std::span<const sock_filter> program, const seccomp_data& data,
                                          uint16_t unknown_words) {
  uint32_t accumulator = 0;
  bool accumulator_known = true;
  for (size_t index = 0; index < program.size(); ++index) {
    const sock_filter& instruction = program[index];
    const auto jump = [&](bool taken) { index += taken ? instruction.jt : instruction.jf; };
    switch (instruction.code) {
      case BPF_LD | BPF_W | BPF_ABS:
        if (instruction.k % 4 != 0 || instruction.k + 4 > sizeof(data)) return std::nullopt;
        std::memcpy(&accumulator, reinterpret_cast<const char*>(&data) + instruction.k, 4);
        accumulator_known = ((unknown_words >> (instruction.k / 4)) & 1) == 0;
        break;
      case BPF_LD | BPF_IMM:
        accumulator = instruction.k;
        accumulator_known = true;
        break;
      case BPF_ALU | BPF_AND | BPF_K:
        accumulator &= instruction.k;
        if (instruction.k == 0) accumulator_known = true;
        break;
      case BPF_RET | BPF_K:
        return instruction.k;
      case BPF_RET | BPF_A:
        if (!accumulator_known) return std::nullopt;
        return accumulator;
      case BPF_JMP | BPF_JA:
        index += instruction.k;
        break;
      case BPF_JMP | BPF_JEQ | BPF_K:
        if (!accumulator_known) return std::nullopt;
        jump(accumulator == instruction.k);
        break;
      case BPF_JMP | BPF_JGT | BPF_K:
        if (!accumulator_known) return std::nullopt;
        jump(accumulator > instruction.k);
        break;
      case BPF_JMP | BPF_JGE | BPF_K:
        if (!accumulator_known) return std::nullopt;
        jump(accumulator >= instruction.k);
        break;
      case BPF_JMP | BPF_JSET | BPF_K:
        if (!accumulator_known) return std::nullopt;
        jump((accumulator & instruction.k) != 0);
        break;
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;  // ran off the end without returning
}

std::optional<uint32_t> AnswerToChildCall(std::span<const sock_filter> program, const ChildCall& call) {
  seccomp_data data = {};
  data.nr = static_cast<int>(call.number);
  data.arch = kNativeArchitecture;
  for (int index = 0; index < 6; ++index) data.args[index] = call.arguments[index];
  return RunSeccompProgram(program, data, kInstructionPointerWords | ArgumentWords(call.varying_arguments));
}

SeccompAttachPoint JudgeSeccompAttachPoint(std::span<const sock_filter> program) {
  bool keyrings_allowed = true;
  for (const ChildCall& call : kChildCalls) {
    const std::optional<uint32_t> answer = AnswerToChildCall(program, call);
    // SECCOMP_RET_ALLOW's data bits mean nothing: the kernel reads the action alone.
    const bool allowed = answer.has_value() && (*answer & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_ALLOW;
    if (allowed) continue;
    if (call.when == ChildCall::When::kAlways) return SeccompAttachPoint::kLast;
    keyrings_allowed = false;
  }
  return keyrings_allowed ? SeccompAttachPoint::kPrivileged : SeccompAttachPoint::kPrivilegedUnlessEmptyingUserKeyrings;
}

const char* SeccompAttachPointName(SeccompAttachPoint point) {
  switch (point) {
    case SeccompAttachPoint::kPrivileged:
      return "privileged";
    case SeccompAttachPoint::kPrivilegedUnlessEmptyingUserKeyrings:
      return "privilegedUnlessEmptyingUserKeyrings";
    case SeccompAttachPoint::kLast:
      break;
  }
  return "last";
}

std::optional<SeccompAttachPoint> SeccompAttachPointNamed(const char* name) {
  for (SeccompAttachPoint point : {SeccompAttachPoint::kLast, SeccompAttachPoint::kPrivilegedUnlessEmptyingUserKeyrings,
                                   SeccompAttachPoint::kPrivileged}) {
    if (std::strcmp(name, SeccompAttachPointName(point)) == 0) return point;
  }
  return std::nullopt;
}

}  // namespace parafork
