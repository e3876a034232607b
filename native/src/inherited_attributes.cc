#include "inherited_attributes.h"

#include <sched.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace parafork {
namespace {

constexpr uint32_t kSchedDeadline = 6;  // SCHED_DEADLINE, absent from older <sched.h>
constexpr long kIoprioWhoProcess = 1;   // IOPRIO_WHO_PROCESS: with 0, the calling thread
constexpr int kIoprioClassShift = 13;
constexpr int kIoprioClassRealTime = 1;  // IOPRIO_CLASS_RT
constexpr unsigned long kPersonaQuery = 0xffffffff;  // personality(2): read without changing
constexpr uint32_t kExecutionDomainMask = 0xff;  // PER_MASK

void ReadPriority(InheritedAttributesReset& reset) {
  KernelSchedAttributes attributes = {};
  if (syscall(SYS_sched_getattr, 0, &attributes, sizeof(attributes), 0) == 0) {
    const bool real_time = attributes.policy == SCHED_FIFO || attributes.policy == SCHED_RR || attributes.policy == kSchedDeadline;
    if (real_time || attributes.nice < 0) {
      reset.lower_cpu = true;
      reset.cpu_policy = real_time ? SCHED_OTHER : attributes.policy;
    }
  }
  const long io_priority = syscall(SYS_ioprio_get, kIoprioWhoProcess, 0);
  reset.lower_io = io_priority >= 0 && (io_priority >> kIoprioClassShift) == kIoprioClassRealTime;
}

// The personalities the default filter lets a task set (seccomp_policy.cc): PER_LINUX and
// PER_LINUX32, each with or without UNAME26. Anything else the agent runs with is put back to that.
void ReadPersona(InheritedAttributesReset& reset) {
  const int current = personality(kPersonaQuery);
  if (current < 0) return;
  const uint32_t persona = static_cast<uint32_t>(current);
  uint32_t kept = persona & (kExecutionDomainMask | UNAME26);
  const uint32_t domain = kept & kExecutionDomainMask;
  if (domain != PER_LINUX && domain != PER_LINUX32) kept &= ~kExecutionDomainMask;
  reset.reset_persona = kept != persona;
  reset.persona = kept;
}

}  // namespace

InheritedAttributesReset ReadInheritedAttributesReset() {
  InheritedAttributesReset reset;
  ReadPriority(reset);
  ReadPersona(reset);
  return reset;
}

}  // namespace parafork
