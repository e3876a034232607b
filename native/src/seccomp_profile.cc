// See seccomp_profile.h. The profile was checked in TypeScript; every field is checked again here
// before libseccomp sees it, since a wrong value would otherwise make a different filter.
#include "seccomp_profile.h"

#include <linux/filter.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <system_error>

#include "errors.h"
#include "unique_fd.h"

namespace parafork {

namespace {

// The kernel keeps only this much of a SECCOMP_RET_ERRNO value's data as the errno (MAX_ERRNO).
constexpr double kMaxErrno = 4095;
constexpr double kMaxTraceData = 0xffff;
constexpr unsigned int kArgumentCount = 6;

[[noreturn]] void ThrowType(Napi::Env env, const std::string& message) {
  throw Napi::TypeError::New(env, "parafork: " + message);
}

std::string RequireString(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!value.IsString()) ThrowType(env, what + " must be a string");
  std::string result = value.As<Napi::String>().Utf8Value();
  if (result.empty() || result.find('\0') != std::string::npos) ThrowType(env, what + " must be a non-empty string without NUL bytes");
  return result;
}

uint32_t RequireWhole(Napi::Env env, const Napi::Value& value, const std::string& what, double maximum) {
  if (!value.IsNumber()) ThrowType(env, what + " must be a number");
  const double number = value.As<Napi::Number>().DoubleValue();
  if (std::floor(number) != number || number < 0 || number > maximum) {
    ThrowType(env, what + " must be a whole number from 0 to " + std::to_string(static_cast<uint32_t>(maximum)));
  }
  return static_cast<uint32_t>(number);
}

uint64_t RequireUint64(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!value.IsBigInt()) ThrowType(env, what + " must be a bigint");
  bool lossless = false;
  const uint64_t result = value.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) ThrowType(env, what + " must be from 0 to 2^64-1");
  return result;
}

// An SCMP_ACT_* name and its errno (or trace number) as libseccomp's action value.
uint32_t RequireAction(Napi::Env env, const Napi::Object& object, const char* action_key, const char* errno_key,
                       const std::string& what) {
  const std::string action = RequireString(env, object.Get(action_key), what + "." + action_key);
  const std::string errno_what = what + "." + errno_key;
  if (action == "SCMP_ACT_ALLOW") return SCMP_ACT_ALLOW;
  if (action == "SCMP_ACT_ERRNO") return SCMP_ACT_ERRNO(RequireWhole(env, object.Get(errno_key), errno_what, kMaxErrno));
  if (action == "SCMP_ACT_TRACE") return SCMP_ACT_TRACE(RequireWhole(env, object.Get(errno_key), errno_what, kMaxTraceData));
  if (action == "SCMP_ACT_KILL" || action == "SCMP_ACT_KILL_THREAD") return SCMP_ACT_KILL_THREAD;
  if (action == "SCMP_ACT_KILL_PROCESS") return SCMP_ACT_KILL_PROCESS;
  if (action == "SCMP_ACT_TRAP") return SCMP_ACT_TRAP;
  if (action == "SCMP_ACT_LOG") return SCMP_ACT_LOG;
  ThrowType(env, what + "." + action_key + " must be one of SCMP_ACT_ALLOW, SCMP_ACT_ERRNO, SCMP_ACT_TRACE, " +
                     "SCMP_ACT_KILL, SCMP_ACT_KILL_THREAD, SCMP_ACT_KILL_PROCESS, SCMP_ACT_TRAP, SCMP_ACT_LOG");
}

int RequireOperator(Napi::Env env, const Napi::Value& value, const std::string& what) {
  const std::string op = RequireString(env, value, what);
  if (op == "SCMP_CMP_NE") return SCMP_CMP_NE;
  if (op == "SCMP_CMP_LT") return SCMP_CMP_LT;
  if (op == "SCMP_CMP_LE") return SCMP_CMP_LE;
  if (op == "SCMP_CMP_EQ") return SCMP_CMP_EQ;
  if (op == "SCMP_CMP_GE") return SCMP_CMP_GE;
  if (op == "SCMP_CMP_GT") return SCMP_CMP_GT;
  if (op == "SCMP_CMP_MASKED_EQ") return SCMP_CMP_MASKED_EQ;
  ThrowType(env, what + " must be one of SCMP_CMP_NE, _LT, _LE, _EQ, _GE, _GT, _MASKED_EQ");
}

Napi::Array RequireArray(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!value.IsArray()) ThrowType(env, what + " must be an array");
  return value.As<Napi::Array>();
}

Napi::Object RequireObject(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!value.IsObject() || value.IsArray()) ThrowType(env, what + " must be an object");
  return value.As<Napi::Object>();
}

SeccompProfileRequest RequireProfile(Napi::Env env, const Napi::Value& value) {
  SeccompProfileRequest request;
  Napi::Object profile = RequireObject(env, value, "profile");
  request.default_action = RequireAction(env, profile, "defaultAction", "defaultErrno", "profile");
  Napi::Array rules = RequireArray(env, profile.Get("rules"), "profile.rules");
  request.rules.reserve(rules.Length());
  for (uint32_t rule_index = 0; rule_index < rules.Length(); ++rule_index) {
    const std::string what = "profile.rules[" + std::to_string(rule_index) + "]";
    Napi::Object entry = RequireObject(env, rules.Get(rule_index), what);
    SeccompRule rule;
    Napi::Array names = RequireArray(env, entry.Get("names"), what + ".names");
    if (names.Length() == 0) ThrowType(env, what + ".names must not be empty");
    for (uint32_t index = 0; index < names.Length(); ++index) {
      rule.names.push_back(RequireString(env, names.Get(index), what + ".names[]"));
    }
    rule.action = RequireAction(env, entry, "action", "errno", what);
    Napi::Array args = RequireArray(env, entry.Get("args"), what + ".args");
    unsigned int seen_indexes = 0;
    for (uint32_t index = 0; index < args.Length(); ++index) {
      const std::string arg_what = what + ".args[" + std::to_string(index) + "]";
      Napi::Object arg = RequireObject(env, args.Get(index), arg_what);
      SeccompCondition condition;
      condition.index = RequireWhole(env, arg.Get("index"), arg_what + ".index", kArgumentCount - 1);
      // libseccomp refuses two conditions on one argument in a rule; TypeScript splits such rules.
      if (seen_indexes & (1u << condition.index)) ThrowType(env, arg_what + ".index repeats an argument of its rule");
      seen_indexes |= 1u << condition.index;
      condition.op = RequireOperator(env, arg.Get("op"), arg_what + ".op");
      condition.value = RequireUint64(env, arg.Get("value"), arg_what + ".value");
      condition.value_two = RequireUint64(env, arg.Get("valueTwo"), arg_what + ".valueTwo");
      rule.conditions.push_back(condition);
    }
    request.rules.push_back(std::move(rule));
  }
  return request;
}

struct FilterDeleter {
  void operator()(void* filter) const { seccomp_release(filter); }
};

void Check(int result, const std::string& call) {
  // libseccomp returns -errno.
  if (result < 0) throw std::system_error(-result, std::generic_category(), call);
}

// seccomp_export_bpf_mem(3) arrived in libseccomp 2.6; 2.5 writes to an fd, so a memfd it is.
std::vector<sock_filter> ExportProgram(void* filter) {
  UniqueFd memory(memfd_create("parafork-seccomp", MFD_CLOEXEC));
  if (!memory) throw std::system_error(errno, std::generic_category(), "memfd_create");
  Check(seccomp_export_bpf(filter, memory.get()), "seccomp_export_bpf");
  struct stat status {};
  if (fstat(memory.get(), &status) == -1) throw std::system_error(errno, std::generic_category(), "fstat");
  const size_t size = static_cast<size_t>(status.st_size);
  if (size == 0 || size % sizeof(sock_filter) != 0 || size / sizeof(sock_filter) > BPF_MAXINSNS) {
    throw std::system_error(E2BIG, std::generic_category(),
                            "seccomp_export_bpf: the program has " + std::to_string(size / sizeof(sock_filter)) +
                                " instructions; the kernel takes at most " + std::to_string(BPF_MAXINSNS));
  }
  std::vector<sock_filter> instructions(size / sizeof(sock_filter));
  size_t done = 0;
  while (done < size) {
    const ssize_t count = pread(memory.get(), reinterpret_cast<char*>(instructions.data()) + done, size - done,
                                static_cast<off_t>(done));
    if (count < 0 && errno == EINTR) continue;
    if (count <= 0) throw std::system_error(count < 0 ? errno : EIO, std::generic_category(), "pread");
    done += static_cast<size_t>(count);
  }
  return instructions;
}

}  // namespace

CompiledSeccompProfile CompileSeccompProfile(const SeccompProfileRequest& request) {
  CompiledSeccompProfile result;
  std::unique_ptr<void, FilterDeleter> filter(seccomp_init(request.default_action));
  if (!filter) throw std::system_error(EINVAL, std::generic_category(), "seccomp_init");
  // Another architecture's calls (i386 or x32 on x86_64) are killed, as by the default policy:
  // the profile is compiled for the native architecture only (see src/sandbox/README.md).
  Check(seccomp_attr_set(filter.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "seccomp_attr_set");
  // The child sets no_new_privs itself; the exported program does not carry this anyway.
  Check(seccomp_attr_set(filter.get(), SCMP_FLTATR_CTL_NNP, 0), "seccomp_attr_set");
  // A binary tree of system call numbers rather than one comparison after another: longer (the
  // test allow-list: 350 instructions against 283), but cheaper to attach. Since Linux 5.11 the
  // kernel runs a new filter once per system call number at attach time to cache the always-
  // allowed ones, so the attach cost follows the path length, which the tree makes logarithmic
  // (measured: +0.07-0.14 ms a spawn over no filter, against +0.29-0.39 ms for the linear program).
  Check(seccomp_attr_set(filter.get(), SCMP_FLTATR_CTL_OPTIMIZE, 2), "seccomp_attr_set");
  for (const SeccompRule& rule : request.rules) {
    // libseccomp refuses a rule whose action is the default (-EACCES); the default covers it.
    if (rule.action == request.default_action) continue;
    std::vector<scmp_arg_cmp> conditions;
    for (const SeccompCondition& condition : rule.conditions) {
      conditions.push_back({condition.index, static_cast<scmp_compare>(condition.op), condition.value, condition.value_two});
    }
    for (const std::string& name : rule.names) {
      const int number = seccomp_syscall_resolve_name(name.c_str());
      // __NR_SCMP_ERROR, or a pseudo number (negative): not a system call of this architecture.
      if (number < 0) {
        result.unknown_names.push_back(name);
        continue;
      }
      Check(seccomp_rule_add_array(filter.get(), rule.action, number, static_cast<unsigned int>(conditions.size()),
                                   conditions.empty() ? nullptr : conditions.data()),
            "seccomp_rule_add for '" + name + "'");
    }
  }
  // RLIMIT_CORE stays 1 whatever the profile allows (seccomp_policy.h, ResourceLimitGuardPrefix):
  // the guard first, then the profile, which decides every call the guard leaves alone.
  result.program.instructions = ResourceLimitGuardPrefix();
  const std::vector<sock_filter> profile = ExportProgram(filter.get());
  if (result.program.instructions.size() + profile.size() > BPF_MAXINSNS) {
    throw std::system_error(E2BIG, std::generic_category(),
                            "seccomp_export_bpf: the program has " + std::to_string(profile.size()) +
                                " instructions; the kernel takes at most " +
                                std::to_string(BPF_MAXINSNS - result.program.instructions.size()));
  }
  result.program.instructions.insert(result.program.instructions.end(), profile.begin(), profile.end());
  result.program.Finish();
  // Once per profile, here rather than at each spawn: the program over the child's ~20 calls after
  // the privileged attach point (a few microseconds for a Docker-sized allow-list).
  result.attach_point = JudgeSeccompAttachPoint(result.program.instructions);
  return result;
}

Napi::Value CompileSeccompProfileBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1) ThrowType(env, "compileSeccompProfile takes one profile object");
  const SeccompProfileRequest request = RequireProfile(env, info[0]);
  CompiledSeccompProfile compiled;
  try {
    compiled = CompileSeccompProfile(request);
  } catch (const std::system_error& error) {
    // what() is "CALL: strerror"; SystemError adds the strerror part itself.
    std::string detail = error.what();
    const std::string suffix = std::string(": ") + std::strerror(error.code().value());
    if (detail.ends_with(suffix)) detail.resize(detail.size() - suffix.size());
    throw SystemError(env, error.code().value(), "seccomp", "the seccomp profile could not be compiled: " + detail);
  }
  const std::vector<sock_filter>& instructions = compiled.program.instructions;
  Napi::Object result = Napi::Object::New(env);
  result.Set("program", Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(instructions.data()),
                                                    instructions.size() * sizeof(sock_filter)));
  Napi::Array unknown = Napi::Array::New(env, compiled.unknown_names.size());
  for (size_t index = 0; index < compiled.unknown_names.size(); ++index) {
    unknown.Set(static_cast<uint32_t>(index), Napi::String::New(env, compiled.unknown_names[index]));
  }
  result.Set("unknownNames", unknown);
  result.Set("attachPoint", Napi::String::New(env, SeccompAttachPointName(compiled.attach_point)));
  return result;
}

Napi::Array ChildCallsAfterPrivilegedAttachNames(Napi::Env env) {
  std::vector<std::string> names;
  for (const ChildCall& call : ChildCallsAfterPrivilegedAttach()) {
    if (std::find(names.begin(), names.end(), call.name) == names.end()) names.emplace_back(call.name);
  }
  Napi::Array result = Napi::Array::New(env, names.size());
  for (size_t index = 0; index < names.size(); ++index) result.Set(static_cast<uint32_t>(index), Napi::String::New(env, names[index]));
  result.Freeze();
  return result;
}

SeccompProgram RequireSeccompProgram(Napi::Env env, const Napi::Value& value, const char* what) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(env, std::string(what) + " must be a Uint8Array");
  }
  Napi::Uint8Array bytes = value.As<Napi::Uint8Array>();
  const size_t size = bytes.ByteLength();
  if (size == 0 || size % sizeof(sock_filter) != 0 || size / sizeof(sock_filter) > BPF_MAXINSNS) {
    ThrowType(env, std::string(what) + " must hold 1 to " + std::to_string(BPF_MAXINSNS) +
                       " whole BPF instructions (8 bytes each), got " + std::to_string(size) + " bytes");
  }
  SeccompProgram program;
  program.instructions.resize(size / sizeof(sock_filter));
  std::memcpy(program.instructions.data(), bytes.Data(), size);
  // The kernel checks the program itself when the child attaches it; a filter that does not end
  // in a return is refused there (EINVAL), but say so here, where the error is clearer.
  const sock_filter& last = program.instructions.back();
  if (BPF_CLASS(last.code) != BPF_RET) ThrowType(env, std::string(what) + " must end with a return instruction");
  program.Finish();
  return program;
}

}  // namespace parafork
