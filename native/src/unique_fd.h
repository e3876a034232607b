// A file descriptor with exactly one owner: closed when the owner goes away, handed on explicitly.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <utility>

namespace parafork {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  explicit operator bool() const { return valid(); }

  // Gives up ownership without closing: the caller now owns the descriptor.
  int release() { return std::exchange(fd_, -1); }

  void reset(int fd = -1) {
    // close(2) must not be retried on EINTR on Linux: the descriptor is released either way.
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// `fd` moved above 2 if it is 0, 1 or 2 (the original closed), close-on-exec; -1 stays -1. Fds a
// child inherits must sit above 2: it places its stdio at 0..2 before it uses them.
inline int KeepAboveStdio(int fd) {
  if (fd < 0 || fd > 2) return fd;
  const int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
  ::close(fd);
  return moved;
}

}  // namespace parafork
