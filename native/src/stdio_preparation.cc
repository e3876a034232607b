// See stdio_preparation.h.
#include "stdio_preparation.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

namespace parafork {

namespace {

int OpenOutputFile(const OutputTarget& target) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY |
                    (target.mode == OutputMode::kFileAppend ? O_APPEND : O_TRUNC);
  return KeepAboveStdio(open(target.path.c_str(), flags, 0644));
}

// 0 or an errno.
int PrepareOutput(const OutputTarget& target, int dev_null, PreparedOutput* output) {
  switch (target.mode) {
    case OutputMode::kIgnore:
      output->child_fd = dev_null;  // the child dup3s it onto 1 or 2; nothing to open or close here
      return 0;
    case OutputMode::kPipe:
    case OutputMode::kLog: {
      int ends[2];
      if (pipe2(ends, O_CLOEXEC) == -1) return errno;
      output->parent_end.reset(KeepAboveStdio(ends[0]));
      output->owned_child_end.reset(KeepAboveStdio(ends[1]));
      if (!output->parent_end) return errno;
      break;
    }
    case OutputMode::kFile:
    case OutputMode::kFileAppend:
      output->owned_child_end.reset(OpenOutputFile(target));
      break;
  }
  output->child_fd = output->owned_child_end.get();
  return output->owned_child_end ? 0 : errno;
}

SpawnFailure OutputFailure(const OutputTarget& target, int error_number) {
  return {error_number, target.IsFile() ? Syscall::kOpen : Syscall::kPipe2};
}

}  // namespace

SpawnFailure PreparedStdio::Prepare(const SpawnRequest& request, int dev_null) {
  if (request.result_file) {
    // memfd_create(2): nameless, on no mount the task could reach or fill, gone with its last fd.
    result_file.reset(KeepAboveStdio(memfd_create("parafork-result", MFD_CLOEXEC)));
    if (!result_file) return {errno, Syscall::kMemfdCreate};
  }
  if (int error_number = PrepareOutput(request.stdout_target, dev_null, &stdout_output); error_number != 0) {
    return OutputFailure(request.stdout_target, error_number);
  }
  const bool shares_stdout_file = request.stderr_target.IsFile() && request.stdout_target.IsFile() &&
                                  request.stderr_target.path == request.stdout_target.path;
  if (shares_stdout_file) {
    // One open file for both streams, so their writes interleave instead of overwriting.
    stderr_output.child_fd = stdout_output.child_fd;
    return {};
  }
  if (int error_number = PrepareOutput(request.stderr_target, dev_null, &stderr_output); error_number != 0) {
    return OutputFailure(request.stderr_target, error_number);
  }
  return {};
}

void PreparedStdio::CloseChildEnds() {
  stdout_output.owned_child_end.reset();
  stderr_output.owned_child_end.reset();
}

}  // namespace parafork
