// See network_namespace_pool.h.
#include "network_namespace_pool.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <future>
#include <iterator>

#include "network_namespace_leftovers.h"

namespace parafork {

namespace {

// pidfd ioctls (linux/pidfd.h, Linux 6.11+; older headers lack them): an fd of the process's
// network namespace.
constexpr unsigned long kPidfdGetNetworkNamespace = _IO(0xFF, 4);  // PIDFD_GET_NET_NAMESPACE

}  // namespace

void NetworkNamespaceLease::Return() {
  if (!namespace_.fd) return;
  pool_->GiveBack(std::move(namespace_), reusable_);
}

NetworkNamespacePool::NetworkNamespacePool(Limits limits) : limits_(limits) {}

NetworkNamespacePool::~NetworkNamespacePool() {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    stopping_ = true;
  }
  work_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int NetworkNamespacePool::Start() {
  std::promise<int> first_made;
  std::future<int> first_error = first_made.get_future();
  thread_ = std::thread([this, first_made = std::move(first_made)]() mutable {
    // Signals belong to Node's main thread. Namespaces change only this thread: setns(2) and
    // unshare(2) act on the calling thread.
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    pthread_setname_np(pthread_self(), "parafork-netns");
    home_namespace_.reset(KeepAboveStdio(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)));
    net_directory_.reset(KeepAboveStdio(open("/proc/thread-self/net", O_RDONLY | O_DIRECTORY | O_CLOEXEC)));
    PooledNetworkNamespace made;
    const int error_number = !home_namespace_ || !net_directory_ ? errno : Make(&made);
    if (error_number == 0) {
      std::lock_guard<std::mutex> guard(mutex_);
      ++counts_.made;
      idle_.push_back(std::move(made));
    }
    first_made.set_value(error_number);
    if (error_number == 0) Run();
  });
  const int error_number = first_error.get();
  if (error_number != 0) thread_.join();
  return error_number;
}

NetworkNamespaceLease NetworkNamespacePool::Lease(bool reusable) {
  std::unique_lock<std::mutex> guard(mutex_);
  if (idle_.empty()) {
    ++counts_.missed;
    guard.unlock();
    work_.notify_one();
    return NetworkNamespaceLease();
  }
  PooledNetworkNamespace leased = std::move(idle_.back());
  idle_.pop_back();
  fewest_idle_ = std::min(fewest_idle_, idle_.size());
  ++counts_.leased;
  const bool refill = idle_.size() < limits_.reserve;
  guard.unlock();
  if (refill) work_.notify_one();
  return NetworkNamespaceLease(this, std::move(leased), reusable);
}

NetworkNamespaceLease NetworkNamespacePool::Adopt(int pidfd) {
  UniqueFd adopted(KeepAboveStdio(ioctl(pidfd, kPidfdGetNetworkNamespace, 0)));
  if (!adopted) return NetworkNamespaceLease();
  // The clone made it as the agent, so the agent's user namespace owns it, as it owns the pool's
  // own. Never adopt one a task's user namespace would own: root in that one could change it.
  UniqueFd owner(ioctl(adopted.get(), NS_GET_USERNS));
  struct stat owner_status = {};
  struct stat own_status = {};
  if (!owner || fstat(owner.get(), &owner_status) == -1 || stat("/proc/thread-self/ns/user", &own_status) == -1 ||
      owner_status.st_ino != own_status.st_ino || owner_status.st_dev != own_status.st_dev) {
    return NetworkNamespaceLease();
  }
  std::lock_guard<std::mutex> guard(mutex_);
  ++counts_.adopted;
  // Its check's files are opened at its first check, on the pool's thread.
  return NetworkNamespaceLease(this, PooledNetworkNamespace{std::move(adopted), {}}, /*reusable=*/true);
}

void NetworkNamespacePool::GiveBack(PooledNetworkNamespace given_back, bool reusable) {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (!reusable || stopping_) {
      ++counts_.dropped;
      return;  // `given_back` closes here, its files with it
    }
    Returned returned;
    returned.returned_namespace = std::move(given_back);
    returned_.push_back(std::move(returned));
  }
  work_.notify_one();
}

NetworkNamespacePool::Counts NetworkNamespacePool::Snapshot() {
  std::lock_guard<std::mutex> guard(mutex_);
  Counts counts = counts_;
  counts.idle = idle_.size();
  counts.settling = settling_.size();
  return counts;
}

// The pool's thread, by priority: trims every `trim_after`, checks what comes back (each one found
// holding nothing is ready at once, for ~3.5 us of reads through its kept files, against ~300 us
// to make one), looks again at what was still settling, and makes namespaces until `reserve` are
// idle. Namespaces close outside the lock: the last close of one queues its teardown
// (net/core/net_namespace.c: cleanup_net).
void NetworkNamespacePool::Run() {
  using Clock = std::chrono::steady_clock;
  std::unique_lock<std::mutex> guard(mutex_);
  Clock::time_point next_trim = Clock::now() + limits_.trim_after;
  Clock::time_point make_again_at;  // after a failure to make one
  fewest_idle_ = idle_.size();
  while (!stopping_) {
    const Clock::time_point now = Clock::now();
    Returned due;
    if (now >= next_trim) {
      std::vector<PooledNetworkNamespace> unneeded = TakeUnneeded();
      next_trim = now + limits_.trim_after;
      guard.unlock();
      unneeded.clear();
      guard.lock();
    } else if (!returned_.empty()) {
      Returned returned = std::move(returned_.back());
      returned_.pop_back();
      Check(std::move(returned), guard);
    } else if (NextSettledDue(now, &due)) {
      Check(std::move(due), guard);
    } else if (idle_.size() < limits_.reserve && now >= make_again_at) {
      guard.unlock();
      PooledNetworkNamespace made;
      const int error_number = Make(&made);
      guard.lock();
      if (error_number == 0) {
        ++counts_.made;
        idle_.push_back(std::move(made));
      } else {
        // Out of memory, or past user.max_net_namespaces: clones make their own meanwhile (and
        // fail the same way while it lasts). Not again at once, in a loop.
        make_again_at = now + std::chrono::seconds(1);
      }
    } else {
      Clock::time_point wake_at = next_trim;
      for (const Returned& settling : settling_) wake_at = std::min(wake_at, settling.look_again_at);
      if (idle_.size() < limits_.reserve) wake_at = std::min(wake_at, make_again_at);
      work_.wait_until(guard, wake_at, [&] {
        return stopping_ || !returned_.empty() || (idle_.size() < limits_.reserve && Clock::now() >= make_again_at);
      });
    }
  }
}

// Under the lock: takes the settling namespace whose time to be looked at again has come, if any.
bool NetworkNamespacePool::NextSettledDue(std::chrono::steady_clock::time_point now, Returned* due) {
  for (size_t index = 0; index < settling_.size(); ++index) {
    if (settling_[index].look_again_at <= now) {
      *due = std::move(settling_[index]);
      settling_.erase(settling_.begin() + static_cast<std::ptrdiff_t>(index));
      return true;
    }
  }
  return false;
}

// Called and returns with `guard` held; checks outside it. Then: idle, settling, or closed.
void NetworkNamespacePool::Check(Returned returned, std::unique_lock<std::mutex>& guard) {
  // How long to wait before each new look at sockets not yet freed: RCU grace periods take
  // milliseconds, more on a loaded machine.
  static constexpr std::chrono::milliseconds kLookAgainAfter[] = {std::chrono::milliseconds(10),
                                                                   std::chrono::milliseconds(100),
                                                                   std::chrono::milliseconds(1000)};
  guard.unlock();
  // Read through its kept files, from here: no setns.
  const Leftovers leftovers = OpenCheckedFiles(returned.returned_namespace)
                                  ? FindNetworkNamespaceLeftovers(returned.returned_namespace.files)
                                  : Leftovers::kLingering;
  guard.lock();
  if (leftovers == Leftovers::kNone && idle_.size() < limits_.max_idle) {
    ++counts_.reused;
    idle_.push_back(std::move(returned.returned_namespace));
    return;
  }
  if (leftovers == Leftovers::kSockets && returned.looks < static_cast<int>(std::size(kLookAgainAfter))) {
    returned.look_again_at = std::chrono::steady_clock::now() + kLookAgainAfter[returned.looks++];
    settling_.push_back(std::move(returned));
    return;
  }
  ++counts_.dropped;
  guard.unlock();
  returned.returned_namespace = {};  // its fd and files close: the namespace's teardown is queued
  guard.lock();
}

bool NetworkNamespacePool::OpenCheckedFiles(PooledNetworkNamespace& checked) {
  if (checked.files.opened) return true;
  if (setns(checked.fd.get(), CLONE_NEWNET) == -1) return false;
  const bool opened = checked.files.Open(net_directory_.get()) == 0;
  // Home at once: this thread must not keep a dropped namespace alive.
  if (setns(home_namespace_.get(), CLONE_NEWNET) == -1) return false;
  return opened;
}

// Under the lock: the idle namespaces above `reserve` that stayed idle since the last trim (the
// fewest idle at any moment since), for the caller to close outside it.
std::vector<PooledNetworkNamespace> NetworkNamespacePool::TakeUnneeded() {
  std::vector<PooledNetworkNamespace> unneeded;
  const size_t keep = std::max(limits_.reserve, idle_.size() - std::min(idle_.size(), fewest_idle_));
  while (idle_.size() > keep) {
    // The oldest first: the bottom of the stack is what leases reached least.
    unneeded.push_back(std::move(idle_.front()));
    idle_.erase(idle_.begin());
  }
  counts_.trimmed += unneeded.size();
  fewest_idle_ = idle_.size();
  return unneeded;
}

// A new, empty network namespace: lo down, no address, no route. unshare(2) moves this thread
// into it, where its check's files are opened (if they cannot be, its first check tries again);
// the thread goes home right after. 0 or an errno.
int NetworkNamespacePool::Make(PooledNetworkNamespace* made) {
  if (unshare(CLONE_NEWNET) == -1) return errno;
  made->fd.reset(KeepAboveStdio(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)));
  const int error_number = made->fd ? 0 : errno;
  if (made->fd && made->files.Open(net_directory_.get()) != 0) made->files = {};
  if (setns(home_namespace_.get(), CLONE_NEWNET) == -1) return errno;
  return error_number;
}

}  // namespace parafork
