// See sandbox_resources.h.
#include "sandbox_resources.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <thread>

#include "sandbox_devices.h"

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
  init_fd_.reset(KeepAboveStdio(open(init_path_.c_str(), O_PATH | O_CLOEXEC)));
  if (!init_fd_) {
    *failed = Syscall::kOpen;
    return errno;
  }
  if (int error_number = network_namespaces_.Start(); error_number != 0) {
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

namespace {

// Runs on a thread of its own, which unshare(CLONE_NEWNS) (with CLONE_FS) moves alone into the
// new namespace; it ends right after. 0 or an errno, with the step in `failed`.
int BuildFilesystemTemplate(const std::string& rootfs, bool read_only, const std::string& staging, UniqueFd* fd,
                            Syscall* failed) {
  *failed = Syscall::kMount;
  if (unshare(CLONE_NEWNS | CLONE_FS) == -1) return errno;
  fd->reset(KeepAboveStdio(open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC)));
  if (!*fd) return errno;
  // Nothing mounted here may propagate back to the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == -1) return errno;
  if (mount(rootfs.c_str(), staging.c_str(), nullptr, MS_BIND, nullptr) == -1) return errno;
  const std::string dev = staging + "/dev";
  if (mount("tmpfs", dev.c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536") == -1) return errno;
  const mode_t old_umask = umask(0);
  for (const SandboxDevice& device : kSandboxDevices) {
    if (mknod((dev + "/" + device.name).c_str(), S_IFCHR | 0666, makedev(device.major, device.minor)) == -1) {
      umask(old_umask);
      return errno;
    }
  }
  umask(old_umask);
  for (const SandboxDeviceLink& link : kSandboxDeviceLinks) {
    if (symlink(link.target, (dev + "/" + link.name).c_str()) == -1) return errno;
  }
  // Shared by every task: read-only. Writes to its device nodes still work (only regular files,
  // directories and links are refused on a read-only mount).
  if (mount(nullptr, dev.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, nullptr) == -1) {
    return errno;
  }
  if (read_only &&
      mount(nullptr, staging.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) == -1) {
    return errno;
  }
  *failed = Syscall::kPivotRoot;
  if (chdir(staging.c_str()) == -1) return errno;
  // pivot_root(".", "."): the old root is stacked under the new one and detached at once.
  if (syscall(SYS_pivot_root, ".", ".") == -1) return errno;
  if (umount2(".", MNT_DETACH) == -1) return errno;
  if (chdir("/") == -1) return errno;
  *failed = Syscall::kNone;
  return 0;
}

}  // namespace

int SandboxResources::FilesystemTemplate(const std::string& rootfs, bool read_only, const std::string& staging,
                                         int* fd, Syscall* failed) {
  std::lock_guard<std::mutex> guard(templates_mutex_);
  auto key = std::make_pair(rootfs, read_only);
  auto found = templates_.find(key);
  if (found == templates_.end()) {
    UniqueFd made;
    int error_number = 0;
    std::thread maker([&] { error_number = BuildFilesystemTemplate(rootfs, read_only, staging, &made, failed); });
    maker.join();
    if (error_number != 0) return error_number;
    found = templates_.emplace(std::move(key), std::move(made)).first;
  }
  *fd = found->second.get();
  return 0;
}

}  // namespace parafork
