// A sandboxed spawn's plan for the child (child.h: SandboxPlan) and the namespace clone flags,
// prepared on the spawn thread before the clone: the network namespace (leased from the pool, or
// made by the clone), the filesystem (the shared template, or the task's own root built by the
// child), rlimits, ids, seccomp and the init helper. The strings and arrays the plan points into
// live in a SandboxStorage that outlives the clone.
#pragma once

#include <cstdint>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "child.h"
#include "network_namespace_pool.h"
#include "sandbox_devices.h"
#include "sandbox_resources.h"
#include "spawn_failure.h"
#include "spawn_request.h"

namespace parafork {

// The strings and arrays a SandboxPlan points into, alive until the clone has returned.
struct SandboxStorage {
  SandboxStorage() = default;
  SandboxStorage(const SandboxStorage&) = delete;
  SandboxStorage& operator=(const SandboxStorage&) = delete;
  // The leased network namespace goes to the task's record once the task runs (moved out of
  // here). On every other way out no process is in it (none was cloned, or the failed child has
  // been reaped): back to the pool.
  ~SandboxStorage() { network_namespace.Return(); }

  std::string proc_path, dev_path, tmp_path, tmp_options;
  std::string device_paths[std::size(kSandboxDevices)];
  DeviceNode device_nodes[std::size(kSandboxDevices)];
  std::string link_paths[std::size(kSandboxDeviceLinks)];
  SymbolicLink links[std::size(kSandboxDeviceLinks)];
  std::vector<std::string> mount_targets;
  std::vector<SandboxMount> mounts;
  // The paths the child opens beneath a directory (SandboxMount::relative), relative to it.
  std::vector<std::string> relatives;
  std::vector<const char*> root_masks;
  ResourceLimit limits[7];
  std::string init_name = "parafork-init";
  std::vector<char*> init_argv;
  std::shared_ptr<const void> filesystem_template;  // keeps the template's namespace fd open (SandboxResources)
  NetworkNamespaceLease network_namespace;  // network "none", unless the pool had none idle:
  bool adopt_network_namespace = false;     // then the clone makes one, for the pool to adopt
};

// What a spawner lends every sandboxed spawn: the shared resources (null: sandboxed spawns fail
// with ENOTSUP), the empty directory each task's root is mounted on inside its own mount
// namespace, and whether the kernel has mount_setattr(2).
struct SandboxSetting {
  SandboxResources* resources = nullptr;
  const std::string* staging_directory = nullptr;
  bool mount_setattr = true;
};

// Fills `plan` and adds the namespace flags to `clone_flags`. `argv` is the task's argv with its
// terminating nullptr, which the init helper passes on.
SpawnFailure PrepareSandbox(const SpawnRequest& request, const SandboxSetting& setting,
                            const std::vector<char*>& argv, SandboxStorage& storage, SandboxPlan& plan,
                            uint64_t* clone_flags);

}  // namespace parafork
