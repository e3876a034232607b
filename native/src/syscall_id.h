// The points a spawn can fail at, as small numbers that travel in event batches and in the child's
// failure slot, and the one table that says what each is: the system call as the error names it
// (Node's `syscall`) and the step of the spawn it belongs to (SpawnError.step). JavaScript reads
// the table through the binding's `failurePoints` (errors.cc); nothing else names them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iterator>

namespace parafork {

enum class Syscall : uint8_t {
  kNone = 0,
  kClone3,
  kClone,
  kPipe2,
  kOpen,
  kDup2,
  kChdir,
  kCloseRange,
  kExecve,
  kSigprocmask,
  kCgroupAttach,
  kMount,
  kPivotRoot,
  kNetwork,
  kIdentity,
  kResourceLimit,
  kSeccomp,
  kCgroupCreate,
  kUserNamespace,
  kUserNamespacePipe,
  kInitHelper,
  kOpenBeneath,
  kCgroupNamespace,
  kMemfdCreate,
  kOomScoreAdjust,
  kKeyrings,
  kInheritedAttributes,
  kCount,
};

// The step of a spawn a failure belongs to: which of the caller's options (or which of the host's
// facilities) to look at. Documented for users on SpawnStep (src/native/binding.ts) and in
// docs/library.md.
enum class SpawnStep : uint8_t {
  kExec,        // the program: finding and executing it, and its working directory
  kStdio,       // the child's stdout/stderr: output files opened, pipes made, fds placed
  kCgroup,      // the cgroup(s) the child starts in: made, or joined
  kFilesystem,  // a sandbox's filesystem: its root, mounts, /proc, /dev, /tmp and masks
  kSandbox,     // the rest of a sandbox: namespaces, network, identity, rlimits, seccomp, its init
  kClone,       // making the process itself, and the child's own setup (signal mask, fds)
};

constexpr const char* SpawnStepName(SpawnStep step) {
  switch (step) {  // no default: -Wswitch (an error here) names a step left out
    case SpawnStep::kExec:
      return "exec";
    case SpawnStep::kStdio:
      return "stdio";
    case SpawnStep::kCgroup:
      return "cgroup";
    case SpawnStep::kFilesystem:
      return "filesystem";
    case SpawnStep::kSandbox:
      return "sandbox";
    case SpawnStep::kClone:
      return "clone";
  }
  return "";
}

struct FailurePoint {
  Syscall id;
  // As the error's `syscall` names it: the system call, or what a group of them does ("mount",
  // "identity", "cgroup.procs"). Two points may share a name and differ in their step.
  const char* syscall;
  SpawnStep step;
  // What the failed call was doing, for the error's message ("the task's network namespace").
  const char* what;
};

inline constexpr FailurePoint kFailurePoints[] = {
    // Never reported (every failure names its point); read as the spawn itself, as Node's 'spawn'.
    {.id = Syscall::kNone, .syscall = "spawn", .step = SpawnStep::kClone, .what = "the spawn"},
    {.id = Syscall::kClone3, .syscall = "clone3", .step = SpawnStep::kClone, .what = "making the process"},
    {.id = Syscall::kClone, .syscall = "clone", .step = SpawnStep::kClone, .what = "making the process"},
    {.id = Syscall::kPipe2, .syscall = "pipe2", .step = SpawnStep::kStdio, .what = "the stdout/stderr pipes"},
    {.id = Syscall::kOpen, .syscall = "open", .step = SpawnStep::kStdio, .what = "an output file"},
    {.id = Syscall::kDup2, .syscall = "dup2", .step = SpawnStep::kStdio, .what = "placing stdout/stderr"},
    // Inside the sandbox for a sandboxed child.
    {.id = Syscall::kChdir, .syscall = "chdir", .step = SpawnStep::kExec, .what = "the working directory"},
    {.id = Syscall::kCloseRange, .syscall = "close_range", .step = SpawnStep::kClone,
     .what = "marking inherited fds close-on-exec"},
    // The PATH search and the sandbox's own lookup are part of it.
    {.id = Syscall::kExecve, .syscall = "execve", .step = SpawnStep::kExec, .what = "the executable"},
    {.id = Syscall::kSigprocmask, .syscall = "rt_sigprocmask", .step = SpawnStep::kClone,
     .what = "the child's signal mask"},
    // Opening a cgroup.procs (for clone3, the cgroup directory), or writing it.
    {.id = Syscall::kCgroupAttach, .syscall = "cgroup.procs", .step = SpawnStep::kCgroup, .what = "joining the cgroup"},
    // The root, the mounts, /proc, /dev, /tmp and the masks.
    {.id = Syscall::kMount, .syscall = "mount", .step = SpawnStep::kFilesystem, .what = "the sandbox's filesystem"},
    {.id = Syscall::kPivotRoot, .syscall = "pivot_root", .step = SpawnStep::kFilesystem,
     .what = "entering the sandbox's root"},
    {.id = Syscall::kNetwork, .syscall = "network", .step = SpawnStep::kSandbox,
     .what = "the task's network namespace"},
    // setsid, sethostname, the capability drops, setgroups, setresgid, setresuid.
    {.id = Syscall::kIdentity, .syscall = "identity", .step = SpawnStep::kSandbox,
     .what = "the task's session, hostname, capabilities and ids"},
    {.id = Syscall::kResourceLimit, .syscall = "prlimit", .step = SpawnStep::kSandbox, .what = "the task's rlimits"},
    {.id = Syscall::kSeccomp, .syscall = "seccomp", .step = SpawnStep::kSandbox, .what = "the seccomp filter"},
    // The agent's cgroupSetup (src/launcher/spawn-options.ts): made on the spawn thread.
    {.id = Syscall::kCgroupCreate, .syscall = "cgroup.create", .step = SpawnStep::kCgroup,
     .what = "making the cgroups and writing their limits"},
    {.id = Syscall::kUserNamespace, .syscall = "user_namespace", .step = SpawnStep::kSandbox,
     .what = "the task's user namespace and its id maps"},
    {.id = Syscall::kUserNamespacePipe, .syscall = "pipe2", .step = SpawnStep::kSandbox,
     .what = "the user namespace handshake pipes"},
    // Opened once, on first use; or not built at all.
    {.id = Syscall::kInitHelper, .syscall = "open", .step = SpawnStep::kSandbox,
     .what = "the sandbox's init helper parafork-init (built beside the addon)"},
    // openat2(2) of a host path beneath the allowed directory it was admitted under (spawner.cc:
    // OpenBeneath); EXDEV there means a link swapped in after the policy check.
    {.id = Syscall::kOpenBeneath, .syscall = "openat2", .step = SpawnStep::kFilesystem,
     .what = "a host path beneath its allowed directory"},
    // unshare(CLONE_NEWCGROUP) in the child, once it has joined its cgroups (child.cc).
    {.id = Syscall::kCgroupNamespace, .syscall = "unshare", .step = SpawnStep::kSandbox,
     .what = "the task's cgroup namespace"},
    // The task's result file (SpawnRequest::result_file): an anonymous memory file.
    {.id = Syscall::kMemfdCreate, .syscall = "memfd_create", .step = SpawnStep::kStdio, .what = "the result file"},
    // /proc/self/oom_score_adj, opened and written in the child (child.cc, BuildSandbox).
    {.id = Syscall::kOomScoreAdjust, .syscall = "oom_score_adj", .step = SpawnStep::kSandbox,
     .what = "the task's oom_score_adj"},
    // keyctl(KEYCTL_CLEAR) of the task uid's own keyrings in the child (child.cc, EmptyUserKeyrings):
    // EACCES when an earlier task of that uid took write permission on them away.
    {.id = Syscall::kKeyrings, .syscall = "keyctl", .step = SpawnStep::kSandbox,
     .what = "emptying the task uid's keyrings of what an earlier task of that uid left"},
    // sched_setattr(2), ioprio_set(2) and personality(2) of the child's own (child.cc, ResetInheritedAttributes).
    {.id = Syscall::kInheritedAttributes, .syscall = "inherited_attributes", .step = SpawnStep::kSandbox,
     .what = "resetting the CPU and I/O priority and personality the task would inherit from the agent to an ordinary process's"},
};

constexpr bool ListsEveryPointInOrder() {
  if (std::size(kFailurePoints) != static_cast<size_t>(Syscall::kCount)) return false;
  for (size_t index = 0; index < std::size(kFailurePoints); ++index) {
    if (static_cast<size_t>(kFailurePoints[index].id) != index) return false;
  }
  return true;
}
static_assert(ListsEveryPointInOrder(), "kFailurePoints lists every Syscall once, in the enum's order");

}  // namespace parafork
