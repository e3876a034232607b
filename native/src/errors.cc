// errno -> JavaScript Error with `code`, `errno`, `syscall`; the spawn failure points for JavaScript.
#include "errors.h"

#include <string.h>

#include <string>

namespace parafork {

std::string ErrnoCode(int error_number) {
  // strerrorname_np(3) (glibc >= 2.32) gives the symbolic name, as Node's util.getSystemErrorName does.
  const char* name = strerrorname_np(error_number);
  if (name != nullptr) return name;
  std::string code("E");  // built in two steps: GCC 12 warns falsely (-Wrestrict) on "E" + string
  code += std::to_string(error_number);
  return code;
}

Napi::Error SystemError(Napi::Env env, int error_number, const char* syscall, const std::string& message) {
  std::string code = ErrnoCode(error_number);
  Napi::Error error = Napi::Error::New(env, code + ": " + message + " (" + syscall + ": " + strerror(error_number) + ")");
  error.Set("code", Napi::String::New(env, code));
  error.Set("errno", Napi::Number::New(env, -error_number));
  error.Set("syscall", Napi::String::New(env, syscall));
  return error;
}

Napi::Array FailurePoints(Napi::Env env) {
  Napi::Array points = Napi::Array::New(env, std::size(kFailurePoints));
  for (const FailurePoint& point : kFailurePoints) {
    Napi::Object entry = Napi::Object::New(env);
    entry.Set("syscall", Napi::String::New(env, point.syscall));
    entry.Set("step", Napi::String::New(env, SpawnStepName(point.step)));
    entry.Set("what", Napi::String::New(env, point.what));
    points.Set(static_cast<uint32_t>(point.id), entry);
  }
  return points;
}

}  // namespace parafork
