// See thread_priority.h. Runs on the JS thread.
#include "thread_priority.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>

#include "errors.h"

namespace parafork {

namespace {

// sched_setattr(2)'s argument; glibc before 2.41 declares neither it nor the calls.
struct SchedulingAttributes {
  uint32_t size;
  uint32_t sched_policy;
  uint64_t sched_flags;
  int32_t sched_nice;
  uint32_t sched_priority;
  uint64_t sched_runtime;
  uint64_t sched_deadline;
  uint64_t sched_period;
};

constexpr uint64_t kResetOnFork = 0x01;  // SCHED_FLAG_RESET_ON_FORK

}  // namespace

Napi::Value PrioritizeCallingThreadBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(env, "parafork: prioritizeCallingThread needs one argument, a nice value");
  }
  const double value = info[0].As<Napi::Number>().DoubleValue();
  if (!(value >= -20 && value <= 19) || std::floor(value) != value) {
    throw Napi::TypeError::New(env, "parafork: prioritizeCallingThread's nice value must be a whole number from -20 to 19");
  }
  const int nice = static_cast<int>(value);
  SchedulingAttributes attributes = {};
  if (syscall(SYS_sched_getattr, 0, &attributes, sizeof(attributes), 0) == -1) {
    throw SystemError(env, errno, "sched_getattr", "cannot read the JS thread's scheduling attributes");
  }
  if (attributes.sched_policy != SCHED_OTHER && attributes.sched_policy != SCHED_BATCH) return Napi::Boolean::New(env, false);
  if (attributes.sched_nice <= nice) return Napi::Boolean::New(env, false);
  attributes.size = sizeof(attributes);
  attributes.sched_nice = nice;
  attributes.sched_flags = kResetOnFork;
  if (syscall(SYS_sched_setattr, 0, &attributes, 0) == -1) {
    // EPERM: a lower nice value needs CAP_SYS_NICE or RLIMIT_NICE (sched(7)).
    if (errno == EPERM) return Napi::Boolean::New(env, false);
    throw SystemError(env, errno, "sched_setattr", "cannot set the JS thread's nice value");
  }
  return Napi::Boolean::New(env, true);
}

}  // namespace parafork
