// See spawner.h.
#include "spawner.h"

#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#include <cerrno>
#include <system_error>

#include "monotonic_clock.h"

extern "C" long parafork_clone3(struct clone_args* args, size_t size, int (*entry)(void*), void* argument);

namespace parafork {

namespace {

constexpr size_t kChildStackSize = 128 * 1024;  // the child uses a few KiB; see child.cc
constexpr size_t kGuardSize = 4096;
// Slots for the fds a child uses that sit above the limit (child_fd_slots.h): a sandboxed Task
// needs 9 at most (stdout and stderr, its result file, the v1 `tasks` files of memory, pids and
// cpu on a hybrid host, the network and mount namespaces, init; /dev/null is below), an array's
// index 8 (no result file). A spawn that needs more copies the whole table, as before. Every slot
// is one more fd each child copies: 6 threads (2 CPUs) make the limit ~90 in the agent.
constexpr int kChildFdSlotsPerThread = 10;

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

}  // namespace

Spawner::Spawner(SpawnerOptions options, ChildTable& children, Reaper& reaper, EventSink& events)
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
  // CLOSE_RANGE_UNSHARE is Linux 5.9, older than CLOSE_RANGE_CLOEXEC (5.11). Reserved before the
  // threads start; without them (no fds to spare) every child copies the whole table as before.
  if (options_.close_range_cloexec) {
    fd_slots_.Reserve(dev_null_.get(), options_.threads + SandboxThreads(), kChildFdSlotsPerThread);
  }
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
  plain_lane_.ready.release(options_.threads);
  sandbox_lane_.ready.release(SandboxThreads());
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
  lane.ready.release();
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
    // Each permit stands for a request pushed before it: the queue holds one for this thread.
    lane.ready.acquire();
    {
      std::lock_guard<std::mutex> guard(queue_mutex_);
      if (stopping_) return;
      request = std::move(lane.queue.front());
      lane.queue.pop_front();
    }
    busy_threads_.fetch_add(1, std::memory_order_relaxed);
    SpawnOne(*request, stack, index);
    busy_threads_.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Spawner::SpawnOne(SpawnRequest& request, const ChildStack& stack, int thread) {
  if (TrySpawn(request, stack, thread)) return;
  // A kept fd named a cgroup removed behind its keeper's back (ENOENT from CLONE_INTO_CGROUP,
  // ENODEV from a v1 `tasks` write): the child exited before its exec, so the task has not run.
  // Made again with the paths, the directories anew if need be (cgroup_join.cc, Prepare).
  cgroup_state_.Forget(request);
  request.cgroup_join_fd = -1;
  request.cgroups_v1_join_fds.clear();
  TrySpawn(request, stack, thread);
}

bool Spawner::TrySpawn(SpawnRequest& request, const ChildStack& stack, int thread) {
  const uint64_t picked_ns = MonotonicNanoseconds();
  const uint64_t queued_ns = picked_ns - request.enqueued_ns;
  auto report = [&](SpawnFailure failure, uint64_t spawn_ns) {
    events_.Push(FailedEvent(request.id, failure.error_number, failure.syscall, queued_ns, spawn_ns));
    return true;
  };

  // Everything the child reads is built here, before the clone.
  ExecArrays exec;
  if (!exec.Prepare(request)) return report({ENOENT, Syscall::kExecve}, 0);
  PreparedStdio stdio;
  PreparedCgroups cgroups;
  if (SpawnFailure failure = PrepareFds(request, stdio, cgroups)) return report(failure, 0);
  ChildPlan plan = PlainPlan(request, exec, stdio, cgroups, picked_ns);
  uint64_t namespace_flags = 0;
  SandboxStorage sandbox_storage;  // gives its network namespace lease back unless Adopt takes it
  UserNamespaceHandshake handshake;
  if (request.sandbox.enabled) {
    SpawnFailure failure = PrepareSandboxed(request, exec, sandbox_storage, handshake, plan, &namespace_flags);
    if (failure) return report(failure, 0);
  }

  // Not in user-namespace mode: there the child runs on while this thread maps its ids, and the
  // slots could not be put back before its exec.
  LoweredChildFds lowered(plan.sandbox.user_namespace ? nullptr : &fd_slots_, thread);
  LowerChildFds(plan, cgroups, lowered);
  CloneOutcome clone = Clone(request, plan, stack, namespace_flags, cgroups, handshake);
  lowered.Restore();
  // The child holds its own copies now; the parent's child ends close here, so a pipe sees EOF
  // when the child (and whatever it passed them to) is done.
  stdio.CloseChildEnds();
  const bool kept_cgroup_fds = cgroups.kept;
  cgroups.Close();
  if (clone.pid < 0) {
    if (kept_cgroup_fds && clone.pid == -ENOENT) return false;
    return report({static_cast<int>(-clone.pid), UsesClone3() ? Syscall::kClone3 : Syscall::kClone}, clone.spawn_ns);
  }
  if (clone.user_namespace_error != 0 && plan.failed_errno == 0) {
    plan.failed_errno = clone.user_namespace_error;
    plan.failed_syscall = static_cast<uint8_t>(Syscall::kUserNamespace);
  }
  if (plan.failed_errno != 0) {
    // The child got as far as a failed step and exited 127: reap it now so no zombie stays.
    ExitInfo ignored;
    bool exited = false;
    WaitForExit(clone.pidfd.get(), /*no_hang=*/false, &ignored, &exited);
    clone.pidfd.reset();
    if (kept_cgroup_fds && plan.failed_errno == ENODEV && plan.failed_syscall == static_cast<uint8_t>(Syscall::kCgroupAttach)) {
      return false;
    }
    return report({plan.failed_errno, static_cast<Syscall>(plan.failed_syscall)}, clone.spawn_ns);
  }
  Adopt(request, clone, stdio, sandbox_storage, queued_ns);
  return true;
}

SpawnFailure Spawner::PrepareFds(const SpawnRequest& request, PreparedStdio& stdio, PreparedCgroups& cgroups) {
  XorLockGuard fd_guard(FdLock(), XorLock::Side::kFdCreate);
  if (SpawnFailure failure = stdio.Prepare(request, dev_null_.get())) return failure;
  return cgroups.Prepare(request, cgroup_state_, UsesClone3());
}

ChildPlan Spawner::PlainPlan(const SpawnRequest& request, const ExecArrays& exec, const PreparedStdio& stdio,
                             const PreparedCgroups& cgroups, uint64_t now_ns) {
  ChildPlan plan;
  plan.exec_paths = exec.exec_paths();
  plan.argv = exec.argv();
  plan.envp = exec.envp();
  plan.cwd = request.cwd.empty() ? nullptr : request.cwd.c_str();
  plan.stdio_fds[0] = dev_null_.get();
  plan.stdio_fds[1] = stdio.stdout_output.child_fd;
  plan.stdio_fds[2] = stdio.stderr_output.child_fd;
  if (request.sandbox.enabled) {
    for (int target = 0; target < 3; ++target) {
      if (plan.stdio_fds[target] == dev_null_.get()) plan.own_dev_null |= static_cast<uint8_t>(1u << target);
    }
  }
  plan.result_fd = stdio.result_file.get();
  plan.cgroup_procs_fd = UsesClone3() ? -1 : cgroups.cgroup_fd;
  plan.cgroup_v1_procs_fds = cgroups.v1_fds.data();
  plan.cgroup_v1_count = cgroups.v1_fds.size();
  plan.close_range_cloexec = options_.close_range_cloexec;
  plan.handlers_cleared = UsesClone3() && options_.clone_clear_sighand;
  plan.ignored_signals = IgnoredSignals(now_ns);
  return plan;
}

SpawnFailure Spawner::PrepareSandboxed(const SpawnRequest& request, const ExecArrays& exec, SandboxStorage& storage,
                                       UserNamespaceHandshake& handshake, ChildPlan& plan, uint64_t* namespace_flags) {
  const SandboxSetting setting{options_.sandbox_resources, &options_.staging_directory, options_.mount_setattr};
  if (SpawnFailure failure = PrepareSandbox(request, setting, exec.argv_pointers(), storage, plan.sandbox, namespace_flags)) {
    return failure;
  }
  plan.sandbox.inherited_reset = ReadInheritedAttributesReset();  // this thread's, which the clone copies
  if (!request.sandbox.user_namespace) return {};
  // User-namespace mode: two pipes to hand the child its id maps (see EnterUserNamespace).
  XorLockGuard fd_guard(FdLock(), XorLock::Side::kFdCreate);
  if (int error_number = handshake.Open(); error_number != 0) return {error_number, Syscall::kUserNamespacePipe};
  handshake.Describe(request.sandbox, plan.sandbox);
  return {};
}

void Spawner::LowerChildFds(ChildPlan& plan, PreparedCgroups& cgroups, LoweredChildFds& lowered) {
  for (int& fd : plan.stdio_fds) fd = lowered.Lower(fd);
  plan.result_fd = lowered.Lower(plan.result_fd);
  plan.cgroup_procs_fd = lowered.Lower(plan.cgroup_procs_fd);
  for (int& fd : cgroups.v1_fds) fd = lowered.Lower(fd);  // plan.cgroup_v1_procs_fds points here
  plan.sandbox.network_namespace_fd = lowered.Lower(plan.sandbox.network_namespace_fd);
  plan.sandbox.mount_namespace_fd = lowered.Lower(plan.sandbox.mount_namespace_fd);
  plan.sandbox.init_fd = lowered.Lower(plan.sandbox.init_fd);
  plan.unshare_fds_below = lowered.shared() ? lowered.limit() : 0;
}

Spawner::CloneOutcome Spawner::Clone(const SpawnRequest& request, ChildPlan& plan, const ChildStack& stack,
                                     uint64_t namespace_flags, const PreparedCgroups& cgroups,
                                     UserNamespaceHandshake& handshake) {
  // Without CLONE_VFORK (user-namespace mode) the child runs beside us on its own stack, still in
  // our memory: we wait for its exec through the handshake pipe instead.
  const bool user_namespace = plan.sandbox.user_namespace;
  const uint64_t vfork_flag = user_namespace ? 0 : CLONE_VFORK;
  // The child shares our fd table until its first system call unshares the low part of it.
  const uint64_t files_flag = plan.unshare_fds_below > 0 ? CLONE_FILES : 0;
  const int cgroup_fd = cgroups.cgroup_fd;
  CloneOutcome outcome;
  int pidfd = -1;
  XorLockGuard fork_guard(ForkLock(), XorLock::Side::kFork);
  outcome.started_ns = MonotonicNanoseconds();
  if (UsesClone3()) {
    struct clone_args args = {};
    args.flags = CLONE_VM | vfork_flag | files_flag | CLONE_PIDFD | namespace_flags | (cgroup_fd >= 0 ? CLONE_INTO_CGROUP : 0) |
                 (plan.handlers_cleared ? CLONE_CLEAR_SIGHAND : 0);
    args.pidfd = reinterpret_cast<uint64_t>(&pidfd);
    args.exit_signal = 0;  // no SIGCHLD: Node's handler is not ours to wake
    args.stack = reinterpret_cast<uint64_t>(stack.base);
    args.stack_size = stack.size;
    args.cgroup = cgroup_fd >= 0 ? static_cast<uint64_t>(cgroup_fd) : 0;
    outcome.pid = parafork_clone3(&args, sizeof(args), RunChild, &plan);
  } else {
    // clone(2) takes the top of the stack; the pidfd arrives through parent_tid with CLONE_PIDFD.
    void* stack_top = static_cast<char*>(stack.base) + stack.size;
    outcome.pid = clone(RunChild, stack_top, static_cast<int>(CLONE_VM | vfork_flag | files_flag | CLONE_PIDFD | namespace_flags),
                        &plan, &pidfd);
    if (outcome.pid == -1) outcome.pid = -errno;
  }
  // Only a clone that succeeded made a pidfd of ours: copy_process() writes the pidfd's number to
  // clone_args.pidfd (clone(2): parent_tid) before later steps that may still fail, such as
  // cgroup_can_fork() for CLONE_INTO_CGROUP into a removed cgroup or a full pids budget, and then
  // frees that number (kernel/fork.c). Taken anyway, it was closed at the end of this spawn, when
  // it was already another fd of the process: another spawn's pipe, a pooled namespace, a kept
  // cgroup fd (test/native/launcher-failed-clone.test.ts).
  if (outcome.pid > 0) outcome.pidfd.reset(pidfd);
  // CLONE_VFORK: we run again only once the child has exec'd or exited.
  if (user_namespace && outcome.pid > 0) {
    outcome.user_namespace_error = handshake.MapAndWaitForExec(static_cast<pid_t>(outcome.pid), request.sandbox);
  }
  outcome.spawn_ns = MonotonicNanoseconds() - outcome.started_ns;
  return outcome;
}

void Spawner::HandOverLog(const SpawnRequest& request, UniqueFd (&log_ends)[2]) {
  if ((!log_ends[0] && !log_ends[1]) || options_.log_pump == nullptr) return;  // no pump: the ends close
  const OutputTarget& log =
      request.stdout_target.mode == OutputMode::kLog ? request.stdout_target : request.stderr_target;
  options_.log_pump->Add(request.id, log.path, log.log_max_bytes, log.log_create_when_written, std::move(log_ends[0]),
                        std::move(log_ends[1]));
}

// The child has exec'd: the child table owns its record from here, and the reaper watches it.
void Spawner::Adopt(const SpawnRequest& request, CloneOutcome& clone, PreparedStdio& stdio, SandboxStorage& storage,
                    uint64_t queued_ns) {
  auto owned = std::make_unique<ChildRecord>();
  owned->id = request.id;
  owned->pid = static_cast<pid_t>(clone.pid);
  owned->pidfd = std::move(clone.pidfd);
  owned->started_ns = clone.started_ns;
  owned->network_namespace = storage.adopt_network_namespace
                                 ? options_.sandbox_resources->network_namespaces().Adopt(owned->pidfd.get())
                                 : std::move(storage.network_namespace);
  ChildRecord* record = children_.Insert(std::move(owned));
  // A log's read ends go to the log pump, not to JavaScript; handed over after the spawned event,
  // so JavaScript always hears of a child's spawn before its log closes.
  UniqueFd log_ends[2];
  if (request.stdout_target.mode == OutputMode::kLog) log_ends[0] = std::move(stdio.stdout_output.parent_end);
  if (request.stderr_target.mode == OutputMode::kLog) log_ends[1] = std::move(stdio.stderr_output.parent_end);
  events_.Push(SpawnedEvent(request.id, record->pid, stdio.stdout_output.parent_end.release(),
                            stdio.stderr_output.parent_end.release(), stdio.result_file.release(), queued_ns,
                            clone.spawn_ns));
  HandOverLog(request, log_ends);
  // After the spawned event, so JavaScript always sees a child's spawn before its exit.
  if (reaper_.Watch(record) == 0) return;
  // epoll is out of room (ENOSPC: fs.epoll.max_user_watches): a child we cannot watch would be
  // lost, so it is killed at once and reported as ended by SIGKILL.
  children_.Signal(request.id, SIGKILL);
  ExitInfo exit;
  std::unique_ptr<ChildRecord> reaped;
  while (!(reaped = children_.Reap(record, &exit))) sched_yield();
  events_.Push(ExitEvent(*reaped, exit));
}

}  // namespace parafork
