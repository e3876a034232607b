// See spawner.h.
#include "spawner.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <iterator>

#include <cerrno>
#include <cstring>
#include <string_view>
#include <system_error>

#include "child.h"
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

std::vector<char*> PointerArray(std::vector<std::string>& strings) {
  std::vector<char*> pointers;
  pointers.reserve(strings.size() + 1);
  for (std::string& value : strings) pointers.push_back(value.data());
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

// The child's fds must all sit above 2 so that placing them at 0..2 never overwrites one another.
int KeepAboveStdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  close(fd);
  return moved;
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
    case OutputMode::kPipe: {
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

// The strings and arrays a SandboxPlan points into, alive until the clone has returned.
struct SandboxStorage {
  std::string proc_path, dev_path, tmp_path, tmp_options;
  std::string device_paths[6];
  DeviceNode device_nodes[6];
  std::string link_paths[4];
  SymbolicLink links[4];
  std::vector<std::string> mount_targets;
  std::vector<SandboxMount> mounts;
  ResourceLimit limits[3];
  std::string init_name = "parafork-init";
  std::vector<char*> init_argv;
};

constexpr struct {
  const char* name;
  unsigned int major;
  unsigned int minor;
} kDevices[] = {{"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0}};

constexpr struct {
  const char* name;
  const char* target;
} kDeviceLinks[] = {{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"}, {"stdout", "/proc/self/fd/1"},
                    {"stderr", "/proc/self/fd/2"}};

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
  *clone_flags |= CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWCGROUP;
  switch (sandbox.network) {
    case NetworkMode::kNone:
      plan.network_namespace_fd = resources->empty_network_namespace_fd();
      break;
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
  plan.rootfs = sandbox.rootfs.c_str();
  plan.staging = staging.c_str();
  plan.read_only_root = sandbox.read_only_root;
  storage.proc_path = staging + "/proc";
  storage.dev_path = staging + "/dev";
  plan.proc_path = storage.proc_path.c_str();
  plan.dev_path = storage.dev_path.c_str();
  for (size_t index = 0; index < std::size(kDevices); ++index) {
    storage.device_paths[index] = storage.dev_path + "/" + kDevices[index].name;
    storage.device_nodes[index] = {storage.device_paths[index].c_str(), kDevices[index].major, kDevices[index].minor};
  }
  plan.device_nodes = storage.device_nodes;
  plan.device_node_count = std::size(kDevices);
  for (size_t index = 0; index < std::size(kDeviceLinks); ++index) {
    storage.link_paths[index] = storage.dev_path + "/" + kDeviceLinks[index].name;
    storage.links[index] = {storage.link_paths[index].c_str(), kDeviceLinks[index].target};
  }
  plan.device_links = storage.links;
  plan.device_link_count = std::size(kDeviceLinks);
  if (sandbox.tmp_size_bytes > 0) {
    storage.tmp_path = staging + "/tmp";
    storage.tmp_options = "mode=1777,size=" + std::to_string(sandbox.tmp_size_bytes);
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
  plan.working_directory = sandbox.working_directory.c_str();
  size_t limits = 0;
  storage.limits[limits++] = {RLIMIT_CORE, 0, 0};  // no core dumps of task memory on the node
  storage.limits[limits++] = {RLIMIT_NOFILE, sandbox.max_open_files, sandbox.max_open_files};
  if (sandbox.max_file_size_bytes > 0) {
    storage.limits[limits++] = {RLIMIT_FSIZE, sandbox.max_file_size_bytes, sandbox.max_file_size_bytes};
  }
  plan.limits = storage.limits;
  plan.limit_count = limits;
  plan.uid = sandbox.uid;
  plan.gid = sandbox.gid;
  plan.seccomp = sandbox.seccomp ? resources->default_seccomp() : nullptr;
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
  for (int index = 0; index < options_.threads; ++index) {
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
    threads_.emplace_back([this, index] { ThreadMain(index); });
  }
}

void Spawner::Stop() {
  {
    std::lock_guard<std::mutex> guard(queue_mutex_);
    stopping_ = true;
    queue_.clear();
  }
  queue_changed_.notify_all();
  for (std::thread& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
  threads_.clear();
}

bool Spawner::Enqueue(std::unique_ptr<SpawnRequest> request) {
  {
    std::lock_guard<std::mutex> guard(queue_mutex_);
    if (stopping_) return false;
    queue_.push_back(std::move(request));
  }
  queue_changed_.notify_one();
  return true;
}

size_t Spawner::Queued() {
  std::lock_guard<std::mutex> guard(queue_mutex_);
  return queue_.size();
}

void Spawner::ThreadMain(int index) {
  // All signals stay blocked on spawn threads for good: they belong to Node's main thread, and a
  // child cloned from here starts with everything blocked until it has reset its handlers.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  pthread_setname_np(pthread_self(), "parafork-spawn");
  const ChildStack& stack = stacks_[index];
  while (true) {
    std::unique_ptr<SpawnRequest> request;
    {
      std::unique_lock<std::mutex> guard(queue_mutex_);
      queue_changed_.wait(guard, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      request = std::move(queue_.front());
      queue_.pop_front();
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
  std::vector<char*> envp = PointerArray(request.env);

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
                           request.stdout_target.mode == OutputMode::kPipe ? Syscall::kPipe2 : Syscall::kOpen);
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
                           request.stderr_target.mode == OutputMode::kPipe ? Syscall::kPipe2 : Syscall::kOpen);
    }
    if (!request.cgroup.empty()) {
      // clone3 joins the cgroup atomically (CLONE_INTO_CGROUP); clone's child writes cgroup.procs.
      cgroup_fd.reset(use_clone3 ? open(request.cgroup.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC)
                                 : open((request.cgroup + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC));
      if (!cgroup_fd) return ReportFailure(request, picked_ns, 0, errno, Syscall::kCgroupAttach);
      cgroup_fd.reset(KeepAboveStdio(cgroup_fd.release()));
    }
    for (const std::string& directory : request.cgroups_v1) {
      UniqueFd procs(KeepAboveStdio(open((directory + "/cgroup.procs").c_str(), O_WRONLY | O_CLOEXEC)));
      if (!procs) return ReportFailure(request, picked_ns, 0, errno, Syscall::kCgroupAttach);
      cgroup_v1_fds.push_back(procs.get());
      cgroup_v1_owned.push_back(std::move(procs));
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
  if (request.sandbox.enabled) {
    Syscall failed = Syscall::kNone;
    int error_number = PrepareSandbox(request, options_, argv, sandbox_storage, plan.sandbox, &namespace_flags, &failed);
    if (error_number != 0) return ReportFailure(request, picked_ns, 0, error_number, failed);
  }

  int pidfd = -1;
  long pid;
  uint64_t clone_started_ns;
  uint64_t exec_done_ns;
  {
    XorLockGuard fork_guard(ForkLock(), XorLock::Side::kFork);
    clone_started_ns = MonotonicNanoseconds();
    if (use_clone3) {
      struct clone_args args = {};
      args.flags = CLONE_VM | CLONE_VFORK | CLONE_PIDFD | namespace_flags | (cgroup_fd ? CLONE_INTO_CGROUP : 0) |
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
      pid = clone(RunChild, stack_top, static_cast<int>(CLONE_VM | CLONE_VFORK | CLONE_PIDFD | namespace_flags), &plan,
                  &pidfd);
      if (pid == -1) pid = -errno;
    }
    // CLONE_VFORK: we run again only once the child has exec'd or exited.
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
  if (plan.failed_errno != 0) {
    // The child got as far as a failed step and exited 127: reap it now so no zombie stays.
    ExitInfo ignored;
    bool exited = false;
    WaitForExit(pidfd, /*no_hang=*/false, &ignored, &exited);
    close(pidfd);
    return ReportFailure(request, picked_ns, spawn_ns, plan.failed_errno, static_cast<Syscall>(plan.failed_syscall));
  }

  auto* record = new ChildRecord{request.id, static_cast<pid_t>(pid), pidfd, clone_started_ns};
  children_.Insert(record);
  events_.Push(Event{{static_cast<double>(EventKind::kSpawned), static_cast<double>(request.id),
                      static_cast<double>(pid), static_cast<double>(stdout_output.parent_end.release()),
                      static_cast<double>(stderr_output.parent_end.release()),
                      static_cast<double>(picked_ns - request.enqueued_ns), static_cast<double>(spawn_ns), 0}});
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
