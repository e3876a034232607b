// See exec_search.h.
#include "exec_search.h"

#include <string_view>

namespace parafork {

namespace {

// execve(2) takes char* const[] but never writes through them.
std::vector<char*> PointerArray(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (const std::string& value : strings) pointers.push_back(const_cast<char*>(value.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

}  // namespace

// Empty PATH entries are skipped rather than read as "the working directory", a classic way to
// run the wrong binary.
std::vector<std::string> ExecCandidates(const std::string& file, const std::string& search_path) {
  std::vector<std::string> candidates;
  if (file.find('/') != std::string::npos || search_path.empty()) {
    candidates.push_back(file);
    return candidates;
  }
  std::string_view remaining(search_path);
  while (true) {
    const size_t colon = remaining.find(':');
    std::string_view directory = remaining.substr(0, colon);
    if (!directory.empty()) {
      std::string candidate(directory);
      if (candidate.back() != '/') candidate.push_back('/');
      candidate.append(file);
      candidates.push_back(std::move(candidate));
    }
    if (colon == std::string_view::npos) break;
    remaining.remove_prefix(colon + 1);
  }
  return candidates;
}

bool ExecArrays::Prepare(const SpawnRequest& request) {
  candidates_ = ExecCandidates(request.file, request.search_path);
  if (candidates_.empty()) return false;
  exec_paths_.reserve(candidates_.size() + 1);
  for (const std::string& candidate : candidates_) exec_paths_.push_back(candidate.c_str());
  exec_paths_.push_back(nullptr);
  argv_ = PointerArray(request.argv);
  envp_ = PointerArray(*request.env);
  return true;
}

}  // namespace parafork
