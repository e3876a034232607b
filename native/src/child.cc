// The child side of a spawn: the only code that runs between clone and exec. Everything here is a
// raw system call on the prepared ChildPlan (see child.h for why). The functions are kept out of
// sanitizer instrumentation: the sanitizer runtimes are not async-signal-safe either.
#include "child.h"

#include <fcntl.h>
#include <linux/capability.h>
#include <linux/sched.h>
#include <linux/close_range.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <linux/securebits.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include <cerrno>
#include <climits>
#include <cstddef>

#include "raw_syscall.h"
#include "sandbox_masks.h"
#include "syscall_id.h"

#define PARAFORK_CHILD_CODE __attribute__((no_sanitize("address", "undefined", "thread"))) static

// The new mount API (open_tree(2), move_mount(2): Linux 5.2; mount_setattr(2): 5.12), spelled out
// for C library headers that predate it. These system calls have the same numbers on every
// architecture.
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif
#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef AT_RECURSIVE
#define AT_RECURSIVE 0x8000
#endif

namespace parafork {

namespace {

constexpr long kOpenTreeClone = 1;               // OPEN_TREE_CLONE
constexpr long kMoveMountFromEmptyPath = 0x04;   // MOVE_MOUNT_F_EMPTY_PATH
constexpr long kMoveMountToSymlinks = 0x10;      // MOVE_MOUNT_T_SYMLINKS: follow them, as mount(2) does
constexpr uint64_t kMountAttributeReadOnly = 0x1;  // MOUNT_ATTR_RDONLY
constexpr uint64_t kMountAttributeNoSetuid = 0x2;  // MOUNT_ATTR_NOSUID
constexpr uint64_t kMountAttributeNoDevices = 0x4; // MOUNT_ATTR_NODEV

// The kernel's struct mount_attr (MOUNT_ATTR_SIZE_VER0), for mount_setattr(2).
struct KernelMountAttributes {
  uint64_t attributes_to_set;
  uint64_t attributes_to_clear;
  uint64_t propagation;
  uint64_t user_namespace_fd;
};

// A system call that never touches errno: returns the result or -errno.
PARAFORK_CHILD_CODE inline long RawSyscall(long number, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0,
                                           long a5 = 0) {
  return parafork_raw_syscall(number, a1, a2, a3, a4, a5);
}

[[noreturn]] PARAFORK_CHILD_CODE void Fail(ChildPlan* plan, Syscall syscall, long negative_errno) {
  plan->failed_syscall = static_cast<uint8_t>(syscall);
  plan->failed_errno = static_cast<int>(-negative_errno);
  for (;;) RawSyscall(SYS_exit_group, 127);
}

// The kernel's struct sigaction for rt_sigaction(2) (not glibc's, which has a larger mask).
struct KernelSigaction {
  unsigned long handler;
  unsigned long flags;
  unsigned long restorer;
  unsigned long mask;
};

// Handlers of the agent (Node's, or a library's) must not run in the task, and Node ignores
// SIGPIPE, which exec would pass on: every catchable signal goes back to SIG_DFL, as libuv does.
// With CLONE_CLEAR_SIGHAND the kernel did the handlers; only the ignored signals are left.
PARAFORK_CHILD_CODE void ResetSignalDispositions(const ChildPlan* plan) {
  KernelSigaction default_action = {};  // handler 0 is SIG_DFL
  for (long signal_number = 1; signal_number < 65; ++signal_number) {
    if (signal_number == SIGKILL || signal_number == SIGSTOP) continue;
    if (plan->handlers_cleared && (plan->ignored_signals & (1ull << (signal_number - 1))) == 0) continue;
    RawSyscall(SYS_rt_sigaction, signal_number, reinterpret_cast<long>(&default_action), 0,
               sizeof(default_action.mask));
  }
}

// What the clone copied of the spawn thread and exec would keep (inherited_attributes.h): a
// priority above an ordinary process's goes to nice 0 (and SCHED_OTHER for a real-time policy) and
// I/O priority none; a personality beyond PER_LINUX32 and UNAME26 goes to those. First, before the
// cgroup joins: a real-time thread may not join a cgroup v1 cpu group that has no real-time budget.
// Lowering one's own priority and changing one's own personality need no capability.
PARAFORK_CHILD_CODE void ResetInheritedAttributes(ChildPlan* plan) {
  const InheritedAttributesReset& reset = plan->sandbox.inherited_reset;
  if (reset.lower_cpu) {
    KernelSchedAttributes attributes = {};
    attributes.size = sizeof(attributes);
    attributes.policy = reset.cpu_policy;
    long result = RawSyscall(SYS_sched_setattr, 0, reinterpret_cast<long>(&attributes), 0);
    if (result < 0) Fail(plan, Syscall::kInheritedAttributes, result);
  }
  if (reset.lower_io) {
    constexpr long kIoprioWhoProcess = 1;  // with 0: the calling thread; priority 0: class none
    long result = RawSyscall(SYS_ioprio_set, kIoprioWhoProcess, 0, 0);
    if (result < 0) Fail(plan, Syscall::kInheritedAttributes, result);
  }
  if (reset.reset_persona) {
    // Answers the previous persona, never an error, for a persona the kernel knows.
    long result = RawSyscall(SYS_personality, reset.persona);
    if (result < 0) Fail(plan, Syscall::kInheritedAttributes, result);
  }
}

// A /dev/null of the task's own at `target`, opened in the agent's mount namespace, as root, as the
// spawner opened its shared one: closed there first, so the open takes that number (the lowest
// free, those below it being placed) and cannot find the table full.
PARAFORK_CHILD_CODE int OpenOwnDevNull(ChildPlan* plan, int target) {
  static constexpr char kDevNull[] = "/dev/null";
  RawSyscall(SYS_close, target);
  const long opened = RawSyscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>(kDevNull), O_RDWR | O_NOCTTY);
  if (opened < 0) Fail(plan, Syscall::kOpen, opened);
  if (opened != target) {
    const long result = RawSyscall(SYS_dup3, opened, target, 0);
    RawSyscall(SYS_close, opened);
    if (result < 0) Fail(plan, Syscall::kDup2, result);
  }
  return target;
}

// The stdio fds at 0, 1 and 2. A sandboxed task's /dev/null (its stdin, and an ignored stdout or
// stderr) is an open file of its own: the spawner's is one file shared by every task it starts,
// and what a task does to an open file stays with the file, not the task. flock(2) and open file
// description locks (F_OFD_SETLK) are the file's, so a task that locked its stdin and exited left
// the node's /dev/null locked for every other process of the node for as long as the agent ran;
// F_SETFL flags set by one task were read by the next (red team, session 16,
// test/security/sandbox-stdin-file.test.ts). The task's own file closes with its last process.
PARAFORK_CHILD_CODE void PlaceStdio(ChildPlan* plan) {
  int own_dev_null = -1;
  for (int target = 0; target < 3; ++target) {
    if ((plan->own_dev_null & (1u << target)) != 0) {
      if (own_dev_null < 0) {
        own_dev_null = OpenOwnDevNull(plan, target);
        continue;
      }
      const long result = RawSyscall(SYS_dup3, own_dev_null, target, 0);
      if (result < 0) Fail(plan, Syscall::kDup2, result);
      continue;
    }
    const int source = plan->stdio_fds[target];
    // dup3 clears close-on-exec on the copy; the prepared fds are all > 2, so source != target.
    long result = RawSyscall(SYS_dup3, source, target, 0);
    if (result < 0) Fail(plan, Syscall::kDup2, result);
  }
}

// The result file at fd 3 for the task ($PARAFORK_RESULT names it), after every inherited fd was
// marked close-on-exec: dup3 clears the mark on the copy; an fd that is 3 already is unmarked.
PARAFORK_CHILD_CODE void PlaceResultFile(ChildPlan* plan) {
  if (plan->result_fd < 0) return;
  const long result = plan->result_fd == kResultFd ? RawSyscall(SYS_fcntl, kResultFd, F_SETFD, 0)
                                                   : RawSyscall(SYS_dup3, plan->result_fd, kResultFd, 0);
  if (result < 0) Fail(plan, Syscall::kDup2, result);
}

PARAFORK_CHILD_CODE bool ParseFdNumber(const char* name, int* fd) {
  if (*name == '\0') return false;
  long value = 0;
  for (; *name != '\0'; ++name) {
    if (*name < '0' || *name > '9') return false;
    value = value * 10 + (*name - '0');
    if (value > INT_MAX) return false;
  }
  *fd = static_cast<int>(value);
  return true;
}

// Without close_range(CLOSE_RANGE_CLOEXEC) (Linux < 5.11), mark every inherited fd above 2
// close-on-exec by reading /proc/self/fd with getdents64(2) into a stack buffer.
PARAFORK_CHILD_CODE void MarkInheritedFdsCloseOnExecSlowly(ChildPlan* plan) {
  long directory = RawSyscall(SYS_openat, AT_FDCWD, reinterpret_cast<long>("/proc/self/fd"),
                              O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (directory < 0) Fail(plan, Syscall::kCloseRange, directory);
  alignas(8) char buffer[2048];
  for (;;) {
    long length = RawSyscall(SYS_getdents64, directory, reinterpret_cast<long>(buffer), sizeof(buffer));
    if (length < 0) Fail(plan, Syscall::kCloseRange, length);
    if (length == 0) break;
    for (long offset = 0; offset < length;) {
      // struct linux_dirent64: d_ino (8), d_off (8), d_reclen (2), d_type (1), d_name.
      const char* entry = buffer + offset;
      const unsigned short record_length = *reinterpret_cast<const unsigned short*>(entry + 16);
      int fd = -1;
      if (ParseFdNumber(entry + 19, &fd) && fd > 2 && fd != directory) {
        RawSyscall(SYS_fcntl, fd, F_SETFD, FD_CLOEXEC);
      }
      offset += record_length;
    }
  }
  RawSyscall(SYS_close, directory);
}

PARAFORK_CHILD_CODE void CloseInheritedFdsOnExec(ChildPlan* plan) {
  if (plan->close_range_cloexec) {
    // close_range(2): marks rather than closes, so the exec itself drops them and a failed exec
    // can still report through the plan.
    long result = RawSyscall(SYS_close_range, 3, static_cast<long>(~0U), CLOSE_RANGE_CLOEXEC);
    if (result == 0) return;
  }
  MarkInheritedFdsCloseOnExecSlowly(plan);
}

// Tries each candidate like execvp(3): a missing candidate moves on, a permission error is
// remembered (and reported if nothing else runs), anything else stops the search.
[[noreturn]] PARAFORK_CHILD_CODE void Exec(ChildPlan* plan) {
  long result = -ENOENT;
  bool saw_permission_error = false;
  for (const char* const* path = plan->exec_paths; *path != nullptr; ++path) {
    result = RawSyscall(SYS_execve, reinterpret_cast<long>(*path), reinterpret_cast<long>(plan->argv),
                        reinterpret_cast<long>(plan->envp));
    if (result == -EACCES) {
      saw_permission_error = true;
      continue;
    }
    if (result == -ENOENT || result == -ENOTDIR || result == -ESTALE || result == -ENODEV ||
        result == -ETIMEDOUT) {
      continue;
    }
    break;
  }
  if (saw_permission_error && (result == -ENOENT || result == -ENOTDIR)) result = -EACCES;
  Fail(plan, Syscall::kExecve, result);
}

template <typename T>
PARAFORK_CHILD_CODE long Address(T* pointer) {
  return reinterpret_cast<long>(pointer);
}

PARAFORK_CHILD_CODE long Mount(const char* source, const char* target, const char* type, unsigned long flags,
                               const char* data) {
  return RawSyscall(SYS_mount, Address(source), Address(target), Address(type), static_cast<long>(flags), Address(data));
}

// makedev(3), spelled out: the child may not call libc.
PARAFORK_CHILD_CODE unsigned long DeviceNumber(unsigned int major, unsigned int minor) {
  return ((static_cast<unsigned long>(major) & 0xfffff000ul) << 32) | ((major & 0xfffu) << 8) |
         ((static_cast<unsigned long>(minor) & 0xffffff00ul) << 12) | (minor & 0xffu);
}

// Network "loopback": the task has its own network namespace (CLONE_NEWNET); bring lo up.
PARAFORK_CHILD_CODE void BringLoopbackUp(ChildPlan* plan) {
  long socket_fd = RawSyscall(SYS_socket, AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (socket_fd < 0) Fail(plan, Syscall::kNetwork, socket_fd);
  struct ifreq request = {};
  request.ifr_name[0] = 'l';
  request.ifr_name[1] = 'o';
  long result = RawSyscall(SYS_ioctl, socket_fd, SIOCGIFFLAGS, Address(&request));
  if (result < 0) Fail(plan, Syscall::kNetwork, result);
  request.ifr_flags = static_cast<short>(request.ifr_flags | IFF_UP | IFF_RUNNING);
  result = RawSyscall(SYS_ioctl, socket_fd, SIOCSIFFLAGS, Address(&request));
  if (result < 0) Fail(plan, Syscall::kNetwork, result);
  RawSyscall(SYS_close, socket_fd);
}

// True when `path` names something (following links), as a mount target would be resolved.
PARAFORK_CHILD_CODE bool Exists(const char* path) {
  struct statx status;
  return RawSyscall(SYS_statx, AT_FDCWD, Address(path), 0, 0, Address(&status)) == 0;
}

// Binds entries of the mask directory (the working directory) over /proc paths: read-only knobs
// and masks. A target this task's /proc lacks is skipped; mount(2) also says ENOENT for a
// missing source, so the target is looked up before anything is skipped.
PARAFORK_CHILD_CODE void BindMasks(ChildPlan* plan, const MaskMount* masks, size_t count) {
  for (size_t index = 0; index < count; ++index) {
    long result = Mount(masks[index].source, masks[index].target, nullptr, MS_BIND, nullptr);
    if (result == -ENOENT && !Exists(masks[index].target)) continue;
    if (result < 0) Fail(plan, Syscall::kMount, result);
  }
}

// The per-task path's read-only /proc knobs: each bound onto itself, then that bind made
// read-only (a remount with MS_BIND changes the one mount, not the filesystem: mount(2)).
PARAFORK_CHILD_CODE void MakeReadOnlyInPlace(ChildPlan* plan, const char* const* targets, size_t count) {
  for (size_t index = 0; index < count; ++index) {
    long result = Mount(targets[index], targets[index], nullptr, MS_BIND, nullptr);
    if (result == -ENOENT) continue;  // source and target are one path: it is missing
    if (result < 0) Fail(plan, Syscall::kMount, result);
    result = Mount(nullptr, targets[index], nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
                   nullptr);
    if (result < 0) Fail(plan, Syscall::kMount, result);
  }
}

PARAFORK_CHILD_CODE bool SameFile(const struct statx& one, const struct statx& other) {
  return one.stx_ino == other.stx_ino && one.stx_dev_major == other.stx_dev_major && one.stx_dev_minor == other.stx_dev_minor;
}

// strcmp(3), spelled out: the child may not call libc.
PARAFORK_CHILD_CODE bool SameText(const char* one, const char* other) {
  for (; *one != '\0' && *one == *other; ++one, ++other) {
  }
  return *one == *other;
}

// The per-task path's root masks, from inside the mask directory once the root is final, so that
// each path resolves as the task will resolve it (its links inside its root). Its kind picks the
// empty file or the empty directory (the hosts file for /etc/hosts); a path that already is one of
// them (a link to a masked path, such as /var/run -> /run) is left alone, a path absent is skipped.
PARAFORK_CHILD_CODE void MaskRootPaths(ChildPlan* plan, const char* const* targets, size_t count) {
  struct statx empty_file;
  struct statx empty_directory;
  struct statx hosts;
  long result = RawSyscall(SYS_statx, AT_FDCWD, Address(kMaskFileName), 0, STATX_INO, Address(&empty_file));
  if (result == 0) result = RawSyscall(SYS_statx, AT_FDCWD, Address(kMaskDirectoryName), 0, STATX_INO, Address(&empty_directory));
  if (result == 0) result = RawSyscall(SYS_statx, AT_FDCWD, Address(kMaskHostsName), 0, STATX_INO, Address(&hosts));
  if (result < 0) Fail(plan, Syscall::kMount, result);
  for (size_t index = 0; index < count; ++index) {
    struct statx target;
    result = RawSyscall(SYS_statx, AT_FDCWD, Address(targets[index]), 0, STATX_TYPE | STATX_INO, Address(&target));
    if (result == -ENOENT || result == -ENOTDIR) continue;
    if (result < 0) Fail(plan, Syscall::kMount, result);
    if (SameFile(target, empty_file) || SameFile(target, empty_directory) || SameFile(target, hosts)) continue;
    const char* source = S_ISDIR(target.stx_mode)             ? kMaskDirectoryName
                         : SameText(targets[index], kHostsPath) ? kMaskHostsName
                                                                : kMaskFileName;
    result = Mount(source, targets[index], nullptr, MS_BIND, nullptr);
    if (result < 0) Fail(plan, Syscall::kMount, result);
  }
}

// The per-task mask directory (sandbox_masks.h): a small tmpfs on the staging root's /proc, which
// the task's /proc then covers, holding an empty file, an empty directory and the hosts file,
// then made read-only (the whole filesystem, so every bind of it is read-only too). Returns an
// O_PATH fd of it.
PARAFORK_CHILD_CODE long MakeMaskDirectory(ChildPlan* plan) {
  const SandboxPlan& sandbox = plan->sandbox;
  long result = Mount("tmpfs", sandbox.proc_path, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=16k,nr_inodes=16");
  if (result < 0) Fail(plan, Syscall::kMount, result);
  const long directory = RawSyscall(SYS_openat, AT_FDCWD, Address(sandbox.proc_path), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (directory < 0) Fail(plan, Syscall::kMount, directory);
  const long file = RawSyscall(SYS_openat, directory, Address(kMaskFileName), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0444);
  if (file < 0) Fail(plan, Syscall::kMount, file);
  RawSyscall(SYS_close, file);
  const long hosts = RawSyscall(SYS_openat, directory, Address(kMaskHostsName), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0444);
  if (hosts < 0) Fail(plan, Syscall::kMount, hosts);
  result = RawSyscall(SYS_write, hosts, Address(kMaskHostsContent), sizeof(kMaskHostsContent) - 1);
  RawSyscall(SYS_close, hosts);
  if (result != static_cast<long>(sizeof(kMaskHostsContent) - 1)) Fail(plan, Syscall::kMount, result < 0 ? result : -EIO);
  result = RawSyscall(SYS_mkdirat, directory, Address(kMaskDirectoryName), 0555);
  if (result < 0) Fail(plan, Syscall::kMount, result);
  result = Mount(nullptr, sandbox.proc_path, nullptr, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  if (result < 0) Fail(plan, Syscall::kMount, result);
  return directory;
}

// Attaches a detached tree (open_tree(2) fd, or a negative errno) at `target`, closing it: 0 or a negative errno.
PARAFORK_CHILD_CODE long AttachTree(long tree, const char* target) {
  if (tree < 0) return tree;
  const long result = RawSyscall(SYS_move_mount, tree, Address(""), AT_FDCWD, Address(target), kMoveMountFromEmptyPath | kMoveMountToSymlinks);
  RawSyscall(SYS_close, tree);
  return result;
}

// A host path opened beneath `directory` (both as the child's own mount namespace has them), as an
// O_PATH fd, or a negative errno: openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS fails
// with EXDEV (ELOOP for a magic link) when a link or `..` would lead out of the directory, so a
// directory swapped for such a link after the agent checked the path cannot redirect the mount
// (issue 14). `directory` itself is opened following no link at all (ELOOP): it is the allowed
// directory as the agent's check resolved it, and one allowed directory may lie inside another
// that a Task can write, which could swap it for a link out (red team, session 16). In the child,
// not the spawn thread: a mount(2) or open_tree(2) source must belong to the caller's mount
// namespace, and the child has a new one.
PARAFORK_CHILD_CODE long OpenBeneath(const char* directory, const char* relative) {
  struct open_how exact = {};
  exact.flags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  exact.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const long root = RawSyscall(SYS_openat2, AT_FDCWD, Address(directory), Address(&exact), sizeof(exact));
  if (root < 0) return root;
  struct open_how how = {};
  how.flags = O_PATH | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  const long opened = RawSyscall(SYS_openat2, root, Address(relative), Address(&how), sizeof(how));
  RawSyscall(SYS_close, root);
  return opened;
}

// A detached copy of what `fd` (OpenBeneath) points to, recursive or not: open_tree(2).
PARAFORK_CHILD_CODE long CloneTreeOf(long fd, bool recursive) {
  return RawSyscall(SYS_open_tree, fd, Address(""), kOpenTreeClone | O_CLOEXEC | AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0));
}

// A bind mount the task asked for, nosuid and nodev, and read-only if asked, all the way down:
// with mount_setattr(2), a detached recursive copy (open_tree(2)) is given its flags before
// move_mount(2) attaches it, so no part of it is ever visible with other flags. Without it
// (Linux < 5.12), a remount can flag only one mount, so the mount is bound alone and its
// submounts are left out: never shown writable or with devices.
PARAFORK_CHILD_CODE void BindTaskMount(ChildPlan* plan, const SandboxMount& mount) {
  long opened = -1;
  if (mount.beneath != nullptr) {
    opened = OpenBeneath(mount.beneath, mount.relative);
    if (opened < 0) Fail(plan, Syscall::kOpenBeneath, opened);
  }
  if (plan->sandbox.mount_setattr) {
    const long tree = opened >= 0 ? CloneTreeOf(opened, /*recursive=*/true)
                                  : RawSyscall(SYS_open_tree, AT_FDCWD, Address(mount.source), kOpenTreeClone | O_CLOEXEC | AT_RECURSIVE);
    if (opened >= 0) RawSyscall(SYS_close, opened);
    if (tree < 0) Fail(plan, Syscall::kMount, tree);
    KernelMountAttributes attributes = {};
    attributes.attributes_to_set = kMountAttributeNoSetuid | kMountAttributeNoDevices | (mount.read_only ? kMountAttributeReadOnly : 0);
    long result = RawSyscall(SYS_mount_setattr, tree, Address(""), AT_EMPTY_PATH | AT_RECURSIVE, Address(&attributes),
                             sizeof(attributes));
    if (result == 0) {
      result = RawSyscall(SYS_move_mount, tree, Address(""), AT_FDCWD, Address(mount.target),
                          kMoveMountFromEmptyPath | kMoveMountToSymlinks);
    }
    RawSyscall(SYS_close, tree);
    if (result < 0) Fail(plan, Syscall::kMount, result);
    return;
  }
  long result;
  if (opened >= 0) {
    // Alone, as the bind below: the submounts are left out without mount_setattr.
    result = AttachTree(CloneTreeOf(opened, /*recursive=*/false), mount.target);
    RawSyscall(SYS_close, opened);
  } else {
    result = Mount(mount.source, mount.target, nullptr, MS_BIND, nullptr);
  }
  if (result < 0) Fail(plan, Syscall::kMount, result);
  result = Mount(nullptr, mount.target, nullptr, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (mount.read_only ? MS_RDONLY : 0),
                 nullptr);
  if (result < 0) Fail(plan, Syscall::kMount, result);
}

// The task's filesystem: its root (the agent's own by default) bound onto the staging directory
// in the task's private mount namespace, the mask directory, a fresh /proc for its pid namespace,
// a minimal read-only /dev, a private size-limited /tmp, the extra bind mounts; the root made
// read-only (if asked), nosuid and nodev; pivot_root into it, leaving the agent's mounts behind
// (pivot_root(2): the old root is detached); last, from inside the mask directory, /proc's
// read-only knobs and masks and the root's masks, on the task's final view.
PARAFORK_CHILD_CODE void BuildFilesystem(ChildPlan* plan) {
  const SandboxPlan& sandbox = plan->sandbox;
  // Nothing we mount may propagate back to the host.
  long result = Mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr);
  if (result < 0) Fail(plan, Syscall::kMount, result);
  if (sandbox.rootfs_beneath != nullptr) {
    // The root as the agent checked it, opened beneath its allowed directory (OpenBeneath), and
    // bound alone as MS_BIND binds it.
    const long opened = OpenBeneath(sandbox.rootfs_beneath, sandbox.rootfs_relative);
    if (opened < 0) Fail(plan, Syscall::kOpenBeneath, opened);
    result = AttachTree(CloneTreeOf(opened, /*recursive=*/false), sandbox.staging);
    RawSyscall(SYS_close, opened);
  } else {
    result = Mount(sandbox.rootfs, sandbox.staging, nullptr, MS_BIND, nullptr);
  }
  if (result < 0) Fail(plan, Syscall::kMount, result);
  RawSyscall(SYS_umask, 0);
  const long mask_directory = MakeMaskDirectory(plan);
  result = Mount("proc", sandbox.proc_path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  if (result < 0) Fail(plan, Syscall::kMount, result);
  result = Mount("tmpfs", sandbox.dev_path, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=65536");
  if (result < 0) Fail(plan, Syscall::kMount, result);
  for (size_t index = 0; index < sandbox.device_node_count; ++index) {
    const DeviceNode& node = sandbox.device_nodes[index];
    result = RawSyscall(SYS_mknodat, AT_FDCWD, Address(node.path), S_IFCHR | 0666,
                        static_cast<long>(DeviceNumber(node.major, node.minor)));
    if (result < 0) Fail(plan, Syscall::kMount, result);
  }
  for (size_t index = 0; index < sandbox.device_link_count; ++index) {
    const SymbolicLink& link = sandbox.device_links[index];
    result = RawSyscall(SYS_symlinkat, Address(link.target), AT_FDCWD, Address(link.path));
    if (result < 0) Fail(plan, Syscall::kMount, result);
  }
  RawSyscall(SYS_umask, 022);
  // Read-only, as in the template: writes to its device nodes still work.
  result = Mount(nullptr, sandbox.dev_path, nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC, nullptr);
  if (result < 0) Fail(plan, Syscall::kMount, result);
  if (sandbox.tmp_path != nullptr) {
    result = Mount("tmpfs", sandbox.tmp_path, "tmpfs", MS_NOSUID | MS_NODEV, sandbox.tmp_options);
    if (result < 0) Fail(plan, Syscall::kMount, result);
  }
  for (size_t index = 0; index < sandbox.mount_count; ++index) BindTaskMount(plan, sandbox.mounts[index]);
  result = Mount(nullptr, sandbox.staging, nullptr,
                 MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV | (sandbox.read_only_root ? MS_RDONLY : 0), nullptr);
  if (result < 0) Fail(plan, Syscall::kMount, result);
  result = RawSyscall(SYS_chdir, Address(sandbox.staging));
  if (result < 0) Fail(plan, Syscall::kPivotRoot, result);
  // pivot_root(".", "."): the old root is stacked under the new one and detached at once.
  result = RawSyscall(SYS_pivot_root, Address("."), Address("."));
  if (result < 0) Fail(plan, Syscall::kPivotRoot, result);
  result = RawSyscall(SYS_umount2, Address("."), MNT_DETACH);
  if (result < 0) Fail(plan, Syscall::kPivotRoot, result);
  result = RawSyscall(SYS_fchdir, mask_directory);
  if (result < 0) Fail(plan, Syscall::kMount, result);
  RawSyscall(SYS_close, mask_directory);
  MakeReadOnlyInPlace(plan, sandbox.proc_read_only, sandbox.proc_read_only_count);
  BindMasks(plan, sandbox.proc_mounts, sandbox.proc_mount_count);
  MaskRootPaths(plan, sandbox.root_masks, sandbox.root_mask_count);
  // The working directory is entered last, as the task's user (EnterWorkingDirectory).
}

// The task's filesystem from the shared template (SandboxResources::FilesystemTemplate): join it
// (the kernel sets our root and working directory to its root), take a private copy so that our
// mounts stay ours, then mount what is the task's own: /proc of its pid namespace, with the
// template's read-only knobs and masks bound over it from the mask directory underneath (entered
// first, so that it stays reachable as our working directory), and /tmp.
PARAFORK_CHILD_CODE void JoinFilesystemTemplate(ChildPlan* plan) {
  const SandboxPlan& sandbox = plan->sandbox;
  long result = RawSyscall(SYS_setns, sandbox.mount_namespace_fd, CLONE_NEWNS);
  if (result < 0) Fail(plan, Syscall::kMount, result);
  result = RawSyscall(SYS_unshare, CLONE_NEWNS);
  if (result < 0) Fail(plan, Syscall::kMount, result);
  result = RawSyscall(SYS_chdir, Address(sandbox.proc_path));
  if (result < 0) Fail(plan, Syscall::kMount, result);
  result = Mount("proc", sandbox.proc_path, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr);
  if (result < 0) Fail(plan, Syscall::kMount, result);
  BindMasks(plan, sandbox.proc_mounts, sandbox.proc_mount_count);
  if (sandbox.tmp_path != nullptr) {
    result = Mount("tmpfs", sandbox.tmp_path, "tmpfs", MS_NOSUID | MS_NODEV, sandbox.tmp_options);
    if (result < 0) Fail(plan, Syscall::kMount, result);
  }
  // The working directory is entered last, as the task's user (EnterWorkingDirectory).
}

// Unprivileged from here on, in two halves around the default filter's attach point (BuildSandbox):
// first no capability can come back (bounding and ambient sets emptied, so not even exec of a file
// with file capabilities gives any) and no_new_privs (setuid binaries do not raise privileges;
// needed for a filter attached without CAP_SYS_ADMIN); neither takes an effective capability away.
PARAFORK_CHILD_CODE void EmptyCapabilityBounds(ChildPlan* plan) {
  // Each drop commits new credentials (~1.5 us): only those still in the set are dropped. The
  // sandbox spawn threads have emptied theirs already (spawner.h), so usually none is left.
  for (long capability = 0; capability < 64; ++capability) {
    long in_set = RawSyscall(SYS_prctl, PR_CAPBSET_READ, capability);
    if (in_set < 0) break;  // EINVAL past the last capability
    if (in_set == 1) {
      long result = RawSyscall(SYS_prctl, PR_CAPBSET_DROP, capability);
      if (result < 0) Fail(plan, Syscall::kIdentity, result);
    }
  }
  RawSyscall(SYS_prctl, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0);
  long result = RawSyscall(SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0, 0);
  if (result < 0) Fail(plan, Syscall::kIdentity, result);
}

// Then the task's ids, no supplementary groups, and every capability set empty.
PARAFORK_CHILD_CODE void TakeTaskIdentity(ChildPlan* plan) {
  const SandboxPlan& sandbox = plan->sandbox;
  long result = RawSyscall(SYS_setgroups, 0, 0);
  if (result < 0) Fail(plan, Syscall::kIdentity, result);
  result = RawSyscall(SYS_setresgid, sandbox.gid, sandbox.gid, sandbox.gid);
  if (result < 0) Fail(plan, Syscall::kIdentity, result);
  result = RawSyscall(SYS_setresuid, sandbox.uid, sandbox.uid, sandbox.uid);
  if (result < 0) Fail(plan, Syscall::kIdentity, result);
  // A non-zero uid lost every capability with setresuid; uid 0 keeps them unless cleared.
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct none[2] = {};
  result = RawSyscall(SYS_capset, Address(&header), Address(none));
  if (result < 0) Fail(plan, Syscall::kIdentity, result);
}

PARAFORK_CHILD_CODE void AttachFilter(ChildPlan* plan) {
  const long result = RawSyscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, Address(plan->sandbox.seccomp));
  if (result < 0) Fail(plan, Syscall::kSeccomp, result);
}

// A session keyring of the task's own, empty, as runc gives each container one. Keyrings are not
// namespaced, and a process keeps its session keyring across clone, setuid and exec, with the
// possessor's rights on every key in it: the agent's (a login's, for `parafork run` under
// pam_keyinit; a service manager's) may hold Kerberos tickets, CIFS credentials, fscrypt keys,
// and a task whose filter let keyctl(2) through (a Localhost profile, Unconfined) read them as any
// uid, and shared that keyring with every other such task (red team,
// test/security/sandbox-keyring.test.ts). keyrings(7), session-keyring(7). Made while still the
// agent's root, so it counts against root's key quota (kernel.keys.root_maxkeys, a million), not
// the task uid's 200, which tasks sharing a runAsUser would exhaust together. A kernel without
// keys (ENOSYS) has nothing to share.
PARAFORK_CHILD_CODE void JoinOwnSessionKeyring(ChildPlan* plan) {
  constexpr long kJoinSessionKeyring = 1;  // KEYCTL_JOIN_SESSION_KEYRING; a null name: a new anonymous one
  const long result = RawSyscall(SYS_keyctl, kJoinSessionKeyring, 0);
  if (result < 0 && result != -ENOSYS) Fail(plan, Syscall::kIdentity, result);
}

// The task uid's own keyrings, emptied of what an earlier task leased the same uid left there:
// the user keyring, the user session keyring and the persistent keyring belong to the uid, not to
// a process, and outlive it (user_keyrings.h; red team, test/security/sandbox-user-keyrings.test.ts).
// Run as the task's uid (the kernel finds them by the caller's), with no capabilities; under
// Unconfined's guard already, which lets keyctl through (a custom profile comes after). The
// persistent keyring is linked into the task's session keyring to be possessed (its owner may
// only view and read it otherwise), emptied, and unlinked again. A kernel without keys
// (ENOSYS) or without persistent keyrings (EOPNOTSUPP) has nothing there; EDQUOT: the uid's quota
// is full and it has no persistent keyring to find, which getting one would have to make. Any
// other failure fails the spawn: EACCES when an earlier task of the uid took write permission on a
// keyring away (its owner may, and only it can give it back), and then the task would read what is
// left there, or use a credential planted there.
PARAFORK_CHILD_CODE void EmptyUserKeyrings(ChildPlan* plan) {
  constexpr long kClear = 7;           // KEYCTL_CLEAR
  constexpr long kUnlink = 9;          // KEYCTL_UNLINK
  constexpr long kGetPersistent = 22;  // KEYCTL_GET_PERSISTENT
  constexpr long kSessionKeyring = -3, kUserKeyring = -4, kUserSessionKeyring = -5;
  const long user_keyrings[] = {kUserKeyring, kUserSessionKeyring};
  for (long keyring : user_keyrings) {
    const long result = RawSyscall(SYS_keyctl, kClear, keyring);
    if (result == -ENOSYS) return;
    if (result < 0) Fail(plan, Syscall::kKeyrings, result);
  }
  const long persistent = RawSyscall(SYS_keyctl, kGetPersistent, -1, kSessionKeyring);
  if (persistent == -EOPNOTSUPP || persistent == -EDQUOT) return;
  if (persistent < 0) Fail(plan, Syscall::kKeyrings, persistent);
  long result = RawSyscall(SYS_keyctl, kClear, persistent);
  if (result < 0) Fail(plan, Syscall::kKeyrings, result);
  result = RawSyscall(SYS_keyctl, kUnlink, persistent, kSessionKeyring);
  if (result < 0) Fail(plan, Syscall::kKeyrings, result);
}

// User-namespace mode: the task's user namespace comes last, after every other namespace and
// the filesystem were made as the agent's root, so it owns none of them (it cannot mount,
// sethostname or setns even as root inside). Its id maps can only be written from outside with
// CAP_SETUID in the parent namespace (user_namespaces(7)): the parent does that between our two
// pipe steps.
//
// The namespace's owner is the effective uid (and group the effective gid) at unshare(2), and
// the kernel charges what processes inside hold (inotify instances, processes, user namespaces)
// to the owner in the parent namespace as well (kernel/ucount.c, inc_ucount). Made as root, every
// task's namespace would share root's per-user limits with the host's root processes and with
// every other task; so we take the first host id of the task's range as effective ids first.
// SECBIT_NO_SETUID_FIXUP keeps our capabilities through that change (capabilities(7)): kernels
// that let only CAP_SYS_ADMIN make user namespaces (Debian's unprivileged_userns_clone=0,
// Ubuntu's AppArmor restriction) still do. unshare gives the new credentials default securebits.
PARAFORK_CHILD_CODE void EnterUserNamespace(ChildPlan* plan) {
  const SandboxPlan& sandbox = plan->sandbox;
  // Our copies of the parent's ends would keep its "no go" (a closed pipe) from reaching us.
  RawSyscall(SYS_close, sandbox.user_namespace_parent_fds[0]);
  RawSyscall(SYS_close, sandbox.user_namespace_parent_fds[1]);
  long result = RawSyscall(SYS_prctl, PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP);
  if (result < 0) Fail(plan, Syscall::kUserNamespace, result);
  result = RawSyscall(SYS_setresgid, -1, sandbox.user_namespace_owner, -1);
  if (result < 0) Fail(plan, Syscall::kUserNamespace, result);
  result = RawSyscall(SYS_setresuid, -1, sandbox.user_namespace_owner, -1);
  if (result < 0) Fail(plan, Syscall::kUserNamespace, result);
  result = RawSyscall(SYS_unshare, CLONE_NEWUSER);
  if (result < 0) Fail(plan, Syscall::kUserNamespace, result);
  const char ready = 'u';
  result = RawSyscall(SYS_write, sandbox.user_namespace_ready_fd, Address(&ready), 1);
  if (result < 0) Fail(plan, Syscall::kUserNamespace, result);
  char go = 0;
  do {
    result = RawSyscall(SYS_read, sandbox.user_namespace_go_fd, Address(&go), 1);
  } while (result == -EINTR);
  // The parent closes its end without a byte when it could not write the maps (it reports why).
  if (result != 1) Fail(plan, Syscall::kUserNamespace, result < 0 ? result : -EPERM);
}

// The task's OOM score, set while the child is still the agent's root with CAP_SYS_RESOURCE: that
// also makes it the least the task may set again (oom_score_adj_min; proc(5)). Before the
// filesystem is built: /proc here is still the host's, where /proc/self is this child.
PARAFORK_CHILD_CODE void SetOomScoreAdjust(ChildPlan* plan) {
  const SandboxPlan& sandbox = plan->sandbox;
  long fd = RawSyscall(SYS_openat, AT_FDCWD, Address("/proc/self/oom_score_adj"), O_WRONLY | O_CLOEXEC);
  if (fd < 0) Fail(plan, Syscall::kOomScoreAdjust, fd);
  long result = RawSyscall(SYS_write, fd, Address(sandbox.oom_score_adj), static_cast<long>(sandbox.oom_score_adj_length));
  RawSyscall(SYS_close, fd);
  if (result < 0) Fail(plan, Syscall::kOomScoreAdjust, result);
}

// The task's working directory, entered as the task's user once the privileges are gone: as root
// it passed every directory's search permission, and a task could start inside a directory its
// user may not enter (a 0700 parent guarding files below it) and read beneath it by relative paths
// (red team, sandbox-working-directory.test.ts). Until here the working directory is the mask
// directory or the template's /proc, where nothing of the task runs.
// Then checked to lie inside the task's root: the child still holds the agent's fds until its
// exec (all of them in user-namespace mode), and /proc/self/fd/N, N one of the agent's directories
// (the network namespace pool's /proc/thread-self/net), started the task in the agent's mount
// namespace, outside its root, from where `..` reached the node's whole filesystem unmasked (red
// team, same test). getcwd(2) names a working directory its root cannot reach "(unreachable)..."
// (fs/d_path.c): that fails the spawn with ELOOP, as a path through such a link. Not refused by
// opening it without magic links first (openat2 RESOLVE_NO_MAGICLINKS): that needs a free fd below
// the task's RLIMIT_NOFILE, set by now, and in user-namespace mode the agent's own fds may fill
// every one (EMFILE for every task of an agent holding 1,024 fds).
PARAFORK_CHILD_CODE void EnterWorkingDirectory(ChildPlan* plan) {
  long result = RawSyscall(SYS_chdir, Address(plan->sandbox.working_directory));
  if (result < 0) Fail(plan, Syscall::kChdir, result);
  char path[4096];  // PATH_MAX: getcwd(2) answers ENAMETOOLONG past a page anyway
  result = RawSyscall(SYS_getcwd, Address(path), sizeof(path));
  if (result < 0) Fail(plan, Syscall::kChdir, result);
  if (path[0] != '/') Fail(plan, Syscall::kChdir, -ELOOP);
}

PARAFORK_CHILD_CODE void BuildSandbox(ChildPlan* plan) {
  const SandboxPlan& sandbox = plan->sandbox;
  if (sandbox.oom_score_adj != nullptr) SetOomScoreAdjust(plan);
  // A session of its own, with no controlling terminal: the agent's (an operator's shell, for
  // `parafork run`) would let the task inject input with TIOCSTI or read it (setsid(2),
  // credentials(7)). The task's init leads the session; the task is its child, in a process group
  // of its own inside it (parafork_init.c). A new child is never a group leader, so this cannot fail.
  long session = RawSyscall(SYS_setsid);
  if (session < 0) Fail(plan, Syscall::kIdentity, session);
  if (sandbox.network_namespace_fd >= 0) {
    long result = RawSyscall(SYS_setns, sandbox.network_namespace_fd, CLONE_NEWNET);
    if (result < 0) Fail(plan, Syscall::kNetwork, result);
  }
  if (sandbox.bring_loopback_up) BringLoopbackUp(plan);
  if (sandbox.hostname != nullptr) {
    long result = RawSyscall(SYS_sethostname, Address(sandbox.hostname), static_cast<long>(sandbox.hostname_length));
    if (result < 0) Fail(plan, Syscall::kIdentity, result);
  }
  if (sandbox.mount_namespace_fd >= 0) {
    JoinFilesystemTemplate(plan);
  } else if (sandbox.build_filesystem) {
    BuildFilesystem(plan);
  }
  for (size_t index = 0; index < sandbox.limit_count; ++index) {
    const ResourceLimit& limit = sandbox.limits[index];
    const uint64_t values[2] = {limit.soft, limit.hard};
    long result = RawSyscall(SYS_prlimit64, 0, limit.resource, Address(values), 0);
    if (result < 0) Fail(plan, Syscall::kResourceLimit, result);
  }
  if (sandbox.own_session_keyring) JoinOwnSessionKeyring(plan);
  if (sandbox.user_namespace) EnterUserNamespace(plan);
  EmptyCapabilityBounds(plan);
  // The filter is compiled at its attach, and its machine code counted against the node's
  // net.core.bpf_jit_limit, which the node's other tenants (a container under Docker's profile,
  // any local user) can fill with socket and seccomp filters of their own; past it only a holder
  // of CAP_BPF or CAP_SYS_ADMIN (in the node's user namespace) is let past (kernel/bpf/core.c,
  // bpf_jit_charge_modmem), and with CONFIG_BPF_JIT_ALWAYS_ON every later attach failed: no task
  // could start (red team, session 14). So the filters whose rules are ours, the default one and
  // Unconfined's guard, are attached here, while the child still holds CAP_SYS_ADMIN, and judge
  // the child's own last calls: the default one allows each of them (seccomp_policy_test.cc,
  // AllowsTheChildsOwnCallsAfterItsAttach), the guard all but RLIMIT_CORE. A custom profile too
  // when its compile found that it allows them all; else it comes last (sandbox_preparation.cc).
  // Every call from here to the execveat is listed in seccomp_attach_point.cc, kChildCalls: a
  // call added, moved here or given other constant arguments goes there too (red team, session 15).
  if (sandbox.seccomp_while_privileged) AttachFilter(plan);
  TakeTaskIdentity(plan);
  if (sandbox.empty_user_keyrings) EmptyUserKeyrings(plan);
  EnterWorkingDirectory(plan);
}

// The executable the init helper will run, looked up inside the sandbox as the task's own user
// would: a missing or non-executable command fails the spawn here, with its errno, rather than
// later as an exit status of init. X_OK alone passes a directory (search permission), which
// execve then refuses with EACCES (execve(2)), so the candidate must also be a regular file.
PARAFORK_CHILD_CODE const char* FindExecutable(ChildPlan* plan) {
  long result = -ENOENT;
  bool saw_permission_error = false;
  for (const char* const* path = plan->exec_paths; *path != nullptr; ++path) {
    result = RawSyscall(SYS_faccessat, AT_FDCWD, Address(*path), X_OK);
    if (result == 0) {
      struct statx status;
      result = RawSyscall(SYS_statx, AT_FDCWD, Address(*path), 0, STATX_TYPE, Address(&status));
      if (result == 0 && S_ISREG(status.stx_mode)) return *path;
      if (result == 0) result = -EACCES;
    }
    if (result == -EACCES) saw_permission_error = true;
  }
  Fail(plan, Syscall::kExecve, saw_permission_error ? -EACCES : result);
}

}  // namespace

__attribute__((no_sanitize("address", "undefined", "thread"))) int RunChild(void* opaque_plan) {
  ChildPlan* plan = static_cast<ChildPlan*>(opaque_plan);
  if (plan->unshare_fds_below > 0) {
    // First: until now the fd table is the agent's (CLONE_FILES), and nothing here may touch it.
    long result = RawSyscall(SYS_close_range, plan->unshare_fds_below, static_cast<long>(~0U), CLOSE_RANGE_UNSHARE);
    if (result < 0) Fail(plan, Syscall::kCloseRange, result);
  }
  // Signals stay blocked (the spawn thread blocks them all) until the dispositions are reset.
  ResetSignalDispositions(plan);
  if (plan->sandbox.enabled) ResetInheritedAttributes(plan);
  PlaceStdio(plan);
  if (plan->cgroup_procs_fd >= 0) {
    long result = RawSyscall(SYS_write, plan->cgroup_procs_fd, reinterpret_cast<long>("0"), 1);
    if (result < 0) Fail(plan, Syscall::kCgroupAttach, result);
  }
  // cgroup v1 has no CLONE_INTO_CGROUP: join each controller's cgroup here, before any task code.
  for (size_t index = 0; index < plan->cgroup_v1_count; ++index) {
    long result = RawSyscall(SYS_write, plan->cgroup_v1_procs_fds[index], reinterpret_cast<long>("0"), 1);
    if (result < 0) Fail(plan, Syscall::kCgroupAttach, result);
  }
  if (plan->sandbox.enabled) {
    // A cgroup namespace rooted where the task now is, in every hierarchy: made at the clone, it
    // would be rooted at the agent's cgroups for those joined above, and /proc/self/cgroup would
    // show the agent's group and the task's cgroup name (cgroup_namespaces(7)).
    long result = RawSyscall(SYS_unshare, CLONE_NEWCGROUP);
    if (result < 0) Fail(plan, Syscall::kCgroupNamespace, result);
    BuildSandbox(plan);
  } else if (plan->cwd != nullptr) {
    long result = RawSyscall(SYS_chdir, reinterpret_cast<long>(plan->cwd));
    if (result < 0) Fail(plan, Syscall::kChdir, result);
  }
  CloseInheritedFdsOnExec(plan);
  PlaceResultFile(plan);
  // The task starts with no signal blocked, whatever mask the spawn thread had. A sandboxed task's
  // init instead starts with every signal blocked (the mask survives exec): the kernel drops a
  // signal sent to a namespace's init that neither handles nor blocks it, so a SIGTERM arriving
  // between exec and init's own setup would otherwise be lost. Blocked, it waits for init.
  const unsigned long empty_mask = 0;
  const unsigned long full_mask = ~0ul;
  const unsigned long* mask = plan->sandbox.enabled ? &full_mask : &empty_mask;
  long result = RawSyscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(mask), 0, sizeof(empty_mask));
  if (result < 0) Fail(plan, Syscall::kSigprocmask, result);
  if (!plan->sandbox.enabled) Exec(plan);

  plan->sandbox.init_argv[1] = const_cast<char*>(FindExecutable(plan));
  // A custom profile that refuses (or logs, traces, kills) one of the calls above, last: from here
  // on only what it allows works, execveat among them.
  if (plan->sandbox.seccomp != nullptr && !plan->sandbox.seccomp_while_privileged) AttachFilter(plan);
  result = RawSyscall(SYS_execveat, plan->sandbox.init_fd, Address(""), Address(plan->sandbox.init_argv),
                      Address(plan->envp), AT_EMPTY_PATH);
  Fail(plan, Syscall::kExecve, result);
}

}  // namespace parafork
