// See temp_dir.h.
#include "support/temp_dir.h"

#include <unistd.h>

#include <atomic>
#include <fstream>

namespace rarlhf::testing {

TempDir::TempDir(const std::string& prefix) {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("rarlhf_" + prefix + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;  // a destructor must not throw: a folder left behind is harmless
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  auto p = path_ / name;
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << content;
  return p.string();
}

std::string TempDir::path(const std::string& name) const { return (name.empty() ? path_ : path_ / name).string(); }

std::string shared_data(const std::string& rel) {
  return std::string(RARLHF_SOURCE_DIR) + "/../shared/data/" + rel;
}

}  // namespace rarlhf::testing
