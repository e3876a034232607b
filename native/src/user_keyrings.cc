// See user_keyrings.h.
#include "user_keyrings.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string>

#include "unique_fd.h"

namespace parafork {

bool KeyUsersListUid(std::string_view key_users, uint32_t uid) {
  size_t line_start = 0;
  while (line_start < key_users.size()) {
    size_t line_end = key_users.find('\n', line_start);
    if (line_end == std::string_view::npos) line_end = key_users.size();
    std::string_view line = key_users.substr(line_start, line_end - line_start);
    line_start = line_end + 1;
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view field = line.substr(0, colon);
    const size_t digits = field.find_first_not_of(' ');
    if (digits == std::string_view::npos) continue;
    field.remove_prefix(digits);
    uint32_t listed = 0;
    const auto [end, error] = std::from_chars(field.data(), field.data() + field.size(), listed);
    if (error == std::errc() && end == field.data() + field.size() && listed == uid) return true;
  }
  return false;
}

bool UidMayHoldKeys(uint32_t uid) {
  UniqueFd file(open("/proc/key-users", O_RDONLY | O_CLOEXEC));
  if (!file) return errno != ENOENT;
  std::string text;
  char buffer[4096];
  for (;;) {
    const ssize_t length = read(file.get(), buffer, sizeof(buffer));
    if (length == 0) break;
    if (length < 0) {
      if (errno == EINTR) continue;
      return true;
    }
    text.append(buffer, static_cast<size_t>(length));
  }
  return KeyUsersListUid(text, uid);
}

}  // namespace parafork
