// The fds a child joins its cgroups through, opened before the clone: the v2 directory for
// clone3's CLONE_INTO_CGROUP (atomic: the child starts inside it), or its cgroup.procs for the
// clone(2) path, whose child writes "0" there before exec; and each cgroup v1 directory's
// `tasks` file (hybrid hosts), written the same way (see Open in cgroup_join.cc for why `tasks`
// and not cgroup.procs). For a request with cgroupSetup the
// directories and limit files are made first (cgroup_state_cache.h), and the fds its caller keeps
// for a reused cgroup are used instead of opening the files again.
#pragma once

#include <vector>

#include "cgroup_state_cache.h"
#include "spawn_failure.h"
#include "spawn_request.h"
#include "unique_fd.h"

namespace parafork {

struct PreparedCgroups {
  int cgroup_fd = -1;  // the v2 directory (clone3) or its cgroup.procs (clone); -1: no v2 cgroup
  UniqueFd cgroup_owned;  // cgroup_fd when opened here (not the request's kept one)
  std::vector<UniqueFd> v1_owned;
  std::vector<int> v1_fds;  // the v1 `tasks` fds, opened here or the request's kept ones, as the array the child reads
  bool kept = false;  // some fd above is the request's kept one (SpawnRequest::cgroup_join_fd)

  // Makes (with `cache`, when the request asks) and opens the request's cgroups. Call with the
  // fd-creation side of the lock held (xor_lock.h).
  SpawnFailure Prepare(const SpawnRequest& request, CgroupStateCache& cache, bool use_clone3);
  // After the clone: the child has joined (or failed to).
  void Close();

 private:
  int Open(const SpawnRequest& request, bool use_clone3);
};

}  // namespace parafork
