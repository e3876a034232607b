// What a sandboxed child would inherit from the spawn thread that the sandbox sets nowhere else, and
// what of it the child must give up before its task runs. A clone copies the calling thread's
// scheduling policy, nice value and I/O priority (sched(7), ioprio_set(2)) and its personality
// (personality(2)), and exec keeps them (a personality's ADDR_NO_RANDOMIZE is cleared only by an
// exec that changes ids, and the child takes the task's ids before its exec). So an agent started
// above an ordinary process (a unit's Nice=-10 or IOSchedulingClass=realtime, `nice -n -10
// parafork run`, a renice to keep it responsive) handed that to every Task: a busy default Task at
// nice -10 weighs about nine ordinary processes, and real-time I/O is served before every
// best-effort request of the node; and an agent under `setarch -R` ran every Task without address
// space randomization, which the default filter refuses a Task to ask for (red team, session 15:
// test/security/sandbox-inherited-attributes.test.ts). RLIMIT_NICE and RLIMIT_RTPRIO 0 keep a Task
// from taking more priority, not from keeping what it was born with.
//
// Read on the spawn thread for each sandboxed spawn (three system calls, under a microsecond); the
// child acts on it with raw calls before it joins its cgroups (child.cc, ResetInheritedAttributes),
// where a real-time thread could not join a cgroup v1 cpu group without a real-time budget. A
// priority at or below an ordinary process's (a positive nice, SCHED_BATCH, SCHED_IDLE, best-effort
// or idle I/O) is the operator's choice and is kept, as are the personalities the default filter
// lets a Task choose itself (PER_LINUX32, UNAME26).
#pragma once

#include <cstdint>

namespace parafork {

// The kernel's struct sched_attr, SCHED_ATTR_SIZE_VER0 (sched_getattr(2), sched_setattr(2)):
// glibc before 2.41 has neither the struct nor wrappers.
struct KernelSchedAttributes {
  uint32_t size;
  uint32_t policy;
  uint64_t flags;
  int32_t nice;
  uint32_t priority;
  uint64_t runtime;
  uint64_t deadline;
  uint64_t period;
};

struct InheritedAttributesReset {
  // Set the child to `cpu_policy` at nice 0 (sched_setattr(2)): the thread runs at a real-time or
  // deadline policy (then SCHED_OTHER) or at a nice value below 0 (then its own policy).
  bool lower_cpu = false;
  uint32_t cpu_policy = 0;  // SCHED_OTHER
  // Set the child's I/O priority to none (ioprio_set(2); derived from its nice value, which is 0
  // then): the thread is in the real-time I/O class.
  bool lower_io = false;
  // Set the child's personality to `persona` (personality(2)): the thread's has flags beyond
  // PER_LINUX32 and UNAME26 (ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC, ADDR_COMPAT_LAYOUT, ...), or
  // another execution domain; `persona` keeps only those two.
  bool reset_persona = false;
  uint32_t persona = 0;  // PER_LINUX
};

// What the calling thread's attributes ask of a child it clones. One that cannot be read is taken
// as ordinary (nothing to reset): the calls never fail on a thread's own attributes.
InheritedAttributesReset ReadInheritedAttributesReset();

}  // namespace parafork
