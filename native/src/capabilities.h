// What this kernel (and any seccomp filter around us) allows, probed once per process without
// creating a child: each probe makes a call the kernel rejects for its arguments when the system
// call exists (EINVAL) and for its absence when it does not (ENOSYS, or EPERM from a filter).
#pragma once

#include <string>

namespace parafork {

struct Capabilities {
  bool clone3 = false;               // clone3(2), Linux 5.3; Docker's default seccomp answers ENOSYS
  bool clone_into_cgroup = false;    // CLONE_INTO_CGROUP, Linux 5.7, needs clone3
  bool clone_clear_sighand = false;  // CLONE_CLEAR_SIGHAND, Linux 5.5, needs clone3
  bool close_range_cloexec = false;  // close_range(CLOSE_RANGE_CLOEXEC), Linux 5.11
  bool pidfd = false;                // CLONE_PIDFD + waitid(P_PIDFD) + pidfd_send_signal, Linux 5.4
  bool mount_setattr = false;        // mount_setattr(2), Linux 5.12
  std::string kernel_release;
};

const Capabilities& ProbeCapabilities();

}  // namespace parafork
