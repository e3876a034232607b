// Custom seccomp profiles (Docker/OCI JSON, parsed and checked in src/sandbox/seccomp-profile.ts)
// compiled into a classic BPF program with libseccomp, once per profile, on the JS thread. The
// program goes back to JavaScript as bytes; each spawn hands those bytes back in its request and
// the child only attaches them (seccomp(2), SECCOMP_SET_MODE_FILTER), as with the default policy.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "seccomp_attach_point.h"
#include "seccomp_policy.h"

namespace parafork {

// One SCMP_CMP_* condition on a system call argument (seccomp_rule_add_array(3)).
struct SeccompCondition {
  unsigned int index = 0;  // 0..5
  int op = 0;              // enum scmp_compare
  uint64_t value = 0;      // datum_a (the mask for SCMP_CMP_MASKED_EQ)
  uint64_t value_two = 0;  // datum_b (the compared value for SCMP_CMP_MASKED_EQ)
};

struct SeccompRule {
  std::vector<std::string> names;
  uint32_t action = 0;  // a SCMP_ACT_* value, errno or trace number included
  std::vector<SeccompCondition> conditions;  // ANDed; each index at most once
};

struct SeccompProfileRequest {
  uint32_t default_action = 0;
  std::vector<SeccompRule> rules;
};

struct CompiledSeccompProfile {
  SeccompProgram program;
  // Names libseccomp does not know on this architecture: skipped, as Docker does.
  std::vector<std::string> unknown_names;
  // Whether the child may attach it before it takes the task's ids (seccomp_attach_point.h).
  SeccompAttachPoint attach_point = SeccompAttachPoint::kLast;
};

// Throws std::system_error (errno, and the libseccomp call in what()) when libseccomp refuses.
CompiledSeccompProfile CompileSeccompProfile(const SeccompProfileRequest& request);

// compileSeccompProfile({ defaultAction, defaultErrno, rules: [{ names, action, errno, args:
// [{ index, op, value, valueTwo }] }] }) -> { program: Buffer, unknownNames: string[], attachPoint:
// 'privileged' | 'privilegedUnlessEmptyingUserKeyrings' | 'last' }
Napi::Value CompileSeccompProfileBinding(const Napi::CallbackInfo& info);

// The names of the calls the sandbox's child makes after the privileged attach point
// (seccomp_attach_point.h), each once, in order: for the test that reads them under strace(1).
Napi::Array ChildCallsAfterPrivilegedAttachNames(Napi::Env env);

// A program's bytes from JavaScript (a Uint8Array of whole sock_filter instructions), copied.
SeccompProgram RequireSeccompProgram(Napi::Env env, const Napi::Value& value, const char* what);

}  // namespace parafork
