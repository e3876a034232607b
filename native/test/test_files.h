// Scratch files for the native log tests: the temporary directory and whole-file reads of
// temporary_directory.h, a file's size, and a log file's chunks (log_file.h).
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "temporary_directory.h"

namespace parafork {

// 0 for a file that does not exist.
inline uint64_t FileSize(const std::string& path) {
  struct stat status = {};
  return stat(path.c_str(), &status) == 0 ? static_cast<uint64_t>(status.st_size) : 0;
}

struct LogChunkOnDisk {
  std::string time;
  std::string stream;
  std::string payload;
  bool operator==(const LogChunkOnDisk&) const = default;
};

// The chunks of a log file's text (its format line, then `<time> <stream> <length>\n` and that
// many bytes each); `ok` false when the text is not that (the format line missing, a header
// damaged, a chunk cut short).
inline std::vector<LogChunkOnDisk> LogChunks(const std::string& text, bool* ok = nullptr) {
  std::vector<LogChunkOnDisk> chunks;
  const std::string format_line = "parafork-log 2\n";
  bool well_formed = text.compare(0, format_line.size(), format_line) == 0;
  for (size_t at = format_line.size(); well_formed && at < text.size();) {
    const size_t end = text.find('\n', at);
    const size_t first_space = text.find(' ', at);
    const size_t second_space = first_space == std::string::npos ? first_space : text.find(' ', first_space + 1);
    if (end == std::string::npos || second_space == std::string::npos || second_space > end) {
      well_formed = false;
      break;
    }
    const size_t length = std::strtoull(text.c_str() + second_space + 1, nullptr, 10);
    if (end + 1 + length > text.size()) {
      well_formed = false;
      break;
    }
    chunks.push_back({text.substr(at, first_space - at), text.substr(first_space + 1, second_space - first_space - 1),
                      text.substr(end + 1, length)});
    at = end + 1 + length;
  }
  if (ok != nullptr) *ok = well_formed;
  return chunks;
}

}  // namespace parafork
