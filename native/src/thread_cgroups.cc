// See thread_cgroups.h.
#include "thread_cgroups.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "unique_fd.h"

namespace parafork {

int MoveCallingThread(const std::vector<ThreadCgroup>& cgroups, bool home) {
  int first_error = 0;
  for (const ThreadCgroup& cgroup : cgroups) {
    // `tasks`, not cgroup.procs: that would move the whole agent, its JavaScript thread too.
    UniqueFd tasks(open(((home ? cgroup.home : cgroup.directory) + "/tasks").c_str(), O_WRONLY | O_CLOEXEC));
    const bool moved = tasks && write(tasks.get(), "0", 1) == 1;
    if (!moved && first_error == 0) first_error = errno;
  }
  return first_error;
}

ScopedThreadCgroupsHome::ScopedThreadCgroupsHome(const std::vector<ThreadCgroup>* cgroups)
    : cgroups_(cgroups != nullptr && !cgroups->empty() ? cgroups : nullptr) {
  if (cgroups_ != nullptr) MoveCallingThread(*cgroups_, /*home=*/true);
}

ScopedThreadCgroupsHome::~ScopedThreadCgroupsHome() {
  // Best effort, as the thread's start: a directory gone leaves the thread at home, and its
  // children then join the task's cgroups as they name them.
  if (cgroups_ != nullptr) MoveCallingThread(*cgroups_, /*home=*/false);
}

}  // namespace parafork
