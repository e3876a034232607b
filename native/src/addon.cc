// Module init and the export table; everything else lives in its own file.
#include <napi.h>

#include "capabilities.h"
#include "engine.h"
#include "errors.h"
#include "event_batcher.h"
#include "file_lock.h"
#include "seccomp_profile.h"
#include "thread_priority.h"

namespace {

Napi::Value Capabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const parafork::Capabilities& capabilities = parafork::ProbeCapabilities();
  Napi::Object result = Napi::Object::New(env);
  result.Set("clone3", Napi::Boolean::New(env, capabilities.clone3));
  result.Set("cloneIntoCgroup", Napi::Boolean::New(env, capabilities.clone_into_cgroup));
  result.Set("cloneClearSighand", Napi::Boolean::New(env, capabilities.clone_clear_sighand));
  result.Set("closeRangeCloexec", Napi::Boolean::New(env, capabilities.close_range_cloexec));
  result.Set("pidfd", Napi::Boolean::New(env, capabilities.pidfd));
  result.Set("mountSetattr", Napi::Boolean::New(env, capabilities.mount_setattr));
  result.Set("kernelRelease", Napi::String::New(env, capabilities.kernel_release));
  return result;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("SpawnEngine", parafork::SpawnEngine::Define(env));
  exports.Set("capabilities", Napi::Function::New<Capabilities>(env, "capabilities"));
  exports.Set("failurePoints", parafork::FailurePoints(env));
  exports.Set("compileSeccompProfile", Napi::Function::New<parafork::CompileSeccompProfileBinding>(env, "compileSeccompProfile"));
  exports.Set("tryLockExclusive", Napi::Function::New<parafork::TryLockExclusiveBinding>(env, "tryLockExclusive"));
  exports.Set("prioritizeCallingThread", Napi::Function::New<parafork::PrioritizeCallingThreadBinding>(env, "prioritizeCallingThread"));
  exports.Set("eventStride", Napi::Number::New(env, static_cast<double>(parafork::kEventStride)));
  exports.Set("eventLayout", parafork::EventLayout(env));
  exports.Set("childCallsAfterPrivilegedAttach", parafork::ChildCallsAfterPrivilegedAttachNames(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(parafork, Init)
