// System errors as JavaScript sees them: an Error with `code` ('ENOENT'), `errno` and `syscall`,
// the shape Node's own fs and child_process errors have.
#pragma once

#include <napi.h>

#include <string>

#include "syscall_id.h"

namespace parafork {

// 'ENOENT' for ENOENT; 'E<number>' for an errno this libc cannot name.
std::string ErrnoCode(int error_number);

Napi::Error SystemError(Napi::Env env, int error_number, const char* syscall, const std::string& message);
// kFailurePoints (syscall_id.h) as JavaScript reads it: [{ syscall, step }], indexed by Syscall.
Napi::Array FailurePoints(Napi::Env env);

}  // namespace parafork
