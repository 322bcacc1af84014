// File helpers: see include/rarlhf/common/fs.h.
#include "rarlhf/common/fs.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <regex>
#include <vector>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "rarlhf/common/error.h"
#include "rarlhf/common/log.h"

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

namespace {

// A write-only stream buffer over a file descriptor that keeps the first error with its errno
// (an ofstream only says that something failed) and stops writing after it.
class FdOut : public std::streambuf {
 public:
  explicit FdOut(const std::string& path) : path_(path), buf_(1 << 20) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw IoError(path + ": cannot open for writing (" + std::strerror(errno) + ")");
    setp(buf_.data(), buf_.data() + buf_.size());
  }
  ~FdOut() override {
    if (fd_ >= 0) ::close(fd_);
  }
  // Flushes, fsyncs and closes; IoError with the first failure.
  void finish() {
    drain();
    if (error_.empty() && ::fsync(fd_) != 0 && errno != EINVAL) error_ = path_ + ": fsync failed (" + std::strerror(errno) + ")";
    ::close(fd_);
    fd_ = -1;
    if (!error_.empty()) throw IoError(error_);
  }

 protected:
  int_type overflow(int_type ch) override {
    if (!drain()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  int sync() override { return drain() ? 0 : -1; }

 private:
  bool drain() {
    const size_t n = static_cast<size_t>(pptr() - pbase());
    if (n > 0 && error_.empty()) {
      try {
        write_all(fd_, pbase(), n, path_);
      } catch (const IoError& e) {
        error_ = e.what();
      }
    }
    setp(buf_.data(), buf_.data() + buf_.size());
    return error_.empty();
  }
  std::string path_;
  std::vector<char> buf_;
  int fd_ = -1;
  std::string error_;
};

}  // namespace

void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& writer) {
  fs::path p(path);
  if (p.has_parent_path()) make_dirs(p.parent_path().string());
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  try {
    {
      FdOut file(tmp);
      std::ostream out(&file);
      writer(out);
      out.flush();
      file.finish();  // the first write error, with its errno text; fsync: the bytes are on disk
    }                 // before the name points at them
    std::error_code ec;
    fs::rename(tmp, path, ec);
    if (ec) throw IoError(path + ": cannot rename temp file into place (" + ec.message() + ")");
    fsync_path(p.has_parent_path() ? p.parent_path().string() : ".");
  } catch (...) {
    std::remove(tmp.c_str());
    throw;
  }
}

void write_file_atomic(const std::string& path, const std::string& content) {
  write_file_atomic(path, [&](std::ostream& out) { out.write(content.data(), content.size()); });
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(path + ": cannot open to sync it (" + std::strerror(errno) + ")");
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EINVAL) throw IoError(path + ": fsync failed (" + std::strerror(err) + "); check the disk");
}

void fsync_tree(const std::string& dir) {
  std::vector<std::string> dirs = {dir};
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) fsync_path(e.path().string());
    if (e.is_directory()) dirs.push_back(e.path().string());
  }
  std::reverse(dirs.begin(), dirs.end());
  for (const auto& d : dirs) fsync_path(d);
}

void write_all(int fd, const void* data, size_t size, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw IoError(path + ": write failed (" + std::strerror(n < 0 ? errno : EIO) + ")");
    p += n;
    size -= static_cast<size_t>(n);
  }
}

int remove_stray_temp_files(const std::string& dir) {
  static const std::regex kTemp(R"(.+\.tmp\.[0-9]+)");
  int removed = 0;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return 0;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec) && std::regex_match(e.path().filename().string(), kTemp)) {
      removed += fs::remove(e.path(), ec) ? 1 : 0;
    }
  }
  return removed;
}

AppendFile::AppendFile(const std::string& path) : path_(path) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(path + ": cannot open for appending (" + std::strerror(errno) + ")");
}

AppendFile::~AppendFile() {
  if (fd_ >= 0) ::close(fd_);
}

void AppendFile::append(const std::string& bytes) {
  const off_t before = ::lseek(fd_, 0, SEEK_END);
  try {
    write_all(fd_, bytes.data(), bytes.size(), path_);
  } catch (const IoError&) {
    if (before >= 0) {  // no torn record left behind: cut back what part of it did get written
      const int rc = ::ftruncate(fd_, before);
      (void)rc;
    }
    throw;
  }
}

void AppendFile::sync() {
  if (::fsync(fd_) != 0 && errno != EINVAL) throw IoError(path_ + ": fsync failed (" + std::strerror(errno) + ")");
}

DirLock::DirLock(const std::string& dir, const std::string& command) {
  make_dirs(dir);
  const std::string path = dir + "/.rarlhf.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw IoError(path + ": cannot open the run folder's lock (" + std::strerror(errno) + ")");
  auto holder = [&] {
    char buf[512] = {0};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    std::string h(buf, n > 0 ? static_cast<size_t>(n) : 0);
    while (!h.empty() && (h.back() == '\n' || h.back() == ' ')) h.pop_back();
    return h;
  };
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EWOULDBLOCK) {
      const std::string h = holder();
      ::close(fd_);
      fd_ = -1;
      throw IoError(dir + ": run folder in use by another rarlhf (" + (h.empty() ? "holder unknown" : h) +
                    "); wait for it to finish or stop it, or choose another run.out_dir");
    }
    // Some network file systems have no locks (ENOLCK): say so and go on unprotected.
    RARLHF_LOG_WARN("{}: cannot lock the run folder ({}); make sure no other run writes into it", path,
                    std::strerror(err));
    return;
  }
  const std::string previous = holder();
  if (!previous.empty()) {
    RARLHF_LOG_INFO("{}: the previous run ({}) ended without releasing its lock (killed?); taking over", path, previous);
  }
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  char when[32];
  const std::time_t now = std::time(nullptr);
  std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  const std::string me = command + ", pid " + std::to_string(::getpid()) + " on " + host + " since " + when + "\n";
  if (::ftruncate(fd_, 0) == 0) write_all(fd_, me.data(), me.size(), path);
}

DirLock::~DirLock() {
  if (fd_ < 0) return;
  const int rc = ::ftruncate(fd_, 0);  // released cleanly: no holder line left behind
  (void)rc;
  ::close(fd_);  // drops the flock
}

DirLock& DirLock::operator=(DirLock&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

}  // namespace rarlhf
