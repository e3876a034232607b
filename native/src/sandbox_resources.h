// What every sandboxed spawn shares, made once, on first use (so a launcher that never sandboxes
// needs no privileges): an O_PATH fd of the parafork-init helper (exec'd by fd, so it need not
// exist inside the task's root), the pool of empty network namespaces that tasks with network
// "none" lease one each (network_namespace_pool.h), and the default seccomp program; and, per task
// root, a filesystem template (see FilesystemTemplate).
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>

#include "network_namespace_pool.h"
#include "sandbox_masks.h"
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
  NetworkNamespacePool& network_namespaces() { return network_namespaces_; }
  const sock_fprog* default_seccomp() const { return &seccomp_.program; }
  // An Unconfined task's filter: RLIMIT_CORE kept, nothing else (seccomp_policy.h).
  const sock_fprog* resource_limit_guard() const { return &resource_limit_guard_.program; }
  // Whether this process may call keyctl(2) at all. A seccomp filter the agent itself runs under
  // (a container's: the chart's profile, like Docker's and containerd's defaults, refuses keyctl)
  // binds every task it starts too, and cannot be lifted: their keyrings are then out of reach
  // whatever the task's own filter says, and no task needs a session keyring of its own
  // (JoinOwnSessionKeyring in child.cc, which would fail with the filter's EPERM).
  bool keyrings_reachable() const { return keyrings_reachable_; }

  // A mount namespace holding the task filesystem every task with this root shares: `rootfs`
  // bound on the staging directory (read-only if asked; nosuid and nodev), a minimal /dev
  // (read-only tmpfs: its device nodes stay usable), pivoted into, the agent's mounts detached;
  // then the mask directory on /proc and the root's masks (sandbox_masks.h). A task joins it with
  // setns, takes a private copy with unshare(CLONE_NEWNS) (a few dozen mounts to copy, not the
  // agent's), and mounts only its own /proc (with the knobs and masks bound over it) and /tmp:
  // ~0.1 ms less per spawn than binding, filling, remounting and pivoting per task. Made on first
  // use for each (rootfs, read-only, masked paths); any thread. 0 and the namespace fd in `fd`,
  // kept open for as long as `hold` is (the spawn's); else an errno, and the step that failed.
  //
  // Made again when its masks no longer hold, looked at before it is lent at most every
  // kMaskRecheckNs: the root's files are the node's, and the node replaces some by renaming a new
  // file over the old (hostnamectl, passwd), which detaches every mount on the old one in every
  // mount namespace, masks included, or creates a masked path that was absent (red team,
  // test/security/sandbox-masks-after-changes.test.ts: later tasks read both, unmasked).
  int FilesystemTemplate(const std::string& rootfs, bool read_only, const MaskedPaths& masked, const std::string& staging,
                         int* fd, std::shared_ptr<const void>* hold, Syscall* failed);

  // The /proc entries and root paths a list of masked paths comes to on this kernel, worked out
  // on first use of each list; any thread. The reference stays valid as long as this object.
  const MaskLayout& Masks(const MaskedPaths& masked);

 private:
  int PrepareLocked(Syscall* failed);

  const std::string init_path_;
  std::mutex mutex_;
  bool ready_ = false;
  int error_ = 0;
  Syscall failed_ = Syscall::kNone;
  UniqueFd init_fd_;
  NetworkNamespacePool network_namespaces_;
  SeccompProgram seccomp_;
  SeccompProgram resource_limit_guard_;
  bool keyrings_reachable_ = true;
  // How often a template's masks are looked at again (FilesystemTemplate): one openat2(2) and
  // fstat a masked path (~50 by default), at most ten times a second whatever the spawn rate.
  static constexpr uint64_t kMaskRecheckNs = 100'000'000;
  struct Template;
  std::mutex templates_mutex_;
  std::map<std::tuple<std::string, bool, std::string>, std::shared_ptr<Template>> templates_;  // (rootfs, read-only, masked paths)
  std::mutex masks_mutex_;
  std::map<std::string, std::unique_ptr<MaskLayout>> masks_;  // by MaskedPaths::joined
};

}  // namespace parafork
