// What runs in the child between clone and exec. The child shares the parent's memory (CLONE_VM)
// and runs while its spawn thread is suspended (CLONE_VFORK), so it may only read the plan prepared
// before the clone and make raw, async-signal-safe system calls: no malloc, no locks, no stdio, no
// errno (it would be the parent thread's). See signal-safety(7) and clone(2).
#pragma once

#include <cstddef>
#include <cstdint>

#include "inherited_attributes.h"

struct sock_fprog;

namespace parafork {

struct SandboxMount {
  const char* source;  // host path
  const char* target;  // path under the staging root
  bool read_only;
  // Non-null: `source` is opened as `relative` beneath this directory (openat2(2) RESOLVE_BENEATH)
  // in the child's own mount namespace, and that open file is what is mounted (issue 14).
  const char* beneath = nullptr;
  const char* relative = nullptr;
};

struct DeviceNode {
  const char* path;  // under the staging root's /dev
  unsigned int major;
  unsigned int minor;
};

struct SymbolicLink {
  const char* path;    // under the staging root's /dev
  const char* target;
};

// A bind mount that masks `target` (or makes it read-only) with `source`, an entry of the mask
// directory (sandbox_masks.h) named relative to it: the child works from inside that directory.
struct MaskMount {
  const char* source;
  const char* target;
};

struct ResourceLimit {
  int resource;  // RLIMIT_*
  uint64_t soft;
  uint64_t hard;
};

// What the child builds before exec when the task is sandboxed; all strings prepared by the
// spawn thread. The namespaces themselves come from the clone flags.
struct SandboxPlan {
  bool enabled = false;
  int network_namespace_fd = -1;  // >= 0: join this (empty) network namespace: network "none"
  bool bring_loopback_up = false;  // network "loopback": own namespace, lo up
  const char* hostname = nullptr;
  size_t hostname_length = 0;
  // Filesystem, one of three ways: >= 0: join this prepared mount namespace (the task's root
  // already pivoted into; sandbox_resources.h), take a private copy, mount /proc and /tmp;
  // else `rootfs` is bind-mounted onto `staging`, filled, made read-only, and pivoted into; or,
  // for the sandbox benchmark only, `build_filesystem` false: no filesystem step at all.
  int mount_namespace_fd = -1;
  bool build_filesystem = true;
  const char* rootfs = nullptr;
  // Non-null: rootfs is opened as rootfs_relative beneath this directory, as SandboxMount::beneath.
  const char* rootfs_beneath = nullptr;
  const char* rootfs_relative = nullptr;
  const char* staging = nullptr;
  bool read_only_root = true;
  const char* proc_path = nullptr;
  const char* dev_path = nullptr;
  const char* tmp_path = nullptr;
  const char* tmp_options = nullptr;  // "mode=1777,size=..."
  const DeviceNode* device_nodes = nullptr;
  size_t device_node_count = 0;
  const SymbolicLink* device_links = nullptr;
  size_t device_link_count = 0;
  const SandboxMount* mounts = nullptr;
  size_t mount_count = 0;
  // Bind mounts are made with mount_setattr(2) (Linux 5.12): recursive, and read-only, nosuid
  // and nodev all the way down. Without it, each is bound alone (its submounts left out).
  bool mount_setattr = true;
  // The task's /proc and root masks (sandbox_masks.h). Template path: `proc_mounts` (read-only
  // binds and masks from the template's mask directory). Per-task path: `proc_read_only` bound
  // onto themselves and made read-only, then `proc_mounts`, then `root_masks` (their kind looked
  // up in the finished root, where the task's own links resolve).
  const MaskMount* proc_mounts = nullptr;
  size_t proc_mount_count = 0;
  const char* const* proc_read_only = nullptr;
  size_t proc_read_only_count = 0;
  const char* const* root_masks = nullptr;
  size_t root_mask_count = 0;
  const char* working_directory = nullptr;  // inside the new root; "/" when not given
  const ResourceLimit* limits = nullptr;
  size_t limit_count = 0;
  // The spawn thread's CPU and I/O priority and personality, which the clone copied, reset to an
  // ordinary process's before anything else (inherited_attributes.h): filled in by the spawn thread.
  InheritedAttributesReset inherited_reset;
  // Written to /proc/self/oom_score_adj while the child still has CAP_SYS_RESOURCE, which also
  // makes it the least the task may set (oom_score_adj_min, proc(5)); null: the agent's. Only a
  // CLONE_VFORK child: the kernel sets the score of every process sharing the memory of one that
  // is not (fs/proc/base.c, __set_oom_adj), the agent's with it.
  const char* oom_score_adj = nullptr;
  size_t oom_score_adj_length = 0;
  uint32_t uid = 65534;  // inside the user namespace when there is one
  uint32_t gid = 65534;
  // User-namespace mode: once the filesystem is built, unshare(CLONE_NEWUSER), write a byte to
  // `user_namespace_ready_fd`, and wait for one on `user_namespace_go_fd`: the parent (not
  // suspended: no CLONE_VFORK in this mode) has written the id maps by then.
  bool user_namespace = false;
  int user_namespace_ready_fd = -1;
  int user_namespace_go_fd = -1;
  int user_namespace_parent_fds[2] = {-1, -1};  // the parent's ends, which the child closes first
  uint32_t user_namespace_owner = 0;  // the host id that owns it: the first id of its range
  const sock_fprog* seccomp = nullptr;  // null: unconfined
  // Attach `seccomp` before the task's ids are taken, with CAP_SYS_ADMIN still held (so a full
  // net.core.bpf_jit_limit does not refuse it: child.cc, BuildSandbox); else last, before exec.
  bool seccomp_while_privileged = false;
  // A session keyring of the task's own (child.cc, JoinOwnSessionKeyring): for a filter that may
  // let keyctl(2) through, which the default one refuses.
  bool own_session_keyring = false;
  // Empty the task uid's user, user session and persistent keyrings once the child runs as it
  // (child.cc, EmptyUserKeyrings; user_keyrings.h): a leased uid whose earlier holder left keys.
  bool empty_user_keyrings = false;
  // The init (pid 1) helper, exec'd by fd: init_argv[1] is filled in by the child with the
  // executable it found inside the sandbox.
  int init_fd = -1;
  char** init_argv = nullptr;
};

// Where the task finds its result file (ChildPlan::result_fd).
inline constexpr int kResultFd = 3;

struct ChildPlan {
  const char* const* exec_paths = nullptr;  // candidates tried in order, null-terminated
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;                // null: inherit
  int stdio_fds[3] = {-1, -1, -1};          // parent fds (all > 2) placed at 0, 1, 2
  // Bit n: stdio fd n is the spawner's shared /dev/null, which a sandboxed task gets opened for it
  // instead (PlaceStdio in child.cc says why).
  uint8_t own_dev_null = 0;
  int result_fd = -1;                       // >= 0: placed at fd 3, kept open across exec (the result file)
  int cgroup_procs_fd = -1;                 // >= 0: join that cgroup by writing "0" (clone() path)
  const int* cgroup_v1_procs_fds = nullptr; // cgroup v1 `tasks` files to join the same way (cgroup_join.cc)
  size_t cgroup_v1_count = 0;
  bool close_range_cloexec = true;          // kernel has close_range(CLOSE_RANGE_CLOEXEC), 5.11+
  // > 0: cloned with CLONE_FILES; the child's first system call takes a table of its own with only
  // the fds below this (close_range CLOSE_RANGE_UNSHARE), where every fd above sits (child_fd_slots.h).
  int unshare_fds_below = 0;
  // CLONE_CLEAR_SIGHAND already reset every handler to SIG_DFL; only signals set to SIG_IGN (which
  // that flag leaves alone) remain, listed in `ignored_signals` (bit n-1 for signal n).
  bool handlers_cleared = false;
  uint64_t ignored_signals = 0;
  SandboxPlan sandbox;

  // Written by the child when a step fails, read by the parent once the vfork wait is over.
  volatile int failed_errno = 0;
  volatile uint8_t failed_syscall = 0;  // a parafork::Syscall
};

// The child's entry point for clone3/clone. Never returns: it execs or exits with status 127.
int RunChild(void* plan);

}  // namespace parafork
