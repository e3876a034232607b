// A task's cgroup directories and limit files, made and written on the spawn thread rather than on
// the JS thread (cgroupfs mkdir and limit writes cost ~40-100 us each: cgroup_mutex, per-controller
// setup, more than the rest of a spawn), and what the spawn threads last made or wrote there.
// A reused cgroup (src/sandbox/cgroup-manager.ts) lists every limit file with the value it must
// read; when this cache already knows that value, the file is neither opened nor read (~10 us
// each). Only parafork writes its own group; a directory removed behind the cache's back shows as
// ENOENT, and the spawn then forgets and makes everything anew (cgroup_join.h). Bounded: cleared
// past kMaxDirectories.
#pragma once

#include <mutex>
#include <string>
#include <unordered_map>

#include "spawn_request.h"

namespace parafork {

// Writes one limit file, unless it already reads `file.read_back`. 0 or an errno.
int WriteCgroupFile(const CgroupFileWrite& file);

class CgroupStateCache {
 public:
  // Makes the request's cgroup directories (an existing one is kept) and writes its limit files;
  // `trusted`: skip what the cache knows. Any thread. 0 or an errno.
  int Create(const SpawnRequest& request, bool trusted);
  void Forget(const SpawnRequest& request);

 private:
  static constexpr size_t kMaxDirectories = 4096;

  int MakeDirectory(const std::string& directory, bool trusted);
  bool Knows(const CgroupFileWrite& file, const std::string& directory);
  void Remember(const CgroupFileWrite& file, const std::string& directory, bool written);

  std::mutex mutex_;
  // Directory -> (limit file path -> the value it reads). Forgetting a directory forgets its files.
  std::unordered_map<std::string, std::unordered_map<std::string, std::string>> directories_;
};

}  // namespace parafork
