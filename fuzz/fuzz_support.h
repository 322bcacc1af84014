// Shared by the libFuzzer harnesses (fuzz/fuzz_*.cpp; run them with scripts/fuzz.sh).
// A reader given arbitrary bytes may do two things: succeed, or throw rarlhf::Error (ConfigError /
// IoError) with a one-line message of bounded length, which is what `rarlhf` prints. Anything else
// is a finding and aborts so libFuzzer saves the input: another exception type (an nlohmann or c10
// exception escaping a file boundary), a multi-line or runaway message, a broken invariant the
// harness checks, and of course what ASan/UBSan catch.
#pragma once
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "rarlhf/common/error.h"

namespace rarlhf::fuzz {

// Longest message a reader may put on the user's terminal (the readers truncate what they echo).
constexpr size_t kMaxMessage = 2048;

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "FINDING: %s\n", what.c_str());
  std::abort();
}

// Runs `body`; an rarlhf::Error must carry a one-line message of at most kMaxMessage bytes.
template <class F>
void expect_clean(F&& body) {
  try {
    body();
  } catch (const Error& e) {
    const std::string m = e.what();
    if (m.empty()) finding("empty error message");
    if (m.find('\n') != std::string::npos || m.find('\r') != std::string::npos) finding("multi-line error: " + m.substr(0, 400));
    if (m.size() > kMaxMessage) finding("error message of " + std::to_string(m.size()) + " bytes: " + m.substr(0, 400));
  } catch (const std::exception& e) {
    finding(std::string("exception that is not an rarlhf::Error: ") + e.what());
  }
}

// A private scratch folder for the files a harness writes (RAM-backed /dev/shm when there is one).
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    const char* base = std::getenv("RARLHF_FUZZ_TMP");
    std::string tmpl = std::string(base ? base : (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp")) +
                       "/rarlhf-fuzz-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data()) == nullptr) finding("cannot create a scratch folder under " + tmpl);
    return std::string(buf.data());
  }();
  return dir;
}

// Writes `bytes` to scratch_dir()/name (replacing it) and returns the path.
inline std::string put_file(const std::string& name, std::string_view bytes) {
  const std::string path = scratch_dir() + "/" + name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out.flush()) finding("cannot write " + path);
  return path;
}

inline void drop_file(const std::string& name) { std::remove((scratch_dir() + "/" + name).c_str()); }

// Splits an input into parts at "\n--8<--\n" (the harnesses' dictionaries hold the separator, so
// libFuzzer finds multi-file inputs quickly); missing parts are empty.
inline std::vector<std::string_view> split_parts(std::string_view in, size_t n) {
  static constexpr std::string_view kSep = "\n--8<--\n";
  std::vector<std::string_view> parts;
  while (parts.size() + 1 < n) {
    const size_t at = in.find(kSep);
    if (at == std::string_view::npos) break;
    parts.push_back(in.substr(0, at));
    in.remove_prefix(at + kSep.size());
  }
  parts.push_back(in);
  parts.resize(n);
  return parts;
}

}  // namespace rarlhf::fuzz
