// See files.h.
#include "support/files.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rarlhf/common/fs.h"
#include "rarlhf/common/text_lines.h"

namespace rarlhf::testing {

std::vector<nlohmann::json> read_jsonl(const std::string& path, const std::vector<std::string>& drop_prefixes) {
  std::vector<nlohmann::json> out;
  if (!file_exists(path)) return out;  // a run that never wrote the file: the caller's size check says so
  for_each_line(read_file(path), [&](int64_t, const std::string& line) {
    auto j = nlohmann::json::parse(line);
    if (j.is_object()) {
      for (auto it = j.begin(); it != j.end();) {
        bool drop = false;
        for (const auto& p : drop_prefixes) drop |= it.key().rfind(p, 0) == 0;
        it = drop ? j.erase(it) : std::next(it);
      }
    }
    out.push_back(std::move(j));
  });
  return out;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace rarlhf::testing
