// Helpers for the tests that drive the built `rarlhf` binary from the repo root: its path, running
// it with output to a log, and reading the files it writes.
#pragma once
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace rarlhf::testing {

inline const std::string kRoot = RARLHF_SOURCE_DIR;
inline const std::string kBinary = std::string(RARLHF_BINARY_DIR) + "/rarlhf";

// True when every file (relative to the repo root) exists: the npm assets of scripts/fetch_assets.sh.
inline bool have_files(std::initializer_list<const char*> files) {
  for (const char* f : files)
    if (!std::filesystem::exists(kRoot + "/" + f)) return false;
  return true;
}

inline std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `rarlhf <args>` from the repo root with stdout and stderr to `log`; returns the exit status.
inline int run_cli(const std::string& args, const std::string& log) {
  const std::string cmd = "cd '" + kRoot + "' && '" + kBinary + "' " + args + " > '" + log + "' 2>&1";
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));  // throws on a malformed row
  }
  return rows;
}

}  // namespace rarlhf::testing
