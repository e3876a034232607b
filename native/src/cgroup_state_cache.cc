// See cgroup_state_cache.h.
#include "cgroup_state_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "unique_fd.h"

namespace parafork {

namespace {

std::string DirectoryOf(const std::string& path) { return path.substr(0, path.rfind('/')); }

}  // namespace

int WriteCgroupFile(const CgroupFileWrite& file) {
  UniqueFd fd(open(file.path.c_str(), (file.read_back.empty() ? O_WRONLY : O_RDWR) | O_CLOEXEC));
  if (!fd) return errno;
  if (!file.read_back.empty()) {
    char current[96];
    ssize_t length = pread(fd.get(), current, sizeof(current), 0);
    if (length < 0) return errno;
    while (length > 0 && (current[length - 1] == '\n' || current[length - 1] == ' ')) --length;
    if (std::string_view(current, static_cast<size_t>(length)) == file.read_back) return 0;
  }
  // cgroupfs takes a value in one write(2), or refuses it whole (EINVAL, EBUSY, ...).
  const ssize_t written = pwrite(fd.get(), file.value.data(), file.value.size(), 0);
  if (written < 0) return errno;
  return static_cast<size_t>(written) == file.value.size() ? 0 : EIO;
}

void CgroupStateCache::Forget(const SpawnRequest& request) {
  std::lock_guard<std::mutex> guard(mutex_);
  directories_.erase(request.cgroup);
  for (const std::string& directory : request.cgroups_v1) directories_.erase(directory);
}

int CgroupStateCache::Create(const SpawnRequest& request, bool trusted) {
  if (!request.cgroup.empty()) {
    if (int error_number = MakeDirectory(request.cgroup, trusted); error_number != 0) return error_number;
  }
  for (const std::string& directory : request.cgroups_v1) {
    if (int error_number = MakeDirectory(directory, trusted); error_number != 0) return error_number;
  }
  for (const CgroupFileWrite& file : request.cgroup_files) {
    const std::string directory = DirectoryOf(file.path);
    if (trusted && Knows(file, directory)) continue;
    const int error_number = WriteCgroupFile(file);
    Remember(file, directory, error_number == 0);
    if (error_number != 0 && !file.may_fail) return error_number;
  }
  return 0;
}

int CgroupStateCache::MakeDirectory(const std::string& directory, bool trusted) {
  {
    std::lock_guard<std::mutex> guard(mutex_);
    if (trusted && directories_.count(directory) > 0) return 0;
  }
  const bool made = mkdir(directory.c_str(), 0755) == 0;
  if (!made && errno != EEXIST) return errno;
  std::lock_guard<std::mutex> guard(mutex_);
  if (directories_.size() >= kMaxDirectories) directories_.clear();
  // A new directory holds the kernel's defaults; one found existing holds what it holds. Either
  // way, what was remembered for that name is not to be trusted.
  directories_[directory].clear();
  return 0;
}

// True when the cache knows `file` already reads the value it asks for (only files with a
// read_back value are ever skipped: the others are written every time).
bool CgroupStateCache::Knows(const CgroupFileWrite& file, const std::string& directory) {
  if (file.read_back.empty()) return false;
  std::lock_guard<std::mutex> guard(mutex_);
  auto known_directory = directories_.find(directory);
  if (known_directory == directories_.end()) return false;
  auto known = known_directory->second.find(file.path);
  return known != known_directory->second.end() && known->second == file.read_back;
}

void CgroupStateCache::Remember(const CgroupFileWrite& file, const std::string& directory, bool written) {
  std::lock_guard<std::mutex> guard(mutex_);
  auto known_directory = directories_.find(directory);
  if (known_directory == directories_.end()) return;
  if (written) {
    known_directory->second[file.path] = file.read_back.empty() ? file.value : file.read_back;
  } else {
    known_directory->second.erase(file.path);
  }
}

}  // namespace parafork
