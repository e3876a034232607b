// Scratch files for the native log tests: the temporary directory and whole-file reads of
// temporary_directory.h, and a file's size.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <string>

#include "temporary_directory.h"

namespace parafork {

// 0 for a file that does not exist.
inline uint64_t FileSize(const std::string& path) {
  struct stat status = {};
  return stat(path.c_str(), &status) == 0 ? static_cast<uint64_t>(status.st_size) : 0;
}

}  // namespace parafork
