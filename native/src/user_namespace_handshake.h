// The parent's side of user-namespace mode (child.cc: EnterUserNamespace). The child says "ready"
// on one pipe once it has its new user namespace; the spawn thread writes its id maps, which only a
// process with CAP_SETUID in the parent namespace may (user_namespaces(7)), and says "go" on the
// other. Then the ready pipe reads EOF once the child has exec'd or exited (its end is
// close-on-exec). Without CLONE_VFORK in this mode the child runs beside its spawn thread, so the
// thread waits for the exec here.
#pragma once

#include <sys/types.h>

#include "child.h"
#include "spawn_request.h"
#include "unique_fd.h"

namespace parafork {

struct UserNamespaceHandshake {
  UniqueFd parent_ready, child_ready, child_go, parent_go;

  // The two pipes; call with the fd-creation side of the lock held (xor_lock.h). 0 or an errno.
  int Open();
  // Points the child's plan at its ends (and the parent's, which the child closes first).
  void Describe(const SandboxRequest& sandbox, SandboxPlan& plan) const;
  // 0, or the errno that kept the maps from being written (the child then fails its spawn).
  int MapAndWaitForExec(pid_t pid, const SandboxRequest& sandbox);
};

}  // namespace parafork
