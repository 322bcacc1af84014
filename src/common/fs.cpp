// File helpers: see include/rarlhf/common/fs.h.
#include "rarlhf/common/fs.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "rarlhf/common/error.h"

namespace rarlhf {
namespace fs = std::filesystem;

std::string read_file(const std::string& path) {
  // An ifstream opens a directory without error on Linux and reads nothing: callers would see "".
  std::error_code dir_ec;
  if (fs::is_directory(path, dir_ec)) throw IoError(path + ": is a directory; expected a file");
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw IoError(path + ": cannot open for reading (" + std::strerror(errno) +
                  "); check the path");
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw IoError(path + ": read failed");
  return ss.str();
}

void make_dirs(const std::string& path) {
  if (path.empty()) return;
  std::error_code ec;
  fs::create_directories(path, ec);
  if (ec) throw IoError(path + ": cannot create directory (" + ec.message() + ")");
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return fs::exists(path, ec);
}

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& writer) {
  fs::path p(path);
  if (p.has_parent_path()) make_dirs(p.parent_path().string());
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    {
      std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
      if (!out) throw IoError(tmp + ": cannot open for writing (" + std::strerror(errno) + ")");
      writer(out);
      out.flush();
      if (!out) throw IoError(tmp + ": write failed (disk full?)");
    }
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) throw IoError(path + ": cannot rename temp file into place (" + ec.message() + ")");
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

void write_file_atomic(const std::string& path, const std::string& content) {
  write_file_atomic(path, [&](std::ostream& out) { out.write(content.data(), content.size()); });
}

}  // namespace rarlhf
