// See spawner.h.
#include "spawner.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <iterator>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>

#include "child.h"
#include "sandbox_devices.h"
#include "sandbox_masks.h"
#include "monotonic_clock.h"

extern "C" long parafork_clone3(struct clone_args* args, size_t size, int (*entry)(void*), void* argument);

namespace parafork {

namespace {

constexpr size_t kChildStackSize = 128 * 1024;  // the child uses a few KiB; see child.cc
constexpr size_t kGuardSize = 4096;

// The executables to try, as execvp(3) would: `file` itself when it names a path (has a slash)
// or no PATH was given, else each PATH entry joined with it. Empty entries are skipped rather
// than read as "the working directory", a classic way to run the wrong binary.
std::vector<std::string> ExecCandidates(const SpawnRequest& request) {
  std::vector<std::string> candidates;
  if (request.file.find('/') != std::string::npos || request.search_path.empty()) {
    candidates.push_back(request.file);
    return candidates;
  }
  std::string_view remaining(request.search_path);
  while (true) {
    const size_t colon = remaining.find(':');
    std::string_view directory = remaining.substr(0, colon);
    if (!directory.empty()) {
      std::string candidate(directory);
      if (candidate.back() != '/') candidate.push_back('/');
      candidate.append(request.file);
      candidates.push_back(std::move(candidate));
    }
    if (colon == std::string_view::npos) break;
    remaining.remove_prefix(colon + 1);
  }
  return candidates;
}

// execve(2) takes char* const[] but never writes through them.
std::vector<char*> PointerArray(const std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (const std::string& value : strings) pointers.push_back(const_cast<char*>(value.c_str()));
  pointers.push_back(nullptr);
  return pointers;
}

// Signals a task must never inherit as ignored even if the agent ignores them when the set was
// last read: Node ignores SIGPIPE, and a shell's nohup or `trap '' SIG` leaves these behind.
constexpr int kAlwaysResetSignals[] = {SIGPIPE, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD,
                                       SIGALRM, SIGXFSZ, SIGXCPU, SIGTTIN, SIGTTOU, SIGTSTP};

uint64_t SignalBit(int signal_number) { return 1ull << (signal_number - 1); }

uint64_t ReadIgnoredSignals() {
  uint64_t ignored = 0;
  for (int signal_number : kAlwaysResetSignals) ignored |= SignalBit(signal_number);
  for (int signal_number = 1; signal_number < 65; ++signal_number) {
    struct sigaction current = {};
    if (sigaction(signal_number, nullptr, &current) == 0 && current.sa_handler == SIG_IGN) {
      ignored |= SignalBit(signal_number);
    }
  }
  return ignored;
}

int OpenOutputFile(const OutputTarget& target) {
  const int flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY |
                    (target.mode == OutputMode::kFileAppend ? O_APPEND : O_TRUNC);
  return KeepAboveStdio(open(target.path.c_str(), flags, 0644));
}

// What one output stream needs: the fd the child gets (owned here unless it is the shared
// /dev/null), and for a pipe the end JavaScript reads.
struct PreparedOutput {
  int child_fd = -1;
  UniqueFd owned_child_end;
  UniqueFd parent_end;
};

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

// The task's cgroups, made on this thread rather than on the JS thread: cgroupfs mkdir and limit
// writes cost ~40-100 us each (cgroup_mutex, per-controller setup), more than the rest of a spawn.
// An existing directory is kept: src/sandbox reuses idle task cgroups, and then lists every limit
// file with the value it should read, so only what differs is written. 0 or an errno.
int WriteCgroupFile(const CgroupFileWrite& file) {
  UniqueFd fd(open(file.path.c_str(), (file.read_back.empty() ? O_WRONLY : O_RDWR) | O_CLOEXEC));
  if (!fd) return errno;
  if (!file.read_back.empty()) {
    char current[96];
    ssize_t length = pread(fd.get(), current, sizeof(current), 0);
    if (length < 0) return errno;
    while (length > 0 && (current[length - 1] == '\n' || current[length - 1] == ' ')) --length;
    if (std::string_view(current, static_cast<size_t>(length)) == file.read_back) return 0;
  }
  // cgroupfs takes a value in one write(2), or refuses it whole (EINVAL, EBUSY, ...).
  const ssize_t written = pwrite(fd.get(), file.value.data(), file.value.size(), 0);
  if (written < 0) return errno;
  return static_cast<size_t>(written) == file.value.size() ? 0 : EIO;
}

}  // namespace

namespace {

std::string DirectoryOf(const std::string& path) { return path.substr(0, path.rfind('/')); }

}  // namespace

void CgroupStateCache::Forget(const SpawnRequest& request) {
  std::lock_guard<std::mutex> guard(mutex_);
  directories_.erase(request.cgroup);
  for (const std::string& directory : request.cgroups_v1) directories_.erase(directory);
}

int CgroupStateCache::Create(const SpawnRequest& request, bool trusted) {
  auto make = [&](const std::string& directory) {
    {
      std::lock_guard<std::mutex> guard(mutex_);
      if (trusted && directories_.count(directory) > 0) return 0;
    }
    const bool made = mkdir(directory.c_str(), 0755) == 0;
    if (!made && errno != EEXIST) return errno;
    std::lock_guard<std::mutex> guard(mutex_);
    if (directories_.size() >= kMaxDirectories) directories_.clear();
    // A new directory holds the kernel's defaults; one found existing holds what it holds. Either
    // way, what was remembered for that name is not to be trusted.
    directories_[directory].clear();
    return 0;
  };
  if (!request.cgroup.empty()) {
    if (int error_number = make(request.cgroup); error_number != 0) return error_number;
  }
  for (const std::string& directory : request.cgroups_v1) {
    if (int error_number = make(directory); error_number != 0) return error_number;
  }
  for (const CgroupFileWrite& file : request.cgroup_files) {
    const std::string directory = DirectoryOf(file.path);
    if (trusted && !file.read_back.empty()) {
      std::lock_guard<std::mutex> guard(mutex_);
      auto known_directory = directories_.find(directory);
      if (known_directory != directories_.end()) {
        auto known = known_directory->second.find(file.path);
        if (known != known_directory->second.end() && known->second == file.read_back) continue;
      }
    }
    int error_number = WriteCgroupFile(file);
    std::lock_guard<std::mutex> guard(mutex_);
    auto known_directory = directories_.find(directory);
    if (error_number == 0) {
      if (known_directory != directories_.end()) {
        known_directory->second[file.path] = file.read_back.empty() ? file.value : file.read_back;
      }
    } else {
      if (known_directory != directories_.end()) known_directory->second.erase(file.path);
      if (!file.may_fail) return error_number;
    }
  }
  return 0;
}

namespace {


// The strings and arrays a SandboxPlan points into, alive until the clone has returned.
struct SandboxStorage {
  std::string proc_path, dev_path, tmp_path, tmp_options;
  std::string device_paths[std::size(kSandboxDevices)];
  DeviceNode device_nodes[std::size(kSandboxDevices)];
  std::string link_paths[std::size(kSandboxDeviceLinks)];
  SymbolicLink links[std::size(kSandboxDeviceLinks)];
  std::vector<std::string> mount_targets;
  std::vector<SandboxMount> mounts;
  std::vector<const char*> root_masks;
  ResourceLimit limits[4];
  std::string init_name = "parafork-init";
  std::vector<char*> init_argv;
  NetworkNamespaceLease network_namespace;  // network "none", unless the pool had none idle:
  bool adopt_network_namespace = false;     // then the clone makes one, for the pool to adopt
};

// The parent's side of user-namespace mode (child.cc: EnterUserNamespace). The child says "ready"
// on one pipe once it has its new user namespace; we write its id maps, which only a process
// with CAP_SETUID in the parent namespace may (user_namespaces(7)), and say "go" on the other.
// Then the ready pipe reads EOF once the child has exec'd or exited (its end is close-on-exec).
struct UserNamespaceHandshake {
  UniqueFd parent_ready, child_ready, child_go, parent_go;

  int Open() {
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

  static int WriteMap(pid_t pid, const char* file, const std::string& map) {
    UniqueFd fd(open(("/proc/" + std::to_string(pid) + "/" + file).c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd) return errno;
    if (write(fd.get(), map.data(), map.size()) != static_cast<ssize_t>(map.size())) return errno != 0 ? errno : EIO;
    return 0;
  }

  // 0, or the errno that kept the maps from being written (the child then fails its spawn).
  int MapAndWaitForExec(pid_t pid, const SandboxRequest& sandbox) {
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
};

int PrepareIdentity(const SpawnRequest& request, SandboxResources* resources, std::vector<char*>& argv,
                    SandboxStorage& storage, SandboxPlan& plan);

// Fills `plan` (and the clone flags) for a sandboxed request; 0 or an errno with the failed step.
int PrepareSandbox(const SpawnRequest& request, const SpawnerOptions& options, std::vector<char*>& argv,
                   SandboxStorage& storage, SandboxPlan& plan, uint64_t* clone_flags, Syscall* failed) {
  SandboxResources* resources = options.sandbox_resources;
  if (resources == nullptr || options.staging_directory.empty()) {
    *failed = Syscall::kNone;
    return ENOTSUP;
  }
  if (int error_number = resources->Prepare(failed); error_number != 0) return error_number;
  const SandboxRequest& sandbox = request.sandbox;
  const std::string& staging = options.staging_directory;
  plan.enabled = true;
  *clone_flags |= CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
  switch (sandbox.network) {
    case NetworkMode::kNone: {
      // A namespace of the task's own (issue 12): from the pool, or made by the clone when a burst
      // has emptied it. Host uid 0 may write its namespace's net sysctls even without capabilities
      // (procfs checks the uid), which the pool does not read: that namespace is not reused.
      const bool may_write_net_sysctls = !sandbox.user_namespace && sandbox.uid == 0;
      storage.network_namespace = resources->network_namespaces().Lease(/*reusable=*/!may_write_net_sysctls);
      if (storage.network_namespace) {
        plan.network_namespace_fd = storage.network_namespace.fd();
      } else {
        *clone_flags |= CLONE_NEWNET;
        storage.adopt_network_namespace = !may_write_net_sysctls;
      }
      break;
    }
    case NetworkMode::kLoopback:
      *clone_flags |= CLONE_NEWNET;
      plan.bring_loopback_up = true;
      break;
    case NetworkMode::kHost:
      break;
  }
  if (!sandbox.hostname.empty()) {
    plan.hostname = sandbox.hostname.c_str();
    plan.hostname_length = sandbox.hostname.size();
  }
  plan.working_directory = sandbox.working_directory.c_str();
  if (sandbox.tmp_size_bytes > 0) storage.tmp_options = "mode=1777,size=" + std::to_string(sandbox.tmp_size_bytes);
  const MaskedPaths& masked = *sandbox.masked_paths;
  const MaskLayout& masks = resources->Masks(masked);
  if (sandbox.filesystem && sandbox.mounts.empty()) {
    // The usual case: the shared template has the root, /dev and the masks; the task adds /proc
    // (with the knobs and masks bound over it) and /tmp.
    int template_fd = -1;
    if (int error_number =
            resources->FilesystemTemplate(sandbox.rootfs, sandbox.read_only_root, masked, staging, &template_fd, failed);
        error_number != 0) {
      return error_number;
    }
    plan.mount_namespace_fd = template_fd;
    plan.proc_path = "/proc";
    plan.proc_mounts = masks.template_proc_mounts.data();
    plan.proc_mount_count = masks.template_proc_mounts.size();
    if (sandbox.tmp_size_bytes > 0) {
      plan.tmp_path = "/tmp";
      plan.tmp_options = storage.tmp_options.c_str();
    }
    return PrepareIdentity(request, resources, argv, storage, plan);
  }
  *clone_flags |= CLONE_NEWNS;
  plan.build_filesystem = sandbox.filesystem;
  plan.rootfs = sandbox.rootfs.c_str();
  plan.staging = staging.c_str();
  plan.read_only_root = sandbox.read_only_root;
  storage.proc_path = staging + "/proc";
  storage.dev_path = staging + "/dev";
  plan.proc_path = storage.proc_path.c_str();
  plan.dev_path = storage.dev_path.c_str();
  for (size_t index = 0; index < std::size(kSandboxDevices); ++index) {
    storage.device_paths[index] = storage.dev_path + "/" + kSandboxDevices[index].name;
    storage.device_nodes[index] = {storage.device_paths[index].c_str(), kSandboxDevices[index].major, kSandboxDevices[index].minor};
  }
  plan.device_nodes = storage.device_nodes;
  plan.device_node_count = std::size(kSandboxDevices);
  for (size_t index = 0; index < std::size(kSandboxDeviceLinks); ++index) {
    storage.link_paths[index] = storage.dev_path + "/" + kSandboxDeviceLinks[index].name;
    storage.links[index] = {storage.link_paths[index].c_str(), kSandboxDeviceLinks[index].target};
  }
  plan.device_links = storage.links;
  plan.device_link_count = std::size(kSandboxDeviceLinks);
  if (sandbox.tmp_size_bytes > 0) {
    storage.tmp_path = staging + "/tmp";
    plan.tmp_path = storage.tmp_path.c_str();
    plan.tmp_options = storage.tmp_options.c_str();
  }
  storage.mount_targets.reserve(sandbox.mounts.size());
  for (const MountRequest& mount : sandbox.mounts) {
    storage.mount_targets.push_back(staging + mount.mount_path);
    storage.mounts.push_back({mount.host_path.c_str(), storage.mount_targets.back().c_str(), mount.read_only});
  }
  plan.mounts = storage.mounts.data();
  plan.mount_count = storage.mounts.size();
  plan.mount_setattr = options.mount_setattr;
  plan.proc_read_only = masks.proc_read_only_targets.data();
  plan.proc_read_only_count = masks.proc_read_only_targets.size();
  plan.proc_mounts = masks.proc_mask_mounts.data();
  plan.proc_mount_count = masks.proc_mask_mounts.size();
  // A path the task mounts something on is the task's choice: that mask is left out. (A mount
  // strictly inside a masked directory is refused before this: engine.cc.)
  for (const std::string& path : masks.root_masks) {
    bool mounted_on = false;
    for (const MountRequest& mount : sandbox.mounts) mounted_on = mounted_on || mount.mount_path == path;
    if (!mounted_on) storage.root_masks.push_back(path.c_str());
  }
  plan.root_masks = storage.root_masks.data();
  plan.root_mask_count = storage.root_masks.size();
  return PrepareIdentity(request, resources, argv, storage, plan);
}

// The rest of the plan, whichever way the filesystem is made: rlimits, ids, seccomp, init.
int PrepareIdentity(const SpawnRequest& request, SandboxResources* resources, std::vector<char*>& argv,
                    SandboxStorage& storage, SandboxPlan& plan) {
  const SandboxRequest& sandbox = request.sandbox;
  size_t limits = 0;
  storage.limits[limits++] = {RLIMIT_CORE, 0, 0};  // no core dumps of task memory on the node
  storage.limits[limits++] = {RLIMIT_NOFILE, sandbox.max_open_files, sandbox.max_open_files};
  if (sandbox.max_file_size_bytes > 0) {
    storage.limits[limits++] = {RLIMIT_FSIZE, sandbox.max_file_size_bytes, sandbox.max_file_size_bytes};
  }
  // Set while the child is still root (exempt), checked by fork/clone against the task's uid once
  // DropPrivileges has switched to it: the kernel counts that uid's processes and threads
  // (setrlimit(2) RLIMIT_NPROC; per user namespace since Linux 5.14).
  if (sandbox.max_processes > 0) {
    storage.limits[limits++] = {RLIMIT_NPROC, sandbox.max_processes, sandbox.max_processes};
  }
  plan.limits = storage.limits;
  plan.limit_count = limits;
  plan.uid = sandbox.uid;
  plan.gid = sandbox.gid;
  // A custom profile (seccomp_profile.h) arrives compiled in the request; else the default policy.
  plan.seccomp = !sandbox.seccomp                    ? nullptr
                 : sandbox.seccomp_program.empty() ? resources->default_seccomp()
                                                   : &sandbox.seccomp_program.program;
  plan.init_fd = resources->init_fd();
  // parafork-init FILE ARGV0 ARGS...: slot 1 is filled in by the child once it has found FILE.
  storage.init_argv.push_back(storage.init_name.data());
  storage.init_argv.push_back(nullptr);
  for (char* argument : argv) storage.init_argv.push_back(argument);  // argv ends with its nullptr
  plan.init_argv = storage.init_argv.data();
  return 0;
}

}  // namespace

Spawner::Spawner(SpawnerOptions options, ChildTable& children, Reaper& reaper, EventBatcher& events)
    : options_(options), children_(children), reaper_(reaper), events_(events),
      lock_(options.lock_mode == LockMode::kSerial) {}

Spawner::~Spawner() {
  Stop();
  for (ChildStack& stack : stacks_) munmap(stack.mapping, stack.mapping_size);
}

uint64_t Spawner::IgnoredSignals(uint64_t now_ns) {
  // 64 sigaction queries are cheap once a second and too dear once a spawn; dispositions set to
  // SIG_IGN change rarely (JavaScript cannot set them; native code and inheritance can).
  uint64_t read_ns = ignored_signals_read_ns_.load(std::memory_order_relaxed);
  if (read_ns == 0 || now_ns - read_ns > 1000000000ull) {
    if (ignored_signals_read_ns_.compare_exchange_strong(read_ns, now_ns)) {
      ignored_signals_.store(ReadIgnoredSignals(), std::memory_order_relaxed);
    }
  }
  return ignored_signals_.load(std::memory_order_relaxed);
}

XorLock* Spawner::ForkLock() { return options_.lock_mode == LockMode::kFree ? nullptr : &lock_; }
XorLock* Spawner::FdLock() { return options_.lock_mode == LockMode::kFree ? nullptr : &lock_; }

void Spawner::Start() {
  dev_null_.reset(KeepAboveStdio(open("/dev/null", O_RDWR | O_CLOEXEC)));
  if (!dev_null_) throw std::system_error(errno, std::generic_category(), "open /dev/null");
  for (int index = 0; index < options_.threads + SandboxThreads(); ++index) {
    ChildStack stack;
    stack.mapping_size = kChildStackSize + kGuardSize;
    stack.mapping = mmap(nullptr, stack.mapping_size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack.mapping == MAP_FAILED) throw std::system_error(errno, std::generic_category(), "mmap");
    // Stacks grow down: the guard page at the bottom turns an overflow into a fault, not corruption.
    mprotect(stack.mapping, kGuardSize, PROT_NONE);
    stack.base = static_cast<char*>(stack.mapping) + kGuardSize;
    stack.size = kChildStackSize;
    stacks_.push_back(stack);
  }
  for (int index = 0; index < options_.threads; ++index) {
    threads_.emplace_back([this, index] { ThreadMain(index, plain_lane_, false); });
  }
  for (int index = options_.threads; index < options_.threads + SandboxThreads(); ++index) {
    threads_.emplace_back([this, index] { ThreadMain(index, sandbox_lane_, true); });
  }
}

void Spawner::Stop() {
  {
    std::lock_guard<std::mutex> guard(queue_mutex_);
    stopping_ = true;
    plain_lane_.queue.clear();
    sandbox_lane_.queue.clear();
  }
  plain_lane_.changed.notify_all();
  sandbox_lane_.changed.notify_all();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

bool Spawner::Enqueue(std::unique_ptr<SpawnRequest> request) {
  Lane& lane = request->sandbox.enabled ? sandbox_lane_ : plain_lane_;
  {
    std::lock_guard<std::mutex> guard(queue_mutex_);
    if (stopping_) return false;
    lane.queue.push_back(std::move(request));
  }
  lane.changed.notify_one();
  return true;
}

size_t Spawner::Queued() {
  std::lock_guard<std::mutex> guard(queue_mutex_);
  return plain_lane_.queue.size() + sandbox_lane_.queue.size();
}

bool Spawner::Saturated() {
  std::lock_guard<std::mutex> guard(queue_mutex_);
  return plain_lane_.queue.size() >= static_cast<size_t>(options_.threads) ||
         sandbox_lane_.queue.size() >= static_cast<size_t>(SandboxThreads());
}

void Spawner::ThreadMain(int index, Lane& lane, bool sandbox_lane) {
  // All signals stay blocked on spawn threads for good: they belong to Node's main thread, and a
  // child cloned from here starts with everything blocked until it has reset its handlers.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  pthread_setname_np(pthread_self(), sandbox_lane ? "parafork-sandbx" : "parafork-spawn");
  if (sandbox_lane) {
    // This thread never execs; its effective capabilities stay. Without CAP_SETPCAP each child
    // drops what is left itself (child.cc reads the set first).
    for (int capability = 0; capability < 64; ++capability) {
      if (prctl(PR_CAPBSET_DROP, capability, 0, 0, 0) == -1 && errno == EINVAL) break;
    }
  }
  const ChildStack& stack = stacks_[index];
  while (true) {
    std::unique_ptr<SpawnRequest> request;
    {
      std::unique_lock<std::mutex> guard(queue_mutex_);
      lane.changed.wait(guard, [this, &lane] { return stopping_ || !lane.queue.empty(); });
      if (stopping_) return;
      request = std::move(lane.queue.front());
      lane.queue.pop_front();
    }
    busy_threads_.fetch_add(1, std::memory_order_relaxed);
    SpawnOne(*request, stack);
    busy_threads_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Spawner::ReportFailure(const SpawnRequest& request, uint64_t picked_ns, uint64_t spawn_ns, int error_number,
                            Syscall syscall) {
  events_.Push(Event{{static_cast<double>(EventKind::kFailed), static_cast<double>(request.id),
                      static_cast<double>(error_number), static_cast<double>(syscall),
                      static_cast<double>(picked_ns - request.enqueued_ns), static_cast<double>(spawn_ns), 0, 0}});
}

void Spawner::SpawnOne(SpawnRequest& request, const ChildStack& stack) {
  const uint64_t picked_ns = MonotonicNanoseconds();

  // Everything the child reads is built here, before the clone.
  std::vector<std::string> candidates = ExecCandidates(request);
  if (candidates.empty()) return ReportFailure(request, picked_ns, 0, ENOENT, Syscall::kExecve);
  std::vector<const char*> exec_paths;
  exec_paths.reserve(candidates.size() + 1);
  for (const std::string& candidate : candidates) exec_paths.push_back(candidate.c_str());
  exec_paths.push_back(nullptr);
  std::vector<char*> argv = PointerArray(request.argv);
  std::vector<char*> envp = PointerArray(*request.env);

  PreparedOutput stdout_output;
  PreparedOutput stderr_output;
  UniqueFd cgroup_fd;
  std::vector<UniqueFd> cgroup_v1_owned;
  std::vector<int> cgroup_v1_fds;
  const bool use_clone3 = options_.clone_path == ClonePath::kClone3;
  {
    XorLockGuard fd_guard(FdLock(), XorLock::Side::kFdCreate);
    int error_number = PrepareOutput(request.stdout_target, dev_null_.get(), &stdout_output);
    if (error_number != 0) {
      return ReportFailure(request, picked_ns, 0, error_number,
                           request.stdout_target.IsFile() ? Syscall::kOpen : Syscall::kPipe2);
    }
    const bool shares_stdout_file = request.stderr_target.IsFile() && request.stdout_target.IsFile() &&
                                    request.stderr_target.path == request.stdout_target.path;
    if (shares_stdout_file) {
      // One open file for both streams, so their writes interleave instead of overwriting.
      stderr_output.child_fd = stdout_output.child_fd;
    } else {
      error_number = PrepareOutput(request.stderr_target, dev_null_.get(), &stderr_output);
    }
    if (error_number != 0) {
      return ReportFailure(request, picked_ns, 0, error_number,
                           request.stderr_target.IsFile() ? Syscall::kOpen : Syscall::kPipe2);
    }
    auto open_cgroups = [&]() -> int {
      if (!request.cgroup.empty()) {
        // clone3 joins the cgroup atomically (CLONE_INTO_CGROUP); clone's child writes cgroup.procs.
        cgroup_fd.reset(use_clone3 ? open(request.cgroup.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)
                                   : open((request.cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
        if (!cgroup_fd) return errno;
        cgroup_fd.reset(KeepAboveStdio(cgroup_fd.release()));
      }
      for (const std::string& directory : request.cgroups_v1) {
        UniqueFd procs(KeepAboveStdio(open((directory + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC)));
        if (!procs) return errno;
        cgroup_v1_fds.push_back(procs.get());
        cgroup_v1_owned.push_back(std::move(procs));
      }
      return 0;
    };
    if (request.create_cgroups) {
      error_number = cgroup_state_.Create(request, /*trusted=*/true);
      if (error_number == 0) error_number = open_cgroups();
      if (error_number == ENOENT) {
        // Removed behind the cache's back (a sweep, or a name used again): make it all anew.
        cgroup_state_.Forget(request);
        cgroup_fd.reset();
        cgroup_v1_fds.clear();
        cgroup_v1_owned.clear();
        error_number = cgroup_state_.Create(request, /*trusted=*/false);
        if (error_number == 0) error_number = open_cgroups();
      }
      if (error_number != 0) return ReportFailure(request, picked_ns, 0, error_number, Syscall::kCgroupCreate);
    } else if (int open_error = open_cgroups(); open_error != 0) {
      return ReportFailure(request, picked_ns, 0, open_error, Syscall::kCgroupAttach);
    }
  }

  ChildPlan plan;
  plan.exec_paths = exec_paths.data();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.cwd = request.cwd.empty() ? nullptr : request.cwd.c_str();
  plan.stdio_fds[0] = dev_null_.get();
  plan.stdio_fds[1] = stdout_output.child_fd;
  plan.stdio_fds[2] = stderr_output.child_fd;
  plan.cgroup_procs_fd = use_clone3 ? -1 : cgroup_fd.get();
  plan.cgroup_v1_procs_fds = cgroup_v1_fds.data();
  plan.cgroup_v1_count = cgroup_v1_fds.size();
  plan.close_range_cloexec = options_.close_range_cloexec;
  plan.handlers_cleared = use_clone3 && options_.clone_clear_sighand;
  plan.ignored_signals = IgnoredSignals(picked_ns);
  uint64_t namespace_flags = 0;
  SandboxStorage sandbox_storage;
  // The leased network namespace goes to the task's record once the task runs. On every other way
  // out of here no process is in it (none was cloned, or the failed child has been reaped): back.
  struct ReturnUnusedLease {
    NetworkNamespaceLease& lease;
    ~ReturnUnusedLease() { lease.Return(); }
  } return_unused_lease{sandbox_storage.network_namespace};
  if (request.sandbox.enabled) {
    Syscall failed = Syscall::kNone;
    int error_number = PrepareSandbox(request, options_, argv, sandbox_storage, plan.sandbox, &namespace_flags, &failed);
    if (error_number != 0) return ReportFailure(request, picked_ns, 0, error_number, failed);
  }
  // User-namespace mode: two pipes to hand the child its id maps (see EnterUserNamespace).
  const bool user_namespace = request.sandbox.enabled && request.sandbox.user_namespace;
  UserNamespaceHandshake handshake;
  if (user_namespace) {
    XorLockGuard fd_guard(FdLock(), XorLock::Side::kFdCreate);
    if (int error_number = handshake.Open(); error_number != 0) {
      return ReportFailure(request, picked_ns, 0, error_number, Syscall::kPipe2);
    }
    plan.sandbox.user_namespace = true;
    plan.sandbox.user_namespace_ready_fd = handshake.child_ready.get();
    plan.sandbox.user_namespace_go_fd = handshake.child_go.get();
    plan.sandbox.user_namespace_parent_fds[0] = handshake.parent_ready.get();
    plan.sandbox.user_namespace_parent_fds[1] = handshake.parent_go.get();
    plan.sandbox.user_namespace_owner = request.sandbox.user_namespace_host_id;
  }
  // Without CLONE_VFORK (user-namespace mode) the child runs beside us on its own stack, still in
  // our memory: we wait for its exec through the handshake pipe instead.
  const uint64_t vfork_flag = user_namespace ? 0 : CLONE_VFORK;
  int user_namespace_error = 0;

  int pidfd = -1;
  long pid;
  uint64_t clone_started_ns;
  uint64_t exec_done_ns;
  {
    XorLockGuard fork_guard(ForkLock(), XorLock::Side::kFork);
    clone_started_ns = MonotonicNanoseconds();
    if (use_clone3) {
      struct clone_args args = {};
      args.flags = CLONE_VM | vfork_flag | CLONE_PIDFD | namespace_flags | (cgroup_fd ? CLONE_INTO_CGROUP : 0) |
                   (plan.handlers_cleared ? CLONE_CLEAR_SIGHAND : 0);
      args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
      args.exit_signal = 0;  // no SIGCHLD: Node's handler is not ours to wake
      args.stack = reinterpret_cast<uint64_t>(stack.base);
      args.stack_size = stack.size;
      args.cgroup = cgroup_fd ? static_cast<uint64_t>(cgroup_fd.get()) : 0;
      pid = parafork_clone3(&args, sizeof(args), RunChild, &plan);
    } else {
      // clone(2) takes the top of the stack; the pidfd arrives through parent_tid with CLONE_PIDFD.
      void* stack_top = static_cast<char*>(stack.base) + stack.size;
      pid = clone(RunChild, stack_top, static_cast<int>(CLONE_VM | vfork_flag | CLONE_PIDFD | namespace_flags), &plan,
                  &pidfd);
      if (pid == -1) pid = -errno;
    }
    // CLONE_VFORK: we run again only once the child has exec'd or exited.
    if (user_namespace && pid > 0) user_namespace_error = handshake.MapAndWaitForExec(static_cast<pid_t>(pid), request.sandbox);
    exec_done_ns = MonotonicNanoseconds();
  }
  const uint64_t spawn_ns = exec_done_ns - clone_started_ns;
  // The child holds its own copies now; the parent's child ends close here, so a pipe sees EOF
  // when the child (and whatever it passed them to) is done.
  stdout_output.owned_child_end.reset();
  stderr_output.owned_child_end.reset();
  cgroup_fd.reset();
  cgroup_v1_owned.clear();

  if (pid < 0) {
    return ReportFailure(request, picked_ns, spawn_ns, static_cast<int>(-pid),
                         use_clone3 ? Syscall::kClone3 : Syscall::kClone);
  }
  if (user_namespace_error != 0 && plan.failed_errno == 0) {
    plan.failed_errno = user_namespace_error;
    plan.failed_syscall = static_cast<uint8_t>(Syscall::kUserNamespace);
  }
  if (plan.failed_errno != 0) {
    // The child got as far as a failed step and exited 127: reap it now so no zombie stays.
    ExitInfo ignored;
    bool exited = false;
    WaitForExit(pidfd, /*no_hang=*/false, &ignored, &exited);
    close(pidfd);
    return ReportFailure(request, picked_ns, spawn_ns, plan.failed_errno, static_cast<Syscall>(plan.failed_syscall));
  }

  auto* record = new ChildRecord{request.id, static_cast<pid_t>(pid), pidfd, clone_started_ns};
  record->network_namespace = sandbox_storage.adopt_network_namespace
                                  ? options_.sandbox_resources->network_namespaces().Adopt(pidfd)
                                  : std::move(sandbox_storage.network_namespace);
  children_.Insert(record);
  // A log's read ends go to the log pump, not to JavaScript; handed over after the spawned event,
  // so JavaScript always hears of a child's spawn before its log closes.
  UniqueFd log_ends[2];
  if (request.stdout_target.mode == OutputMode::kLog) log_ends[0] = std::move(stdout_output.parent_end);
  if (request.stderr_target.mode == OutputMode::kLog) log_ends[1] = std::move(stderr_output.parent_end);
  events_.Push(Event{{static_cast<double>(EventKind::kSpawned), static_cast<double>(request.id),
                      static_cast<double>(pid), static_cast<double>(stdout_output.parent_end.release()),
                      static_cast<double>(stderr_output.parent_end.release()),
                      static_cast<double>(picked_ns - request.enqueued_ns), static_cast<double>(spawn_ns), 0}});
  if ((log_ends[0] || log_ends[1]) && options_.log_pump != nullptr) {
    const OutputTarget& log = request.stdout_target.mode == OutputMode::kLog ? request.stdout_target : request.stderr_target;
    options_.log_pump->Add(request.id, log.path, log.log_max_bytes, std::move(log_ends[0]), std::move(log_ends[1]));
  }
  // After the spawned event, so JavaScript always sees a child's spawn before its exit.
  int error_number = reaper_.Watch(record);
  if (error_number != 0) {
    // epoll is out of room (ENOSPC: fs.epoll.max_user_watches): a child we cannot watch would be
    // lost, so it is killed at once and reported as ended by SIGKILL.
    children_.Signal(record->id, SIGKILL);
    ExitInfo exit;
    while (!children_.Reap(record, &exit)) sched_yield();
    events_.Push(ExitEvent(*record, exit));
    delete record;
  }
}

}  // namespace parafork
