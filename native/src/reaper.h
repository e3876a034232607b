// Exit tracking without SIGCHLD and without waitpid(-1): one thread waits on the pidfds of all
// live children with epoll (a pidfd polls readable once its process exits, pidfd_open(2)), reaps
// each with waitid(P_PIDFD) and queues an exit event. Node's own child_process, which reaps its
// children by pid on SIGCHLD, keeps working beside it.
#pragma once

#include <atomic>
#include <thread>

#include "child_table.h"
#include "event.h"
#include "wakeable_epoll.h"

namespace parafork {

// The exited event for a reaped child, its duration timed now.
Event ExitEvent(const ChildRecord& record, const ExitInfo& exit);

class Reaper {
 public:
  Reaper(ChildTable& children, EventSink& events);
  Reaper(const Reaper&) = delete;
  Reaper& operator=(const Reaper&) = delete;
  ~Reaper();

  // Throws std::system_error when epoll or the wake-up eventfd cannot be made.
  void Start();
  // Stops the thread; children still running are no longer watched.
  void Stop();

  // Any thread. The record must already be in the child table; from here on only this reaper
  // reaps it. 0 or errno.
  int Watch(ChildRecord* record);

 private:
  void Run();
  void OnExit(ChildRecord* record);

  ChildTable& children_;
  EventSink& events_;
  WakeableEpoll epoll_;  // woken to stop
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace parafork
