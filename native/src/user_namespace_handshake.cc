// See user_namespace_handshake.h.
#include "user_namespace_handshake.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace parafork {

namespace {

int WriteMap(pid_t pid, const char* file, const std::string& map) {
  UniqueFd fd(open(("/proc/" + std::to_string(pid) + "/" + file).c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return errno;
  if (write(fd.get(), map.data(), map.size()) != static_cast<ssize_t>(map.size())) return errno != 0 ? errno : EIO;
  return 0;
}

}  // namespace

int UserNamespaceHandshake::Open() {
  int ready[2];
  int go[2];
  if (pipe2(ready, O_CLOEXEC) == -1) return errno;
  parent_ready.reset(KeepAboveStdio(ready[0]));
  child_ready.reset(KeepAboveStdio(ready[1]));
  if (pipe2(go, O_CLOEXEC) == -1) return errno;
  child_go.reset(KeepAboveStdio(go[0]));
  parent_go.reset(KeepAboveStdio(go[1]));
  return parent_ready && child_ready && child_go && parent_go ? 0 : EMFILE;
}

void UserNamespaceHandshake::Describe(const SandboxRequest& sandbox, SandboxPlan& plan) const {
  plan.user_namespace = true;
  plan.user_namespace_ready_fd = child_ready.get();
  plan.user_namespace_go_fd = child_go.get();
  plan.user_namespace_parent_fds[0] = parent_ready.get();
  plan.user_namespace_parent_fds[1] = parent_go.get();
  plan.user_namespace_owner = sandbox.user_namespace_host_id;
}

int UserNamespaceHandshake::MapAndWaitForExec(pid_t pid, const SandboxRequest& sandbox) {
  child_ready.reset();  // the child holds its own copies
  child_go.reset();
  char byte = 0;
  ssize_t length;
  do {
    length = read(parent_ready.get(), &byte, 1);
  } while (length == -1 && errno == EINTR);
  int error_number = 0;
  if (length == 1) {
    const std::string map = "0 " + std::to_string(sandbox.user_namespace_host_id) + " " +
                            std::to_string(sandbox.user_namespace_size) + "\n";
    error_number = WriteMap(pid, "uid_map", map);
    if (error_number == 0) error_number = WriteMap(pid, "gid_map", map);
    if (error_number == 0 && write(parent_go.get(), "g", 1) != 1) error_number = errno;
  }
  parent_go.reset();  // no byte: the child fails with kUserNamespace and we report error_number
  do {
    length = read(parent_ready.get(), &byte, 1);
  } while (length > 0 || (length == -1 && errno == EINTR));
  return error_number;
}

}  // namespace parafork
