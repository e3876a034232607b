// The child's stdout and stderr, opened before the clone: /dev/null, a pipe whose read end
// JavaScript wraps in a stream (or, for a log, the log pump reads), or a file (truncated or appended to). Every fd is close-on-exec and
// above 2 (the child dup3s them onto 1 and 2). The parent closes its copies of the child's ends
// once the clone returns, so a pipe reads EOF when the child and whatever it passed them to are done.
#pragma once

#include "spawn_failure.h"
#include "spawn_request.h"
#include "unique_fd.h"

namespace parafork {

// One output stream: the fd the child gets (owned here unless it is the shared /dev/null), and
// for a pipe the end JavaScript reads.
struct PreparedOutput {
  int child_fd = -1;
  UniqueFd owned_child_end;
  UniqueFd parent_end;
};

struct PreparedStdio {
  PreparedOutput stdout_output;
  PreparedOutput stderr_output;
  // The result file (SpawnRequest::result_file), else empty: the child places a copy at fd 3, and
  // this fd goes to JavaScript with the spawned event.
  UniqueFd result_file;

  // Opens both streams; `dev_null` is the spawner's shared /dev/null. Call with the fd-creation
  // side of the lock held (xor_lock.h).
  SpawnFailure Prepare(const SpawnRequest& request, int dev_null);
  // After the clone: the child holds its own copies now.
  void CloseChildEnds();
};

}  // namespace parafork
