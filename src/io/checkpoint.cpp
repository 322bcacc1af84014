// Checkpoint folders: see include/rarlhf/io/checkpoint.h.
#include "rarlhf/io/checkpoint.h"

#include <torch/optim/optimizer.h>
#include <torch/serialize.h>

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"

namespace rarlhf {
namespace fs = std::filesystem;

namespace {

std::string state_path(const std::string& dir) { return dir + "/trainer_state.json"; }

// LibTorch's message without its backtrace, first line only.
std::string short_message(const c10::Error& e) {
  std::string m = e.what_without_backtrace();
  return m.substr(0, m.find('\n'));
}

const nlohmann::json& state_field(const nlohmann::json& state, const std::string& dir, const std::string& key) {
  auto it = state.find(key);
  if (it == state.end()) {
    throw IoError(state_path(dir) + ": no \"" + key + "\"; the checkpoint is damaged: restore it or start a "
                  "new run.out_dir");
  }
  return *it;
}

}  // namespace

void write_checkpoint(const std::string& out_dir, const std::function<void(const std::string& dir)>& write_files) {
  const std::string dir = out_dir + "/checkpoint", tmp = dir + ".tmp", old = dir + ".old";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  make_dirs(tmp);
  try {
    write_files(tmp);
    fsync_tree(tmp);  // every byte of the new checkpoint is on disk before it replaces the old one
  } catch (...) {
    fs::remove_all(tmp, ec);  // a failed write (e.g. disk full) leaves nothing half-written behind
    throw;
  }
  fs::remove_all(old, ec);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fsync_path(out_dir);
  fs::remove_all(old, ec);
}

std::string find_checkpoint(const std::string& out_dir) {
  for (const char* name : {"/checkpoint", "/checkpoint.old"}) {
    const std::string dir = out_dir + name;
    if (fs::exists(state_path(dir))) return dir;
  }
  return "";
}

nlohmann::json read_trainer_state(const std::string& dir) {
  nlohmann::json state = nlohmann::json::parse(read_file(state_path(dir)), nullptr, /*allow_exceptions=*/false);
  if (!state.is_object()) {
    throw IoError(state_path(dir) + ": not a JSON object; the checkpoint is damaged: restore it or start a new "
                  "run.out_dir");
  }
  return state;
}

int64_t state_int(const nlohmann::json& state, const std::string& dir, const std::string& key, int64_t lo,
                  int64_t hi) {
  const nlohmann::json& v = state_field(state, dir, key);
  if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
    throw IoError(state_path(dir) + ": \"" + key + "\" is " + v.dump() + ", expected an integer in [" +
                  std::to_string(lo) + ", " + std::to_string(hi) + "]; the checkpoint is damaged");
  }
  return v.get<int64_t>();
}

double state_double(const nlohmann::json& state, const std::string& dir, const std::string& key) {
  const nlohmann::json& v = state_field(state, dir, key);
  if (!v.is_number()) {
    throw IoError(state_path(dir) + ": \"" + key + "\" is " + v.dump() + ", expected a number; the checkpoint "
                  "is damaged");
  }
  return v.get<double>();
}

void expect_same_setting(const nlohmann::json& state, const std::string& dir, const std::string& key, int64_t now,
                         const std::string& setting) {
  const nlohmann::json& v = state_field(state, dir, key);
  if (!v.is_number_integer() || v.get<int64_t>() != now) {
    throw ConfigError(dir + ": the checkpoint was written with " + setting + " = " + v.dump() + " but this run has " +
                      std::to_string(now) + "; resume with the same config and data, or use a new run.out_dir");
  }
}

void save_optimizer(torch::optim::Optimizer& optimizer, const std::string& path) {
  // LibTorch's own file writer throws from its destructor when the disk fills (std::terminate,
  // exit 134). Its bytes come to this function instead, which never fails inside LibTorch: the
  // first write error is kept, the rest skipped, and reported once the archive is complete.
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(path + ": cannot open for writing (" + std::strerror(errno) + "); check run.out_dir");
  std::string error;
  const auto sink = [&](const void* data, size_t size) -> size_t {
    if (error.empty()) {
      try {
        write_all(fd, data, size, path);
      } catch (const IoError& e) {
        error = e.what();
      }
    }
    return size;
  };
  try {
    torch::save(optimizer, sink);
  } catch (const c10::Error& e) {
    if (error.empty()) error = path + ": cannot write the optimiser state (" + short_message(e) + ")";
  }
  if (error.empty() && ::fsync(fd) != 0 && errno != EINVAL) error = path + ": fsync failed (" + std::strerror(errno) + ")";
  ::close(fd);
  if (!error.empty()) throw IoError(error + "; check the free space of run.out_dir");
}

void load_optimizer(torch::optim::Optimizer& optimizer, const std::string& path) {
  try {
    torch::load(optimizer, path);
  } catch (const c10::Error& e) {
    throw IoError(path + ": cannot read the optimiser state (" + short_message(e) +
                  "); the checkpoint is damaged or from another model: restore it or start a new run.out_dir");
  }
}

}  // namespace rarlhf
