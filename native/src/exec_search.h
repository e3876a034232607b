// What the child execs, prepared before the clone: the executable's candidate paths from a PATH
// search (as execvp(3) would try them; the child tries each in turn, child.cc), and argv and envp
// as the null-terminated arrays execve(2) takes. The child only reads these arrays.
#pragma once

#include <string>
#include <vector>

#include "spawn_request.h"

namespace parafork {

// The executables to try, in order: `file` itself when it names a path (has a slash) or no PATH
// was given, else each non-empty PATH entry joined with it.
std::vector<std::string> ExecCandidates(const std::string& file, const std::string& search_path);

class ExecArrays {
 public:
  // False when the PATH search left nothing to try (every entry empty): ENOENT, as execvp says.
  bool Prepare(const SpawnRequest& request);

  const char* const* exec_paths() const { return exec_paths_.data(); }
  char* const* argv() const { return argv_.data(); }
  char* const* envp() const { return envp_.data(); }
  // argv with its terminating nullptr, for the sandbox's init to pass on.
  const std::vector<char*>& argv_pointers() const { return argv_; }

 private:
  std::vector<std::string> candidates_;
  std::vector<const char*> exec_paths_;
  std::vector<char*> argv_;
  std::vector<char*> envp_;
};

}  // namespace parafork
