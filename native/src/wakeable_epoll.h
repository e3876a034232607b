// An epoll set with an eventfd in it, so that another thread can wake the one waiting on it: the
// loop of the reaper (pidfds) and of the log pump (pipes). The wake-up fd is reported with a null
// data.ptr, which no watched object has.
#pragma once

#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <system_error>

#include "unique_fd.h"

namespace parafork {

class WakeableEpoll {
 public:
  // Throws std::system_error when epoll or the eventfd cannot be made.
  void Open() {
    epoll_.reset(epoll_create1(EPOLL_CLOEXEC));
    if (!epoll_) throw std::system_error(errno, std::generic_category(), "epoll_create1");
    wake_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_) throw std::system_error(errno, std::generic_category(), "eventfd");
    struct epoll_event wake_event = {};
    wake_event.events = EPOLLIN;
    wake_event.data.ptr = nullptr;
    if (epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &wake_event) == -1) {
      throw std::system_error(errno, std::generic_category(), "epoll_ctl");
    }
  }

  int fd() const { return epoll_.get(); }

  // Any thread.
  void Wake() {
    uint64_t one = 1;
    ssize_t ignored = write(wake_.get(), &one, sizeof(one));
    (void)ignored;
  }

  // The waiting thread, once the wake-up fd was reported: it reads readable until drained.
  void Drain() {
    uint64_t count;
    ssize_t ignored = read(wake_.get(), &count, sizeof(count));
    (void)ignored;
  }

 private:
  UniqueFd epoll_;
  UniqueFd wake_;
};

// For a native thread's loop: signals belong to Node's main thread.
inline void BlockAllSignals() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
}

}  // namespace parafork
