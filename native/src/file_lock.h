// Exclusive flock(2) locks for the agent's ownership claims (src/launcher/file-lock.ts): a task
// cgroup group, a block of task ids. Node has no flock. A flock belongs to the open file
// description, so the kernel drops it when the holder's last descriptor closes, which includes
// the holder dying however it dies; and it works across containers that see the same inode.
#pragma once

#include <napi.h>

namespace parafork {

// tryLockExclusive(fd): true once this process holds the lock, false if another open file
// description holds it (EWOULDBLOCK); any other failure throws an Error with code, errno and
// syscall 'flock'. Never waits.
Napi::Value TryLockExclusiveBinding(const Napi::CallbackInfo& info);

}  // namespace parafork
