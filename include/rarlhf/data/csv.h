// RFC 4180 CSV records: quoted fields with embedded commas, newlines and doubled quotes, CRLF or
// LF line ends. Used by the csv / jigsaw_csv dataset readers. A malformed record (text after a
// closing quote, an unterminated quote) is reported, not thrown, so callers can skip or fail.
// Unquoted fields are taken literally, as Python's csv module does (a lone '"' inside is data).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rarlhf {

class CsvReader {
 public:
  enum class Status { kRecord, kMalformed, kEnd };

  // `content` is the whole file (a leading UTF-8 BOM is skipped); `path` names it in messages.
  CsvReader(std::string content, std::string path);

  // Reads the next record into `fields`. Blank lines are skipped. On kMalformed, `error` says
  // why and the reader has moved past the bad record (to the end of its line, or the file for
  // an unterminated quote).
  Status next(std::vector<std::string>& fields, std::string* error = nullptr);

  // 1-based line on which the record last returned by next() starts.
  int64_t line() const { return record_line_; }
  // 1-based line on which that record ends (> line() when a quoted field holds line breaks).
  int64_t end_line() const { return end_line_; }
  const std::string& path() const { return path_; }

 private:
  std::string content_;
  std::string path_;
  size_t pos_ = 0;
  int64_t line_ = 1;         // line at pos_
  int64_t record_line_ = 0;
  int64_t end_line_ = 0;
};

// Quotes a field for writing when it contains a comma, quote, CR or LF.
std::string csv_escape(const std::string& field);

}  // namespace rarlhf
