// What every sandboxed spawn shares, made once, on first use (so a launcher that never sandboxes
// needs no privileges): an O_PATH fd of the parafork-init helper (exec'd by fd, so it need not
// exist inside the task's root), one empty network namespace that tasks with network "none" join
// (a new network namespace per task costs ~1 ms, joining one costs microseconds), and the default
// seccomp program.
#pragma once

#include <mutex>
#include <string>

#include "seccomp_policy.h"
#include "syscall_id.h"
#include "unique_fd.h"

namespace parafork {

class SandboxResources {
 public:
  explicit SandboxResources(std::string init_path) : init_path_(std::move(init_path)) {}

  // Any thread. 0 when ready; else an errno, and the step that failed in `failed`.
  int Prepare(Syscall* failed);

  int init_fd() const { return init_fd_.get(); }
  int empty_network_namespace_fd() const { return network_namespace_.get(); }
  const sock_fprog* default_seccomp() const { return &seccomp_.program; }

 private:
  int PrepareLocked(Syscall* failed);

  const std::string init_path_;
  std::mutex mutex_;
  bool ready_ = false;
  int error_ = 0;
  Syscall failed_ = Syscall::kNone;
  UniqueFd init_fd_;
  UniqueFd network_namespace_;
  SeccompProgram seccomp_;
};

}  // namespace parafork
