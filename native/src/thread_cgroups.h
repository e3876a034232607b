// cgroup v1 directories the sandbox lane's spawn threads run in (SpawnerOptions), so that every
// sandboxed child is born there: clone(2) places a child in its cloning thread's cgroups, and the
// child need not write that directory's `tasks` file before its exec (~0.03-0.05 ms of kernel time
// an index: docs/benchmarks.md, Task arrays). cgroup v1 moves single threads ("0" written to
// `tasks` moves the writing thread: cgroup-v1/cgroups.rst), so the agent's other threads stay
// where they are; v2 does not (threaded mode aside), and needs none of this: CLONE_INTO_CGROUP
// places a child in every v2 controller at once.
#pragma once

#include <string>
#include <vector>

namespace parafork {

struct ThreadCgroup {
  std::string directory;
  std::string home;  // where the thread goes back to: where it was started (the agent's own)
};

// The calling thread into each directory (home: false) or back into each home; 0 or the first
// errno (the rest are still tried). A pids cgroup never refuses a thread moved in, full or not
// (pids_can_attach charges past pids.max); a clone there is refused at pids.max (pids_can_fork).
int MoveCallingThread(const std::vector<ThreadCgroup>& cgroups, bool home);

// For the helper threads a spawn thread makes (the network namespace pool's, a filesystem
// template's maker): the calling thread goes home for the scope, so that a thread made meanwhile
// starts where the agent runs, not counted against the Tasks' pids budget (a full one would refuse
// it, and std::thread throw) nor scheduled among the Tasks; and back into its cgroups after.
class ScopedThreadCgroupsHome {
 public:
  explicit ScopedThreadCgroupsHome(const std::vector<ThreadCgroup>* cgroups);
  ScopedThreadCgroupsHome(const ScopedThreadCgroupsHome&) = delete;
  ScopedThreadCgroupsHome& operator=(const ScopedThreadCgroupsHome&) = delete;
  ~ScopedThreadCgroupsHome();

 private:
  const std::vector<ThreadCgroup>* cgroups_;
};

}  // namespace parafork
