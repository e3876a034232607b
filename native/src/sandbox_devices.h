// The minimal /dev every sandboxed task gets: the character devices programs expect and the links
// into /proc/self/fd. Used by the per-task filesystem (spawner.cc) and the shared filesystem
// template (sandbox_resources.cc). No terminal of any kind (tty, console, ptmx, pts): a task has
// no controlling terminal (child.cc starts it in a session of its own), and /dev/tty is the
// caller's controlling terminal, which a task must never reach (issue 12, finding 1).
#pragma once

namespace parafork {

struct SandboxDevice {
  const char* name;
  unsigned int major;
  unsigned int minor;
};

struct SandboxDeviceLink {
  const char* name;
  const char* target;
};

inline constexpr SandboxDevice kSandboxDevices[] = {
    {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}};

inline constexpr SandboxDeviceLink kSandboxDeviceLinks[] = {
    {"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"}};

}  // namespace parafork
