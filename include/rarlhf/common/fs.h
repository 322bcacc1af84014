// Small file helpers: whole-file reads with clear errors, atomic writes (temp file in the same
// directory, fsync, rename, fsync of the directory) so that neither a crash nor a power loss leaves a
// half-written output behind, and checked, durable appends (metrics.jsonl).
#pragma once
#include <functional>
#include <ostream>
#include <string>

namespace rarlhf {

// Reads the whole file; throws IoError naming the path when it cannot.
std::string read_file(const std::string& path);

// Writes `content` to `path` atomically (path.tmp.<pid> then rename). Creates parent dirs.
void write_file_atomic(const std::string& path, const std::string& content);

// Streams into a temp file via `writer`, then renames onto `path`. On exception the temp is removed.
void write_file_atomic(const std::string& path, const std::function<void(std::ostream&)>& writer);

// Creates a directory and its parents; throws IoError when it cannot.
void make_dirs(const std::string& path);

bool file_exists(const std::string& path);

// fsync of a file or a directory (its entries: renames into it); IoError naming the path on failure.
// File systems that cannot sync a directory (EINVAL) are accepted.
void fsync_path(const std::string& path);
// fsync of every regular file under `dir`, then of every directory (deepest first).
void fsync_tree(const std::string& dir);

// Writes all of `data` to `fd` (retrying short writes and EINTR); IoError "<path>: write failed
// (<errno text>)" otherwise (ENOSPC: "No space left on device").
void write_all(int fd, const void* data, size_t size, const std::string& path);

// Stray temporaries of write_file_atomic (NAME.tmp.<pid>) left directly in `dir` by a process that
// was killed while writing: removed; returns how many. Call before a run writes into `dir`.
int remove_stray_temp_files(const std::string& dir);

// An append-only file whose every append is written in full or fails with IoError, the file cut
// back to its size before that append (never a torn record, nor a broken stream that silently
// drops what follows), and that can be fsynced (at checkpoints).
class AppendFile {
 public:
  explicit AppendFile(const std::string& path);  // opens (creates) for appending; IoError when it cannot
  ~AppendFile();
  AppendFile(const AppendFile&) = delete;
  AppendFile& operator=(const AppendFile&) = delete;
  void append(const std::string& bytes);
  void sync();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

// An exclusive lock on a run folder (flock on DIR/.rarlhf.lock, which names the holder: command,
// pid, host, start time), held until destruction or process exit — the kernel drops it when the
// holder dies, so a killed run never leaves a lock that blocks the next one; its leftover holder
// line is only reported. A folder locked by another live process: IoError naming it and the holder.
class DirLock {
 public:
  DirLock() = default;  // holds nothing (ranks other than 0)
  DirLock(const std::string& dir, const std::string& command);
  ~DirLock();
  DirLock(DirLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  DirLock& operator=(DirLock&& other) noexcept;
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace rarlhf
