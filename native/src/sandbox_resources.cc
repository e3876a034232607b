// See sandbox_resources.h.
#include "sandbox_resources.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "monotonic_clock.h"
#include "sandbox_devices.h"

#ifndef SYS_openat2
#define SYS_openat2 437  // the same number on every architecture
#endif

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
    *failed = Syscall::kInitHelper;
    return errno;
  }
  if (int error_number = network_namespaces_.Start(); error_number != 0) {
    *failed = Syscall::kNetwork;
    return error_number;
  }
  // KEYCTL_GET_KEYRING_ID (0) of the session keyring (-3), not made if missing: any answer but the
  // filter's (EPERM, or ENOSYS where the kernel has no keys) means the call reaches the kernel.
  if (syscall(SYS_keyctl, 0, -3, 0) == -1 && (errno == EPERM || errno == ENOSYS)) keyrings_reachable_ = false;
  try {
    seccomp_ = BuildDefaultSeccompProgram();
    resource_limit_guard_ = BuildResourceLimitGuardProgram();
  } catch (const std::exception&) {
    *failed = Syscall::kSeccomp;
    return EINVAL;
  }
  return 0;
}

namespace {

int CreateFile(const char* path, mode_t mode, std::string_view content = {}) {
  const int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, mode);
  if (fd == -1) return errno;
  const ssize_t written = content.empty() ? 0 : write(fd, content.data(), content.size());
  const int error_number = written == static_cast<ssize_t>(content.size()) ? 0 : (written < 0 ? errno : EIO);
  close(fd);
  return error_number;
}

// The template's mask directory (sandbox_masks.h) on the root's /proc (the working directory
// afterwards): an empty file, an empty directory, the hosts file, and under read-only/ a read-only bind of each
// global /proc knob in `masks`, taken from a /proc mounted here for the purpose and detached
// once bound. Then the whole tmpfs is made read-only. umask 0 is in force. read-only/ is made
// writable by its owner: the agent fills it, and in a container that drops CAP_DAC_OVERRIDE (the
// chart's) root is bound by the mode bits like anyone else; the read-only remount at the end is
// what keeps it as it is (issue 18).
int MakeTemplateMaskDirectory(const MaskLayout& masks) {
  if (mount("tmpfs", "/proc", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=16k,nr_inodes=32") == -1) return errno;
  if (chdir("/proc") == -1) return errno;
  if (int error_number = CreateFile(kMaskFileName, 0444); error_number != 0) return error_number;
  if (int error_number = CreateFile(kMaskHostsName, 0444, kMaskHostsContent); error_number != 0) return error_number;
  if (mkdir(kMaskDirectoryName, 0555) == -1 || mkdir(kReadOnlyDirectoryName, 0755) == -1) return errno;
  const char* const instance = "instance";
  if (mkdir(instance, 0700) == -1) return errno;
  if (mount("proc", instance, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == -1) return errno;
  for (size_t index = 0; index < masks.read_only_names.size(); ++index) {
    const std::string knob = std::string(instance) + "/" + masks.read_only_names[index];
    const std::string& bind = masks.read_only_sources[index];
    struct stat status;
    // The layout found it in the agent's /proc: a kernel's /proc has the same global entries everywhere.
    if (stat(knob.c_str(), &status) == -1) return errno;
    const int made = S_ISDIR(status.st_mode) ? (mkdir(bind.c_str(), 0555) == -1 ? errno : 0) : CreateFile(bind.c_str(), 0444);
    if (made != 0) return made;
    if (mount(knob.c_str(), bind.c_str(), nullptr, MS_BIND, nullptr) == -1) return errno;
    if (mount(nullptr, bind.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == -1) {
      return errno;
    }
  }
  if (umount2(instance, MNT_DETACH) == -1 || rmdir(instance) == -1) return errno;
  if (mount(nullptr, "/proc", nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) == -1) return errno;
  return 0;
}

bool SameFile(const struct stat& one, const struct stat& other) { return one.st_dev == other.st_dev && one.st_ino == other.st_ino; }

// The root's masks, from inside the mask directory, in the pivoted root: each path resolves as
// the task's will (its links inside its root). A path absent is skipped; one that already is a
// mask (a link to a masked path, such as /var/run -> /run) is left alone.
int MaskRootPaths(const std::vector<std::string>& paths) {
  struct stat empty_file;
  struct stat empty_directory;
  struct stat hosts;
  if (stat(kMaskFileName, &empty_file) == -1 || stat(kMaskDirectoryName, &empty_directory) == -1 || stat(kMaskHostsName, &hosts) == -1) {
    return errno;
  }
  for (const std::string& path : paths) {
    struct stat status;
    if (stat(path.c_str(), &status) == -1) {
      if (errno == ENOENT || errno == ENOTDIR) continue;
      return errno;
    }
    if (SameFile(status, empty_file) || SameFile(status, empty_directory) || SameFile(status, hosts)) continue;
    const char* source = S_ISDIR(status.st_mode) ? kMaskDirectoryName : path == kHostsPath ? kMaskHostsName : kMaskFileName;
    if (mount(source, path.c_str(), nullptr, MS_BIND, nullptr) == -1) return errno;
  }
  return 0;
}

// What a task of the template would find at one of the root's masked paths.
enum class MaskState : uint8_t { kAbsent, kMasked, kShown };

// Each of `paths` as a task of the template at `root` (an O_PATH fd of its root, usable from any
// mount namespace) resolves it now, links inside the root (RESOLVE_IN_ROOT), as MaskRootPaths
// did: absent, one of the mask directory's files (under /proc), or anything else, shown.
std::vector<MaskState> MaskStates(int root, const std::vector<std::string>& paths) {
  struct stat masks[3];
  const char* const names[3] = {kMaskFileName, kMaskDirectoryName, kMaskHostsName};
  for (size_t index = 0; index < 3; ++index) {
    if (fstatat(root, (std::string("proc/") + names[index]).c_str(), &masks[index], AT_SYMLINK_NOFOLLOW) == -1) {
      return std::vector<MaskState>(paths.size(), MaskState::kShown);
    }
  }
  std::vector<MaskState> states;
  states.reserve(paths.size());
  for (const std::string& path : paths) {
    struct open_how how = {};
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_IN_ROOT;
    const UniqueFd opened(static_cast<int>(syscall(SYS_openat2, root, path.c_str(), &how, sizeof(how))));
    struct stat status;
    if (!opened) {
      states.push_back(errno == ENOENT || errno == ENOTDIR ? MaskState::kAbsent : MaskState::kShown);
    } else if (fstat(opened.get(), &status) == 0 &&
               (SameFile(status, masks[0]) || SameFile(status, masks[1]) || SameFile(status, masks[2]))) {
      states.push_back(MaskState::kMasked);
    } else {
      states.push_back(MaskState::kShown);
    }
  }
  return states;
}

// Runs on a thread of its own, which unshare(CLONE_NEWNS) (with CLONE_FS) moves alone into the
// new namespace; it ends right after. 0 or an errno, with the step in `failed`; `root`: an
// O_PATH fd of the template's root, for looking at its masks from outside.
int BuildFilesystemTemplate(const std::string& rootfs, bool read_only, const MaskLayout& masks, const std::string& staging,
                            UniqueFd* fd, UniqueFd* root, Syscall* failed) {
  *failed = Syscall::kMount;
  if (unshare(CLONE_NEWNS | CLONE_FS) == -1) return errno;
  fd->reset(KeepAboveStdio(open("/proc/thread-self/ns/mnt", O_RDONLY | O_CLOEXEC)));
  if (!*fd) return errno;
  // Nothing mounted here may propagate back to the host.
  if (mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == -1) return errno;
  if (mount(rootfs.c_str(), staging.c_str(), nullptr, MS_BIND, nullptr) == -1) return errno;
  const std::string dev = staging + "/dev";
  if (mount("tmpfs", dev.c_str(), "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536") == -1) return errno;
  umask(0);  // this thread's own (CLONE_FS above), for the device nodes and the mask directory
  for (const SandboxDevice& device : kSandboxDevices) {
    if (mknod((dev + "/" + device.name).c_str(), S_IFCHR | 0666, makedev(device.major, device.minor)) == -1) return errno;
  }
  for (const SandboxDeviceLink& link : kSandboxDeviceLinks) {
    if (symlink(link.target, (dev + "/" + link.name).c_str()) == -1) return errno;
  }
  // Shared by every task: read-only. Writes to its device nodes still work (only regular files,
  // directories and links are refused on a read-only mount).
  if (mount(nullptr, dev.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, nullptr) == -1) {
    return errno;
  }
  // Read-only if asked; nosuid and nodev always (a writable root too: no setuid binary or
  // device node in it works).
  if (mount(nullptr, staging.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (read_only ? MS_RDONLY : 0),
            nullptr) == -1) {
    return errno;
  }
  *failed = Syscall::kPivotRoot;
  if (chdir(staging.c_str()) == -1) return errno;
  // pivot_root(".", "."): the old root is stacked under the new one and detached at once.
  if (syscall(SYS_pivot_root, ".", ".") == -1) return errno;
  if (umount2(".", MNT_DETACH) == -1) return errno;
  *failed = Syscall::kMount;
  if (int error_number = MakeTemplateMaskDirectory(masks); error_number != 0) return error_number;
  if (int error_number = MaskRootPaths(masks.root_masks); error_number != 0) return error_number;
  if (chdir("/") == -1) return errno;
  root->reset(KeepAboveStdio(open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)));
  if (!*root) return errno;
  *failed = Syscall::kNone;
  return 0;
}

}  // namespace

struct SandboxResources::Template {
  UniqueFd mount_namespace;
  UniqueFd root;                        // O_PATH, of the root tasks see (MaskStates)
  std::vector<MaskState> masks;         // of MaskLayout::root_masks, as made
  uint64_t checked_ns = 0;              // CLOCK_MONOTONIC
};

int SandboxResources::FilesystemTemplate(const std::string& rootfs, bool read_only, const MaskedPaths& masked,
                                         const std::string& staging, int* fd, std::shared_ptr<const void>* hold,
                                         Syscall* failed) {
  const MaskLayout& masks = Masks(masked);
  std::lock_guard<std::mutex> guard(templates_mutex_);
  auto key = std::make_tuple(rootfs, read_only, masked.joined);
  auto found = templates_.find(key);
  const uint64_t now_ns = MonotonicNanoseconds();
  if (found != templates_.end() && now_ns - found->second->checked_ns >= kMaskRecheckNs) {
    Template& current = *found->second;
    current.checked_ns = now_ns;
    // A mask gone or a masked path new: made again (spawns still holding the old one keep it).
    if (MaskStates(current.root.get(), masks.root_masks) != current.masks) {
      templates_.erase(found);
      found = templates_.end();
    }
  }
  if (found == templates_.end()) {
    auto made = std::make_shared<Template>();
    int error_number = 0;
    std::thread maker([&] {
      error_number = BuildFilesystemTemplate(rootfs, read_only, masks, staging, &made->mount_namespace, &made->root, failed);
    });
    maker.join();
    if (error_number != 0) return error_number;
    made->masks = MaskStates(made->root.get(), masks.root_masks);
    made->checked_ns = now_ns;
    found = templates_.emplace(std::move(key), std::move(made)).first;
  }
  *fd = found->second->mount_namespace.get();
  *hold = found->second;
  return 0;
}

const MaskLayout& SandboxResources::Masks(const MaskedPaths& masked) {
  std::lock_guard<std::mutex> guard(masks_mutex_);
  auto found = masks_.find(masked.joined);
  if (found == masks_.end()) {
    auto layout = std::make_unique<MaskLayout>();
    BuildMaskLayout(masked.paths, "/proc", layout.get());
    found = masks_.emplace(masked.joined, std::move(layout)).first;
  }
  return *found->second;
}

}  // namespace parafork
