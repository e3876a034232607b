// CLOCK_MONOTONIC in nanoseconds: the one clock every native timing uses.
#pragma once

#include <time.h>

#include <cstdint>

namespace parafork {

inline uint64_t MonotonicNanoseconds() {
  struct timespec now;
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1000000000ull + static_cast<uint64_t>(now.tv_nsec);
}

}  // namespace parafork
