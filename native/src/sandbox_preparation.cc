// See sandbox_preparation.h.
#include "sandbox_preparation.h"

#include <linux/sched.h>
#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <cerrno>

#include "user_keyrings.h"

namespace parafork {

namespace {

// RLIMIT_MEMLOCK of every sandboxed task, at most (PrepareIdentity).
constexpr uint64_t kTaskLockedMemoryBytes = 64 * 1024;

void PrepareNetwork(const SandboxRequest& sandbox, SandboxResources& resources, SandboxStorage& storage,
                    SandboxPlan& plan, uint64_t* clone_flags) {
  switch (sandbox.network) {
    case NetworkMode::kNone: {
      // A namespace of the task's own (issue 12): from the pool, or made by the clone when a burst
      // has emptied it. Host uid 0 may write its namespace's net sysctls even without capabilities
      // (procfs checks the uid), which the pool does not read: that namespace is not reused.
      const bool may_write_net_sysctls = !sandbox.user_namespace && sandbox.uid == 0;
      storage.network_namespace = resources.network_namespaces().Lease(/*reusable=*/!may_write_net_sysctls);
      if (storage.network_namespace) {
        plan.network_namespace_fd = storage.network_namespace.fd();
      } else {
        *clone_flags |= CLONE_NEWNET;
        storage.adopt_network_namespace = !may_write_net_sysctls;
      }
      break;
    }
    case NetworkMode::kLoopback:
      *clone_flags |= CLONE_NEWNET;
      plan.bring_loopback_up = true;
      break;
    case NetworkMode::kHost:
      break;
  }
}

// The usual case: the shared template has the root, /dev and the masks; the task adds /proc (with
// the knobs and masks bound over it) and /tmp.
SpawnFailure PrepareFromTemplate(const SandboxRequest& sandbox, const SandboxSetting& setting, const MaskLayout& masks,
                                 SandboxStorage& storage, SandboxPlan& plan) {
  int template_fd = -1;
  Syscall failed = Syscall::kNone;
  if (int error_number = setting.resources->FilesystemTemplate(sandbox.rootfs, sandbox.read_only_root,
                                                               *sandbox.masked_paths, *setting.staging_directory,
                                                               &template_fd, &storage.filesystem_template, &failed);
      error_number != 0) {
    return {error_number, failed};
  }
  plan.mount_namespace_fd = template_fd;
  plan.proc_path = "/proc";
  plan.proc_mounts = masks.template_proc_mounts.data();
  plan.proc_mount_count = masks.template_proc_mounts.size();
  if (sandbox.tmp_size_bytes > 0) {
    plan.tmp_path = "/tmp";
    plan.tmp_options = storage.tmp_options.c_str();
  }
  return {};
}

// The minimal /dev the child makes under the staging root (sandbox_devices.h).
void PrepareDevices(SandboxStorage& storage, SandboxPlan& plan) {
  for (size_t index = 0; index < std::size(kSandboxDevices); ++index) {
    storage.device_paths[index] = storage.dev_path + "/" + kSandboxDevices[index].name;
    storage.device_nodes[index] = {storage.device_paths[index].c_str(), kSandboxDevices[index].major,
                                   kSandboxDevices[index].minor};
  }
  plan.device_nodes = storage.device_nodes;
  plan.device_node_count = std::size(kSandboxDevices);
  for (size_t index = 0; index < std::size(kSandboxDeviceLinks); ++index) {
    storage.link_paths[index] = storage.dev_path + "/" + kSandboxDeviceLinks[index].name;
    storage.links[index] = {storage.link_paths[index].c_str(), kSandboxDeviceLinks[index].target};
  }
  plan.device_links = storage.links;
  plan.device_link_count = std::size(kSandboxDeviceLinks);
}

// `path` relative to `directory`, which it is or lies below (engine.cc checks): "." for itself.
std::string RelativeTo(const std::string& directory, const std::string& path) {
  return path == directory ? "." : path.substr(directory.size() + 1);
}

// The task's bind mounts and the masks of its root and /proc.
void PrepareMountsAndMasks(const SandboxRequest& sandbox, const std::string& staging, const MaskLayout& masks,
                           SandboxStorage& storage, SandboxPlan& plan) {
  storage.mount_targets.reserve(sandbox.mounts.size());
  for (const MountRequest& mount : sandbox.mounts) {
    storage.mount_targets.push_back(staging + mount.mount_path);
    SandboxMount planned{mount.host_path.c_str(), storage.mount_targets.back().c_str(), mount.read_only};
    if (!mount.beneath.empty()) {
      storage.relatives.push_back(RelativeTo(mount.beneath, mount.host_path));
      planned.beneath = mount.beneath.c_str();
      planned.relative = storage.relatives.back().c_str();
    }
    storage.mounts.push_back(planned);
  }
  plan.mounts = storage.mounts.data();
  plan.mount_count = storage.mounts.size();
  plan.proc_read_only = masks.proc_read_only_targets.data();
  plan.proc_read_only_count = masks.proc_read_only_targets.size();
  plan.proc_mounts = masks.proc_mask_mounts.data();
  plan.proc_mount_count = masks.proc_mask_mounts.size();
  // A path the task mounts something on is the task's choice: that mask is left out. (A mount
  // strictly inside a masked directory is refused before this: engine.cc.)
  for (const std::string& path : masks.root_masks) {
    bool mounted_on = false;
    for (const MountRequest& mount : sandbox.mounts) mounted_on = mounted_on || mount.mount_path == path;
    if (!mounted_on) storage.root_masks.push_back(path.c_str());
  }
  plan.root_masks = storage.root_masks.data();
  plan.root_mask_count = storage.root_masks.size();
}

// A root of the task's own (it has bind mounts, or no filesystem step at all): the child binds
// `rootfs` onto the staging directory in a new mount namespace, fills it and pivots into it.
void PrepareOwnFilesystem(const SandboxRequest& sandbox, const SandboxSetting& setting, const MaskLayout& masks,
                          SandboxStorage& storage, SandboxPlan& plan, uint64_t* clone_flags) {
  const std::string& staging = *setting.staging_directory;
  *clone_flags |= CLONE_NEWNS;
  plan.build_filesystem = sandbox.filesystem;
  plan.rootfs = sandbox.rootfs.c_str();
  // Pointers into `relatives` stay valid: reserved for the root and every mount at once.
  storage.relatives.reserve(sandbox.mounts.size() + 1);
  if (!sandbox.rootfs_beneath.empty()) {
    storage.relatives.push_back(RelativeTo(sandbox.rootfs_beneath, sandbox.rootfs));
    plan.rootfs_beneath = sandbox.rootfs_beneath.c_str();
    plan.rootfs_relative = storage.relatives.back().c_str();
  }
  plan.staging = staging.c_str();
  plan.read_only_root = sandbox.read_only_root;
  storage.proc_path = staging + "/proc";
  storage.dev_path = staging + "/dev";
  plan.proc_path = storage.proc_path.c_str();
  plan.dev_path = storage.dev_path.c_str();
  PrepareDevices(storage, plan);
  if (sandbox.tmp_size_bytes > 0) {
    storage.tmp_path = staging + "/tmp";
    plan.tmp_path = storage.tmp_path.c_str();
    plan.tmp_options = storage.tmp_options.c_str();
  }
  plan.mount_setattr = setting.mount_setattr;
  PrepareMountsAndMasks(sandbox, staging, masks, storage, plan);
}

// The rest of the plan, whichever way the filesystem is made: rlimits, ids, seccomp, init.
void PrepareIdentity(const SandboxRequest& sandbox, SandboxResources& resources, const std::vector<char*>& argv,
                     SandboxStorage& storage, SandboxPlan& plan) {
  size_t limits = 0;
  // No core dump of task memory on the node: 1, not 0, because for a pipe in kernel.core_pattern the
  // kernel ignores the limit and starts the node's crash handler as root, except at exactly 1, its
  // guard against a crashing handler (fs/coredump.c, coredump_pipe()); for a file pattern 1 is below
  // a page and writes nothing. The seccomp filter keeps the task from lowering it to 0, whichever
  // it has: the default one (seccomp_policy.cc, kFixedResourceLimit), a custom profile (guarded at
  // its compile) or Unconfined's guard alone (below); sandbox-crash-handler.test.ts.
  storage.limits[limits++] = {RLIMIT_CORE, 1, 1};
  storage.limits[limits++] = {RLIMIT_NOFILE, sandbox.max_open_files, sandbox.max_open_files};
  if (sandbox.max_file_size_bytes > 0) {
    storage.limits[limits++] = {RLIMIT_FSIZE, sandbox.max_file_size_bytes, sandbox.max_file_size_bytes};
  }
  // Set while the child is still root (exempt), checked by fork/clone against the task's uid once
  // TakeTaskIdentity (child.cc) has switched to it: the kernel counts that uid's processes and threads
  // (setrlimit(2) RLIMIT_NPROC; per user namespace since Linux 5.14).
  if (sandbox.max_processes > 0) {
    storage.limits[limits++] = {RLIMIT_NPROC, sandbox.max_processes, sandbox.max_processes};
  }
  // No real-time policy and no nice value below the agent's (sched(7), setpriority(2)): these two
  // limits give both without any capability, and an agent started with them raised (a unit's
  // LimitRTPRIO=, a runtime's ulimits) handed them to every task, whose SCHED_FIFO loops would run
  // ahead of the whole node (sandbox-scheduling-limits.test.ts). Looked at per spawn (a getrlimit
  // on this thread) so the child makes the call only where the agent's are not 0 already.
  for (int resource : {RLIMIT_RTPRIO, RLIMIT_NICE}) {
    struct rlimit agent_limit = {};
    if (getrlimit(resource, &agent_limit) != 0 || agent_limit.rlim_cur != 0 || agent_limit.rlim_max != 0) {
      storage.limits[limits++] = {resource, 0, 0};
    }
  }
  // Locked memory: mlock(2) of a file mapping pins the node's cached pages of that file, charged to
  // whichever cgroup read them first and reclaimable by no one while locked; RLIMIT_MEMLOCK is the
  // only bound, per process. The agent's (8 MiB, the kernel's default since 5.16) let a default
  // task lock 8 MiB of the node's cache in each of its processes, 104 MiB with 13 (red team,
  // session 13, sandbox-locked-memory.test.ts). 64 KiB, the kernel's default before 5.16, or the
  // agent's where lower; what the task locks of its own memory is charged to it anyway.
  struct rlimit agent_locked = {RLIM_INFINITY, RLIM_INFINITY};
  if (getrlimit(RLIMIT_MEMLOCK, &agent_locked) != 0) agent_locked = {RLIM_INFINITY, RLIM_INFINITY};
  if (agent_locked.rlim_cur > kTaskLockedMemoryBytes || agent_locked.rlim_max > kTaskLockedMemoryBytes) {
    storage.limits[limits++] = {RLIMIT_MEMLOCK, std::min<uint64_t>(agent_locked.rlim_cur, kTaskLockedMemoryBytes),
                                std::min<uint64_t>(agent_locked.rlim_max, kTaskLockedMemoryBytes)};
  }
  plan.limits = storage.limits;
  plan.limit_count = limits;
  if (!sandbox.oom_score_adj.empty()) {
    plan.oom_score_adj = sandbox.oom_score_adj.c_str();
    plan.oom_score_adj_length = sandbox.oom_score_adj.size();
  }
  plan.uid = sandbox.uid;
  plan.gid = sandbox.gid;
  // A custom profile (seccomp_profile.h) arrives compiled in the request; else the default policy.
  // Unconfined still keeps RLIMIT_CORE (ResourceLimitGuardPrefix in seccomp_policy.h).
  plan.seccomp = !sandbox.seccomp                    ? resources.resource_limit_guard()
                 : sandbox.seccomp_program.empty() ? resources.default_seccomp()
                                                   : &sandbox.seccomp_program.program;
  // The default filter refuses keyctl, add_key and request_key: the agent's session keyring is out
  // of reach, and a keyring of the task's own would cost every spawn ~5 us (child.cc). So does a
  // filter the agent runs under itself, whatever the task's (in the chart's Pod: the spawn failed
  // with its EPERM until the agent asked first, test/node/security-in-pod.test.ts).
  plan.own_session_keyring = plan.seccomp != resources.default_seccomp() && resources.keyrings_reachable();
  // Only such a task can read its uid's keyrings, so only it needs them emptied of an earlier
  // holder's keys; and only when the uid owns keys at all (a read of /proc/key-users here):
  // looking a user keyring up creates it for good (user_keyrings.h).
  plan.empty_user_keyrings = plan.own_session_keyring && sandbox.own_uid && !sandbox.user_namespace &&
                             sandbox.uid != 0 && UidMayHoldKeys(sandbox.uid);
  // Ours (the default policy, Unconfined's guard) attached while the child holds CAP_SYS_ADMIN, so
  // the node's JIT budget, full or not, never stops a spawn (child.cc, BuildSandbox); they allow
  // the child's last calls (seccomp_policy_test.cc). A custom profile too when its compile found
  // that it allows them all (seccomp_attach_point.h): its rules may refuse setresuid, capset,
  // chdir..., or the keyctl calls of a spawn that empties the uid's keyrings, and then it comes
  // last. Never in user-namespace mode, where the child has given up the node's capabilities for
  // its namespace's by then (capable() asks the node's user namespace).
  const SeccompAttachPoint attach_point = plan.seccomp == &sandbox.seccomp_program.program
                                              ? sandbox.seccomp_program_attach_point
                                              : SeccompAttachPoint::kPrivileged;
  plan.seccomp_while_privileged =
      plan.seccomp != nullptr && AttachesWhilePrivileged(attach_point, plan.empty_user_keyrings, sandbox.user_namespace);
  plan.init_fd = resources.init_fd();
  // parafork-init FILE ARGV0 ARGS...: slot 1 is filled in by the child once it has found FILE.
  storage.init_argv.push_back(storage.init_name.data());
  storage.init_argv.push_back(nullptr);
  for (char* argument : argv) storage.init_argv.push_back(argument);  // argv ends with its nullptr
  plan.init_argv = storage.init_argv.data();
}

}  // namespace

SpawnFailure PrepareSandbox(const SpawnRequest& request, const SandboxSetting& setting,
                            const std::vector<char*>& argv, SandboxStorage& storage, SandboxPlan& plan,
                            uint64_t* clone_flags) {
  SandboxResources* resources = setting.resources;
  if (resources == nullptr || setting.staging_directory == nullptr || setting.staging_directory->empty()) {
    return {ENOTSUP, Syscall::kInitHelper};
  }
  Syscall failed = Syscall::kNone;
  if (int error_number = resources->Prepare(&failed); error_number != 0) return {error_number, failed};
  const SandboxRequest& sandbox = request.sandbox;
  plan.enabled = true;
  // No CLONE_NEWCGROUP: the child makes its cgroup namespace once it has joined its cgroups
  // (child.cc), or the namespace's root would be the agent's cgroup wherever the join comes after
  // the clone (cgroup v1, the clone(2) path).
  *clone_flags |= CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS;
  PrepareNetwork(sandbox, *resources, storage, plan, clone_flags);
  if (!sandbox.hostname.empty()) {
    plan.hostname = sandbox.hostname.c_str();
    plan.hostname_length = sandbox.hostname.size();
  }
  plan.working_directory = sandbox.working_directory.c_str();
  if (sandbox.tmp_size_bytes > 0) storage.tmp_options = "mode=1777,size=" + std::to_string(sandbox.tmp_size_bytes);
  const MaskLayout& masks = resources->Masks(*sandbox.masked_paths);
  // The shared template is made once per rootfs by name: a root opened beneath a directory is not.
  if (sandbox.filesystem && sandbox.mounts.empty() && sandbox.rootfs_beneath.empty()) {
    if (SpawnFailure failure = PrepareFromTemplate(sandbox, setting, masks, storage, plan)) return failure;
  } else {
    PrepareOwnFilesystem(sandbox, setting, masks, storage, plan, clone_flags);
  }
  PrepareIdentity(sandbox, *resources, argv, storage, plan);
  return {};
}

}  // namespace parafork
