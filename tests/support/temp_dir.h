// Test support (linked into every test binary): a fresh temporary folder per test, removed with
// its contents at the end, and the paths of the shared offline test data (../shared/data).
#pragma once
#include <filesystem>
#include <string>

namespace rarlhf::testing {

class TempDir {
 public:
  // /tmp/rarlhf_<prefix>_<pid>_<n>: unique per process and per TempDir, emptied if it exists.
  explicit TempDir(const std::string& prefix = "test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Writes `content` (bytes as given) to dir/name, creating parent folders; returns the path.
  std::string write(const std::string& name, const std::string& content) const;
  // dir/name; the folder itself for "".
  std::string path(const std::string& name = "") const;

 private:
  std::filesystem::path path_;
};

// ../shared/data/<rel> beside the source tree.
std::string shared_data(const std::string& rel);

}  // namespace rarlhf::testing
