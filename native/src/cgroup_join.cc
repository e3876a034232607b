// See cgroup_join.h.
#include "cgroup_join.h"

#include <fcntl.h>

#include <cerrno>

namespace parafork {

SpawnFailure PreparedCgroups::Prepare(const SpawnRequest& request, CgroupStateCache& cache, bool use_clone3) {
  if (!request.create_cgroups) {
    if (int error_number = Open(request, use_clone3); error_number != 0) return {error_number, Syscall::kCgroupAttach};
    return {};
  }
  int error_number = cache.Create(request, /*trusted=*/true);
  if (error_number == 0) error_number = Open(request, use_clone3);
  if (error_number == ENOENT) {
    // Removed behind the cache's back (a sweep, or a name used again): make it all anew.
    cache.Forget(request);
    Close();
    error_number = cache.Create(request, /*trusted=*/false);
    if (error_number == 0) error_number = Open(request, use_clone3);
  }
  if (error_number != 0) return {error_number, Syscall::kCgroupCreate};
  return {};
}

int PreparedCgroups::Open(const SpawnRequest& request, bool use_clone3) {
  // A kept fd spares the spawn thread a path walk and a kernfs open (and its close) per file:
  // ~20 us a spawn of a Task array's index (a v2 directory, three v1 `tasks` files).
  const bool keep_v2 = request.create_cgroups && use_clone3 && request.cgroup_join_fd >= 0;
  const bool keep_v1 = request.create_cgroups && request.cgroups_v1_join_fds.size() == request.cgroups_v1.size();
  if (keep_v2) {
    cgroup_fd = request.cgroup_join_fd;
    kept = true;
  } else if (!request.cgroup.empty()) {
    cgroup_owned.reset(use_clone3 ? open(request.cgroup.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)
                                  : open((request.cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
    if (!cgroup_owned) return errno;
    cgroup_owned.reset(KeepAboveStdio(cgroup_owned.release()));
    cgroup_fd = cgroup_owned.get();
  }
  if (keep_v1 && !request.cgroups_v1.empty()) {
    v1_fds = request.cgroups_v1_join_fds;
    kept = true;
    return 0;
  }
  // The child joins a v1 cgroup through its `tasks` file, not cgroup.procs: for a single-threaded
  // process (the child between clone and exec always is one) the two move the same thread, but a
  // write to cgroup.procs takes the kernel's global cgroup_threadgroup_rwsem for writing, which
  // stalls every fork, exec and exit on the host and waits for them, while "0" written to `tasks`
  // (the writing thread itself) is exempt from it ("If we migrate a single thread, we don't care
  // about threadgroup stability", cgroup_procs_write_start in kernel/cgroup/cgroup.c). Where a
  // kernel lacks that exemption, `tasks` takes the lock as cgroup.procs does. Measured on Linux
  // 6.18 (docs/benchmarks.md, Task arrays): a sandboxed spawn with a v1 memory limit 0.60 -> 0.39 ms.
  for (const std::string& directory : request.cgroups_v1) {
    UniqueFd procs(KeepAboveStdio(open((directory + "/tasks").c_str(), O_WRONLY | O_CLOEXEC)));
    if (!procs) return errno;
    v1_fds.push_back(procs.get());
    v1_owned.push_back(std::move(procs));
  }
  return 0;
}

void PreparedCgroups::Close() {
  cgroup_fd = -1;
  cgroup_owned.reset();
  kept = false;
  v1_fds.clear();
  v1_owned.clear();
}

}  // namespace parafork
