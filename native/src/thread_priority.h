// The agent's JavaScript thread ahead of its own helper threads and of its Tasks when it wakes
// (issue 15's event-loop bar: p99 delay under 10 ms while 1,000 Tasks write). That thread starts and
// ends every Task and needs little CPU (~0.4 s for 1,000 Tasks), but it needs it at once: at the
// weight of every other thread it waited on a run queue for most of a burst, behind the spawn
// threads, the log pump and, on the same CPU, the Tasks' group (docs/benchmarks.md, "Task logs").
// A lower nice value gives the thread a larger weight among the threads of its group (its process,
// autogroup session or cgroup) and so a larger part of the group's share where it runs; it gives
// the group no more than its own share against the rest of the machine, on cgroup v1 and v2 alike.
// SCHED_FLAG_RESET_ON_FORK: threads and processes made from it after this start at nice 0 again
// (sched(7)), so neither the spawn threads nor anything Node forks inherit it.
#pragma once

#include <napi.h>

namespace parafork {

// prioritizeCallingThread(nice): sched_setattr(2) of the calling thread (the JS thread) to nice
// `nice` (-20..19) with SCHED_FLAG_RESET_ON_FORK, keeping its policy. true once set; false when it
// was left as it was: not permitted (no CAP_SYS_NICE: EPERM), a policy other than SCHED_OTHER or
// SCHED_BATCH (an operator's choice, kept), or already at that nice value or lower. Other failures
// throw an Error with code, errno and syscall 'sched_setattr' or 'sched_getattr'.
Napi::Value PrioritizeCallingThreadBinding(const Napi::CallbackInfo& info);

}  // namespace parafork
