// See file_lock.h. Runs on the JS thread: flock with LOCK_NB does not wait.
#include "file_lock.h"

#include <sys/file.h>

#include <cerrno>
#include <climits>
#include <cmath>

#include "errors.h"

namespace parafork {

Napi::Value TryLockExclusiveBinding(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsNumber()) {
    throw Napi::TypeError::New(env, "parafork: tryLockExclusive needs one argument, an open file descriptor");
  }
  const double value = info[0].As<Napi::Number>().DoubleValue();
  if (!(value >= 0 && value <= INT_MAX) || std::floor(value) != value) {
    throw Napi::TypeError::New(env, "parafork: tryLockExclusive's file descriptor must be a whole number from 0 to 2^31-1");
  }
  const int fd = static_cast<int>(value);
  int result;
  do {
    result = flock(fd, LOCK_EX | LOCK_NB);
  } while (result == -1 && errno == EINTR);
  if (result == 0) return Napi::Boolean::New(env, true);
  // flock(2): EWOULDBLOCK is "The file is locked and the LOCK_NB flag was selected".
  if (errno == EWOULDBLOCK) return Napi::Boolean::New(env, false);
  throw SystemError(env, errno, "flock", "cannot lock file descriptor " + std::to_string(fd));
}

}  // namespace parafork
