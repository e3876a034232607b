// The system calls a spawn can fail in, as small numbers that travel in event batches and in the
// child's failure slot; JavaScript reads the names through `syscallNames` (errors.cc).
#pragma once

#include <cstdint>

namespace parafork {

// Keep the order: errors.cc names them by position.
enum class Syscall : uint8_t {
  kNone = 0,
  kClone3,
  kClone,
  kPipe2,
  kOpen,
  kDup2,
  kChdir,
  kCloseRange,
  kExecve,
  kSigaction,
  kSigprocmask,
  kCgroupAttach,
  kWaitid,
  kEpollCtl,
  kMmap,
  kMount,
  kPivotRoot,
  kNetwork,
  kIdentity,
  kResourceLimit,
  kSeccomp,
  kCgroupCreate,
  kUserNamespace,
  kOpenBeneath,  // openat2(2) of a host path beneath its allowed directory (spawner.cc: OpenBeneath)
  kCount,
};

}  // namespace parafork
