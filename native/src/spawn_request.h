// A spawn request as a plain struct (the "baton"): unpacked from JavaScript values on the JS thread,
// then worked on by a spawn thread that never touches JavaScript.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "sandbox_masks.h"
#include "seccomp_attach_point.h"
#include "seccomp_policy.h"

namespace parafork {

enum class OutputMode : uint8_t {
  kIgnore = 0,      // /dev/null
  kPipe = 1,        // a pipe whose read end JavaScript wraps in a Readable stream
  kFile = 2,        // a file, created or truncated
  kFileAppend = 3,  // a file, created or appended to
  kLog = 4,         // a pipe whose read end the log pump writes into a capped log (log_pump.h)
};

struct OutputTarget {
  OutputMode mode = OutputMode::kIgnore;
  std::string path;  // for kFile, kFileAppend and kLog
  uint64_t log_max_bytes = 0;  // for kLog
  // For kLog: the file is made at the first byte the task writes, and a log the task writes nothing
  // to leaves no file (log_file.h). Task arrays ask for it: 100,000 /bin/true indexes, no files.
  bool log_create_when_written = false;

  bool IsFile() const { return mode == OutputMode::kFile || mode == OutputMode::kFileAppend; }
};

struct MountRequest {
  std::string host_path;
  std::string mount_path;  // inside the task's root
  bool read_only = true;
  // Non-empty: host_path is opened beneath this directory (openat2(2) RESOLVE_BENEATH) when the
  // spawn is prepared, and that fd is what is mounted: no link or swapped directory leads out.
  std::string beneath;
};

enum class NetworkMode : uint8_t { kNone = 0, kLoopback = 1, kHost = 2 };

// The sandbox as the request asks for it (TypeScript fills in every default).
struct SandboxRequest {
  bool enabled = false;
  NetworkMode network = NetworkMode::kNone;
  std::string rootfs = "/";
  std::string rootfs_beneath;  // as MountRequest::beneath, for the root
  bool read_only_root = true;
  uint64_t tmp_size_bytes = 0;  // 0: no private /tmp
  std::vector<MountRequest> mounts;
  // Paths masked in the task's root and /proc (sandbox_masks.h); shared by the requests that
  // carry the same list. Never null in a sandboxed request.
  std::shared_ptr<const MaskedPaths> masked_paths;
  bool filesystem = true;  // false: no filesystem step (the sandbox benchmark's "+namespaces" row only)
  std::string working_directory = "/";
  uint32_t uid = 65534;  // inside the user namespace when there is one
  uint32_t gid = 65534;
  // User-namespace mode: ids 0..size-1 inside are host ids host_id..host_id+size-1.
  bool user_namespace = false;
  uint32_t user_namespace_host_id = 0;
  uint32_t user_namespace_size = 0;
  std::string hostname;
  bool seccomp = true;
  SeccompProgram seccomp_program;  // a compiled custom profile; empty: the default policy
  // Where the child attaches `seccomp_program` (seccomp_attach_point.h), as judged when it was
  // compiled; kLast for the default policy, which is attached while privileged anyway.
  SeccompAttachPoint seccomp_program_attach_point = SeccompAttachPoint::kLast;
  uint64_t max_open_files = 1024;
  uint64_t max_file_size_bytes = 0;  // 0: unlimited
  // RLIMIT_NPROC, counted per uid (so a per-task limit needs a uid of its own); 0: inherited.
  // Never with uid 0 outside a user namespace: the kernel does not hold root to it (fork(2)).
  uint64_t max_processes = 0;
  // `uid` is this task's alone while it runs (leased to it): what an earlier holder left in the
  // uid's keyrings is emptied at the start (user_keyrings.h). Never uid 0 outside a user namespace.
  bool own_uid = false;
  // The task's oom_score_adj as the child writes it ("-1000" to "1000"); empty: the agent's.
  std::string oom_score_adj;
};

// One cgroup limit file (memory.max, pids.max, ...) the spawn thread writes before the clone.
struct CgroupFileWrite {
  std::string path;       // inside `cgroup` or one of `cgroups_v1`
  std::string value;
  std::string read_back;  // not empty: skip the write when the file already reads this
  bool may_fail = false;  // a refused write is ignored (a later entry makes the same setting)
};

struct SpawnRequest {
  uint64_t id = 0;
  std::string file;                 // the executable as the caller named it
  std::string search_path;          // PATH to search when `file` has no slash; empty: no search
  std::vector<std::string> argv;    // argv[0] included
  // "NAME=value" entries, the whole environment; shared by the requests that inherit the agent's.
  std::shared_ptr<const std::vector<std::string>> env;
  std::string cwd;                  // empty: inherit the agent's working directory
  OutputTarget stdout_target;
  OutputTarget stderr_target;
  // A result file (issue 15): an anonymous memory file (memfd_create(2)) the child gets as fd 3 and
  // whose other fd the spawned event hands to JavaScript, to read once the child has exited. Its
  // pages are charged to the memory cgroup of whoever writes them (the task), never to a disk.
  bool result_file = false;
  std::string cgroup;               // empty: the agent's own cgroup
  std::vector<std::string> cgroups_v1;  // cgroup v1 directories to join before exec (hybrid hosts)
  // Per-task cgroups made here rather than on the JS thread: the spawn thread makes `cgroup` and
  // `cgroups_v1` (mkdir; an existing one is kept) and writes `cgroup_files` before the clone.
  bool create_cgroups = false;
  std::vector<CgroupFileWrite> cgroup_files;
  // With create_cgroups: fds the caller keeps open for a reused cgroup's joins (its pool keeps
  // them with the cgroup, src/sandbox/cgroup-manager.ts), so that the spawn thread does not open
  // them again at every spawn (a path walk and a kernfs open each, ~4-5 us): `cgroup`'s directory
  // (O_PATH, for CLONE_INTO_CGROUP; -1: open it here) and each of `cgroups_v1`'s `tasks` files
  // (empty, or one per directory). Borrowed, never closed here. An fd whose cgroup was removed
  // behind the caller's back fails the join (ENOENT, ENODEV): the spawn is then made again with
  // the paths (Spawner::SpawnOne).
  int cgroup_join_fd = -1;
  std::vector<int> cgroups_v1_join_fds;
  SandboxRequest sandbox;
  uint64_t enqueued_ns = 0;         // CLOCK_MONOTONIC when JavaScript handed it over
};

}  // namespace parafork
