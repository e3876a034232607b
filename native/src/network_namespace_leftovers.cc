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

// 0 and the whole file read from offset 0 (a seq file makes its text anew), or an errno.
int ReadWhole(int fd, std::string* text) {
  char buffer[4096];
  off_t offset = 0;
  for (;;) {
    const ssize_t length = pread(fd, buffer, sizeof(buffer), offset);
    if (length == 0) return 0;
    if (length < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    text->append(buffer, static_cast<size_t>(length));
    offset += length;
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

int NetworkNamespaceFiles::Open(int net_directory) {
  UniqueFd sockstat_file(openat(net_directory, "sockstat", O_RDONLY | O_CLOEXEC));
  if (!sockstat_file) return errno;
  UniqueFd flow_labels_file(openat(net_directory, "ip6_flowlabel", O_RDONLY | O_CLOEXEC));
  if (!flow_labels_file && errno != ENOENT) return errno;
  sockstat = UniqueFd(KeepAboveStdio(sockstat_file.release()));
  flow_labels = UniqueFd(KeepAboveStdio(flow_labels_file.release()));
  opened = true;
  return 0;
}

Leftovers FindNetworkNamespaceLeftovers(const NetworkNamespaceFiles& files) {
  if (!files.opened) return Leftovers::kLingering;
  if (files.flow_labels) {
    std::string flow_labels;
    if (ReadWhole(files.flow_labels.get(), &flow_labels) != 0 || !FlowLabelsListNone(flow_labels)) return Leftovers::kLingering;
  }
  std::string sockstat;
  if (ReadWhole(files.sockstat.get(), &sockstat) != 0) return Leftovers::kLingering;
  return SockstatCountsNoSocket(sockstat) ? Leftovers::kNone : Leftovers::kSockets;
}

}  // namespace parafork
