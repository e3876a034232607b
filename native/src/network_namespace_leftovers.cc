// See network_namespace_leftovers.h.
#include "network_namespace_leftovers.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "unique_fd.h"

namespace parafork {

namespace {

// The words of `text`, split at spaces and newlines, one at a time.
class Words {
 public:
  explicit Words(std::string_view text) : text_(text) {}

  bool Next(std::string_view* word) {
    while (position_ < text_.size() && (text_[position_] == ' ' || text_[position_] == '\n')) ++position_;
    if (position_ == text_.size()) return false;
    const size_t end = text_.find_first_of(" \n", position_);
    *word = text_.substr(position_, end - position_);
    position_ = end == std::string_view::npos ? text_.size() : end;
    return true;
  }

 private:
  std::string_view text_;
  size_t position_ = 0;
};

// 0 and the whole file, ENOENT when the kernel does not have it, or another errno.
int ReadFile(int directory, const char* name, std::string* text) {
  UniqueFd file(openat(directory, name, O_RDONLY | O_CLOEXEC));
  if (!file) return errno;
  char buffer[4096];
  for (;;) {
    const ssize_t length = read(file.get(), buffer, sizeof(buffer));
    if (length == 0) return 0;
    if (length < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    text->append(buffer, static_cast<size_t>(length));
  }
}

}  // namespace

bool SockstatCountsNoSocket(std::string_view sockstat) {
  // "sockets: used 0\nTCP: inuse 0 orphan 0 tw 0 alloc 2 mem 1\nUDP: inuse 0 mem 0\n..."
  // (net/ipv4/proc.c: sockstat_seq_show). At least "used" must be there.
  Words words(sockstat);
  std::string_view word;
  bool saw_used = false;
  while (words.Next(&word)) {
    if (word != "used" && word != "inuse" && word != "tw") continue;
    saw_used = saw_used || word == "used";
    std::string_view value;
    if (!words.Next(&value) || value != "0") return false;
  }
  return saw_used;
}

bool FlowLabelsListNone(std::string_view ip6_flowlabel) {
  // The header ("Label S Owner  Users  Linger Expires  Dst  Opt") and nothing after it.
  const size_t header_end = ip6_flowlabel.find('\n');
  if (header_end == std::string_view::npos) return false;
  return ip6_flowlabel.find_first_not_of(" \n", header_end) == std::string_view::npos;
}

Leftovers FindNetworkNamespaceLeftovers(int net_directory) {
  std::string flow_labels;
  const int error_number = ReadFile(net_directory, "ip6_flowlabel", &flow_labels);
  if (error_number != ENOENT && (error_number != 0 || !FlowLabelsListNone(flow_labels))) return Leftovers::kLingering;
  std::string sockstat;
  if (ReadFile(net_directory, "sockstat", &sockstat) != 0) return Leftovers::kLingering;
  return SockstatCountsNoSocket(sockstat) ? Leftovers::kNone : Leftovers::kSockets;
}

}  // namespace parafork
