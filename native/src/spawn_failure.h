// How a step of preparing a spawn fails: the errno and the system call it failed in, which the
// failed event carries to JavaScript. Every preparation module returns one (or none: no failure).
#pragma once

#include "syscall_id.h"

namespace parafork {

struct SpawnFailure {
  int error_number = 0;  // 0: no failure
  Syscall syscall = Syscall::kNone;

  explicit operator bool() const { return error_number != 0; }
};

}  // namespace parafork
