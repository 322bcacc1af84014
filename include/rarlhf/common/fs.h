// Small file helpers: whole-file reads with clear errors, and atomic writes (temp file in the
// same directory, fsync, rename) so that a crash never leaves a half-written output behind.
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

}  // namespace rarlhf
