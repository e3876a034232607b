// See sandbox_masks.h.
#include "sandbox_masks.h"

#include <sys/stat.h>

#include <climits>
#include <string_view>

namespace parafork {

bool IsBelow(const std::string& inner, const std::string& outer) {
  return inner.size() > outer.size() && inner.compare(0, outer.size(), outer) == 0 && inner[outer.size()] == '/';
}

std::string MaskedPathProblem(const std::string& path) {
  if (path.empty() || path[0] != '/') return "must be an absolute path";
  if (path.size() >= PATH_MAX) return "is too long";
  if (path == "/") return "cannot be / (the whole root)";
  std::string_view rest(path);
  rest.remove_prefix(1);
  while (true) {
    const size_t slash = rest.find('/');
    const std::string_view component = rest.substr(0, slash);
    if (component.empty() || component == "." || component == "..") {
      return "must be normalized: no empty, '.' or '..' component and no trailing slash";
    }
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  for (const char* own : {"/proc", "/dev", "/tmp"}) {
    if (path == own) return std::string("cannot be ") + own + ", which the sandbox makes fresh for each task";
  }
  for (const char* own : {"/dev", "/tmp"}) {
    if (IsBelow(path, own)) return std::string("cannot be under ") + own + ", which the sandbox makes fresh for each task";
  }
  return "";
}

std::shared_ptr<const MaskedPaths> MaskedPathsCache::Parse(const std::string& joined, std::string* problem) {
  if (last_ && last_->joined == joined) return last_;
  auto parsed = std::make_shared<MaskedPaths>();
  parsed->joined = joined;
  std::string_view rest(joined);
  while (!rest.empty()) {
    const size_t newline = rest.find('\n');
    parsed->paths.emplace_back(rest.substr(0, newline));
    if (newline == std::string_view::npos) break;
    rest.remove_prefix(newline + 1);
  }
  if (parsed->paths.size() > kMaxMaskedPaths) {
    *problem = "at most " + std::to_string(kMaxMaskedPaths) + " paths";
    return nullptr;
  }
  for (const std::string& path : parsed->paths) {
    if (std::string why = MaskedPathProblem(path); !why.empty()) {
      *problem = path + " " + why;
      return nullptr;
    }
  }
  last_ = std::move(parsed);
  return last_;
}

void BuildMaskLayout(const std::vector<std::string>& paths, const std::string& proc, MaskLayout* layout) {
  struct stat status;
  for (const char* name : kReadOnlyProcNames) {
    if (stat((proc + "/" + name).c_str(), &status) != 0) continue;
    layout->read_only_names.emplace_back(name);
    layout->proc_read_only.push_back(std::string("/proc/") + name);
    layout->read_only_sources.push_back(std::string(kReadOnlyDirectoryName) + "/" + name);
  }
  for (const std::string& path : paths) {
    if (!IsBelow(path, "/proc")) {
      layout->root_masks.push_back(path);
      continue;
    }
    // stat follows links, as mount(2) does with its target.
    if (stat((proc + path.substr(5)).c_str(), &status) != 0) continue;
    layout->proc_masks.push_back(path);
    layout->proc_mask_is_directory.push_back(S_ISDIR(status.st_mode));
  }
  // Pointers last: the strings above no longer move.
  for (size_t index = 0; index < layout->proc_read_only.size(); ++index) {
    layout->template_proc_mounts.push_back({layout->read_only_sources[index].c_str(), layout->proc_read_only[index].c_str()});
    layout->proc_read_only_targets.push_back(layout->proc_read_only[index].c_str());
  }
  for (size_t index = 0; index < layout->proc_masks.size(); ++index) {
    const MaskMount mask = {layout->proc_mask_is_directory[index] ? kMaskDirectoryName : kMaskFileName,
                            layout->proc_masks[index].c_str()};
    layout->template_proc_mounts.push_back(mask);
    layout->proc_mask_mounts.push_back(mask);
  }
}

}  // namespace parafork
