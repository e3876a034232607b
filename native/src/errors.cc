// errno -> JavaScript Error with `code`, `errno`, `syscall`.
#include "errors.h"

#include <string.h>

#include <string>

namespace parafork {

namespace {
constexpr const char* kSyscallNames[] = {
    "",        "clone3", "clone",       "pipe2",   "open",         "dup2",        "chdir", "close_range",
    "execve",  "rt_sigaction", "rt_sigprocmask", "cgroup.procs", "waitid", "epoll_ctl", "mmap",
    "mount", "pivot_root", "network", "identity", "prlimit", "seccomp", "cgroup.create", "user_namespace",
    "openat2",
};
static_assert(sizeof(kSyscallNames) / sizeof(kSyscallNames[0]) == static_cast<size_t>(Syscall::kCount),
              "every Syscall needs a name");
}  // namespace

const char* SyscallName(Syscall syscall) { return kSyscallNames[static_cast<size_t>(syscall)]; }

std::string ErrnoCode(int error_number) {
  // strerrorname_np(3) (glibc >= 2.32) gives the symbolic name, as Node's util.getSystemErrorName does.
  const char* name = strerrorname_np(error_number);
  if (name != nullptr) return name;
  std::string code("E");  // built in two steps: GCC 12 warns falsely (-Wrestrict) on "E" + string
  code += std::to_string(error_number);
  return code;
}

Napi::Error SystemError(Napi::Env env, int error_number, const char* syscall, const std::string& message) {
  std::string code = ErrnoCode(error_number);
  Napi::Error error = Napi::Error::New(env, code + ": " + message + " (" + syscall + ": " + strerror(error_number) + ")");
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -error_number));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

Napi::Array SyscallNames(Napi::Env env) {
  Napi::Array names = Napi::Array::New(env, static_cast<size_t>(Syscall::kCount));
  for (size_t index = 0; index < static_cast<size_t>(Syscall::kCount); ++index) {
    names.Set(static_cast<uint32_t>(index), Napi::String::New(env, kSyscallNames[index]));
  }
  return names;
}

}  // namespace parafork
