// See reaper.h.
#include "reaper.h"

#include <signal.h>
#include <sys/epoll.h>

#include <cerrno>
#include <system_error>

#include "monotonic_clock.h"

namespace parafork {

Event ExitEvent(const ChildRecord& record, const ExitInfo& exit) {
  return ExitedEvent(record.id, exit, MonotonicNanoseconds() - record.started_ns);
}

Reaper::Reaper(ChildTable& children, EventSink& events) : children_(children), events_(events) {}

Reaper::~Reaper() { Stop(); }

void Reaper::Start() {
  epoll_.Open();
  thread_ = std::thread([this] { Run(); });
}

void Reaper::Stop() {
  if (!thread_.joinable()) return;
  stopping_.store(true);
  epoll_.Wake();
  thread_.join();
}

int Reaper::Watch(ChildRecord* record) {
  struct epoll_event event = {};
  // One-shot: a pidfd stays readable after exit, and each child is reaped exactly once.
  event.events = EPOLLIN | EPOLLONESHOT;
  event.data.ptr = record;
  if (epoll_ctl(epoll_.fd(), EPOLL_CTL_ADD, record->pidfd.get(), &event) == -1) return errno;
  return 0;
}

void Reaper::OnExit(ChildRecord* record) {
  ExitInfo exit;
  std::unique_ptr<ChildRecord> reaped = children_.Reap(record, &exit);
  if (!reaped) {
    // Readable but not yet waitable cannot happen for a pidfd; re-arm rather than lose the child.
    struct epoll_event event = {};
    event.events = EPOLLIN | EPOLLONESHOT;
    event.data.ptr = record;
    epoll_ctl(epoll_.fd(), EPOLL_CTL_MOD, record->pidfd.get(), &event);
    return;
  }
  events_.Push(ExitEvent(*reaped, exit));
}

void Reaper::Run() {
  BlockAllSignals();
  constexpr int kBatch = 256;
  struct epoll_event ready[kBatch];
  while (!stopping_.load()) {
    int count = epoll_wait(epoll_.fd(), ready, kBatch, -1);
    if (count == -1) {
      if (errno == EINTR) continue;
      break;  // EBADF/EINVAL: our own fds are gone, nothing left to watch
    }
    for (int index = 0; index < count; ++index) {
      auto* record = static_cast<ChildRecord*>(ready[index].data.ptr);
      if (record != nullptr) OnExit(record);
    }
  }
}

}  // namespace parafork
