// See capabilities.h. Probes use syscall(2) on the calling (JS) thread, once.
#include "capabilities.h"

#include <linux/close_range.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442  // the same on every architecture
#endif

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace parafork {

namespace {

bool KernelAtLeast(const std::string& release, int major, int minor) {
  int found_major = 0;
  int found_minor = 0;
  if (sscanf(release.c_str(), "%d.%d", &found_major, &found_minor) != 2) return false;
  return found_major > major || (found_major == major && found_minor >= minor);
}

Capabilities Probe() {
  Capabilities capabilities;
  struct utsname name = {};
  if (uname(&name) == 0) capabilities.kernel_release = name.release;

  // clone3 with a size below CLONE_ARGS_SIZE_VER0 is EINVAL where it exists.
  errno = 0;
  long clone3_result = syscall(SYS_clone3, nullptr, 0);
  capabilities.clone3 = clone3_result == -1 && errno == EINVAL;
  capabilities.clone_into_cgroup = capabilities.clone3 && KernelAtLeast(capabilities.kernel_release, 5, 7);
  capabilities.clone_clear_sighand = capabilities.clone3 && KernelAtLeast(capabilities.kernel_release, 5, 5);

  // An fd range that holds nothing: 0 where CLOSE_RANGE_CLOEXEC is known, EINVAL or ENOSYS where not.
  capabilities.close_range_cloexec = syscall(SYS_close_range, UINT_MAX, UINT_MAX, CLOSE_RANGE_CLOEXEC) == 0;

  // A size below MOUNT_ATTR_SIZE_VER0 is EINVAL where mount_setattr exists.
  errno = 0;
  long mount_setattr_result = syscall(SYS_mount_setattr, -1, "", 0, nullptr, 0);
  capabilities.mount_setattr = mount_setattr_result == -1 && errno == EINVAL;

  // pidfd_open(2) of ourselves, then waitid(P_PIDFD) on it: ECHILD (not our child) where P_PIDFD is
  // known, EINVAL where it is not.
  int self_pidfd = static_cast<int>(syscall(SYS_pidfd_open, getpid(), 0));
  if (self_pidfd >= 0) {
    siginfo_t info = {};
    errno = 0;
    int waited = waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(self_pidfd), &info, WEXITED | WNOHANG);
    capabilities.pidfd = waited == -1 && errno == ECHILD;
    close(self_pidfd);
  }
  return capabilities;
}

}  // namespace

const Capabilities& ProbeCapabilities() {
  static const Capabilities capabilities = Probe();
  return capabilities;
}

}  // namespace parafork
