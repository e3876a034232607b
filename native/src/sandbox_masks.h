// What a sandboxed task does not see of its root and its /proc (issue 12, findings 6 and 7), as OCI
// runtimes mask /proc paths (runc's maskedPaths and readonlyPaths).
//
// Masked paths: a directory becomes an empty read-only directory, any other file an empty read-only
// file (reads give nothing, opens for writing EROFS); a path absent from the task's view is
// skipped. The list comes with each request (src/launcher/sandbox-options.ts has the default);
// paths under /proc are masked in every task's fresh /proc, the others in its root.
// Read-only /proc paths: the kernel's global knobs (sysctls, sysrq, interrupts, buses,
// filesystems), read-only in every task's /proc, whatever its user; a fixed list.
//
// How: each task's filesystem holds a "mask directory", a small read-only tmpfs mounted where the
// task's /proc is then mounted over it, so the task cannot reach it. It has an empty file and an
// empty directory, whose bind mounts are the masks; in the shared template
// (sandbox_resources.h) also, under read-only/, read-only binds of each global knob taken once from
// a /proc of the template's own, so a task makes each knob read-only with one bind mount (sysctls
// resolve against the namespaces of whoever opens them, not those of the /proc they sit in).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "child.h"

namespace parafork {

// Names inside the mask directory.
inline constexpr char kMaskFileName[] = "file";
inline constexpr char kMaskDirectoryName[] = "directory";
inline constexpr char kReadOnlyDirectoryName[] = "read-only";

// /etc/hosts, when masked, shows a file of its own rather than an empty one: the node's often
// names the node (127.0.1.1 <hostname>), and programs expect localhost there.
inline constexpr char kHostsPath[] = "/etc/hosts";
inline constexpr char kMaskHostsName[] = "hosts";
inline constexpr char kMaskHostsContent[] = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n";

// The /proc entries every task sees read-only (runc's readonlyPaths, and pressure: any user may
// register a PSI trigger on the node's pressure by writing there, an unaccounted kernel object
// that the node's averaging work then evaluates every 2 s, up to a trigger per open file; red
// team, sandbox-mount-flags.test.ts).
inline constexpr const char* kReadOnlyProcNames[] = {"bus", "fs", "irq", "pressure", "sys", "sysrq-trigger"};

// At most this many masked paths per request, each shorter than PATH_MAX: a list of 256 (the
// most TypeScript takes) and those added for the host paths a task's mounts bring in.
inline constexpr size_t kMaxMaskedPaths = 4096;

// A request's masked paths, as JavaScript hands them over: one string, a path per line (one
// N-API string per spawn rather than dozens). Parsed once per distinct list (MaskedPathsCache).
struct MaskedPaths {
  std::string joined;
  std::vector<std::string> paths;
};

// Why `path` cannot be masked ("" when it can): it must be absolute and normalized (no empty, "."
// or ".." component, no trailing slash), and not /, /proc, /dev or /tmp, nor under /dev or /tmp
// (the task's own, made fresh for it).
std::string MaskedPathProblem(const std::string& path);

// True when `inner` lies strictly below the directory `outer` ("/run/x" below "/run").
bool IsBelow(const std::string& inner, const std::string& outer);

// The same list parsed once: a JS thread caches the last list it saw, as most requests repeat it.
class MaskedPathsCache {
 public:
  // The parsed list, or null with the problem in `problem`.
  std::shared_ptr<const MaskedPaths> Parse(const std::string& joined, std::string* problem);

 private:
  std::shared_ptr<const MaskedPaths> last_;
};

// What a child needs for one list of masked paths, worked out once per list by the spawn thread
// (SandboxResources::Masks): which read-only and masked /proc entries this kernel has, and of
// which kind, and the binds ready for the plan. Non-copyable: the plan arrays point into its strings.
struct MaskLayout {
  MaskLayout() = default;
  MaskLayout(const MaskLayout&) = delete;
  MaskLayout& operator=(const MaskLayout&) = delete;

  std::vector<std::string> read_only_names;      // of kReadOnlyProcNames, those this kernel has
  std::vector<std::string> proc_read_only;       // "/proc/sys", ...
  std::vector<std::string> read_only_sources;    // "read-only/sys", ... (in the template's mask directory)
  std::vector<std::string> proc_masks;           // masked /proc paths this kernel has
  std::vector<bool> proc_mask_is_directory;
  std::vector<std::string> root_masks;           // the other masked paths, in order

  // For the plan. Template path: read-only binds then masks, all from the mask directory.
  std::vector<MaskMount> template_proc_mounts;
  // Per-task path: the read-only paths (bound onto themselves), then the masks.
  std::vector<const char*> proc_read_only_targets;
  std::vector<MaskMount> proc_mask_mounts;
};

// Fills `layout` for `paths`, looking up the /proc entries in `proc` (the agent's /proc: global
// entries are the same in every /proc, and a runtime's masks over them keep their kind).
void BuildMaskLayout(const std::vector<std::string>& paths, const std::string& proc, MaskLayout* layout);

}  // namespace parafork
