// Line-by-line reading of a file's contents, the one way every line-oriented reader (JSONL data,
// metrics.jsonl, prompt files, the VADER lexicon, score caches) walks it: 1-based line numbers for
// "file:line" errors, "\n" or "\r\n" endings, blank lines (empty or only whitespace) skipped, so a
// file edited on Windows or with a trailing empty line reads the same. Torch-free, header-only.
#pragma once
#include <cstdint>
#include <string>
#include <type_traits>

namespace rarlhf {

// Calls fn(line_number, line) for every non-blank line of `content`, without its line ending.
// fn returns void, or bool: false stops the walk (a row cap reached, a torn last line).
template <class Fn>
void for_each_line(const std::string& content, Fn&& fn) {
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string::npos) end = content.size();
    std::string line = content.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t\r\n") == std::string::npos) continue;
    if constexpr (std::is_same_v<decltype(fn(line_no, line)), bool>) {
      if (!fn(line_no, line)) return;
    } else {
      fn(line_no, line);
    }
  }
}

}  // namespace rarlhf
