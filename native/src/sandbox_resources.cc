// See sandbox_resources.h.
#include "sandbox_resources.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <thread>

namespace parafork {

int SandboxResources::Prepare(Syscall* failed) {
  std::lock_guard<std::mutex> guard(mutex_);
  if (!ready_ && error_ == 0) {
    error_ = PrepareLocked(&failed_);
    ready_ = error_ == 0;
  }
  *failed = failed_;
  return error_;
}

int SandboxResources::PrepareLocked(Syscall* failed) {
  init_fd_.reset(open(init_path_.c_str(), O_PATH | O_CLOEXEC));
  if (!init_fd_) {
    *failed = Syscall::kOpen;
    return errno;
  }
  // A network namespace with nothing in it, not even lo up, made on a thread of its own: unshare
  // changes only the calling thread's namespace, and that thread ends right after.
  int error_number = 0;
  std::thread maker([&] {
    if (unshare(CLONE_NEWNET) == -1) {
      error_number = errno;
      return;
    }
    network_namespace_.reset(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!network_namespace_) error_number = errno;
  });
  maker.join();
  if (error_number != 0) {
    *failed = Syscall::kNetwork;
    return error_number;
  }
  try {
    seccomp_ = BuildDefaultSeccompProgram();
  } catch (const std::exception&) {
    *failed = Syscall::kSeccomp;
    return EINVAL;
  }
  return 0;
}

}  // namespace parafork
