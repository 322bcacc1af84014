// RFC 4180 CSV record reader: see include/rarlhf/data/csv.h.
#include "rarlhf/data/csv.h"

#include <utility>

#include "rarlhf/common/strings.h"

namespace rarlhf {

CsvReader::CsvReader(std::string content, std::string path)
    : content_(std::move(content)), path_(std::move(path)) {
  if (content_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
}

CsvReader::Status CsvReader::next(std::vector<std::string>& fields, std::string* error) {
  fields.clear();
  const std::string& s = content_;
  const size_t n = s.size();
  // Skip blank lines (an empty line is not a record with one empty field).
  while (pos_ < n && (s[pos_] == '\n' || (s[pos_] == '\r' && pos_ + 1 < n && s[pos_ + 1] == '\n'))) {
    pos_ += (s[pos_] == '\r') ? 2 : 1;
    ++line_;
  }
  if (pos_ >= n) return Status::kEnd;
  record_line_ = line_;

  std::string bad;  // first problem seen in this record; parsing continues to its end
  std::string field;
  bool record_done = false;
  while (!record_done) {
    field.clear();
    if (pos_ < n && s[pos_] == '"') {
      // Quoted field: runs to the next lone quote; "" is one quote; newlines are data.
      ++pos_;
      bool closed = false;
      while (pos_ < n) {
        char c = s[pos_];
        if (c == '"') {
          if (pos_ + 1 < n && s[pos_ + 1] == '"') {
            field += '"';
            pos_ += 2;
            continue;
          }
          ++pos_;
          closed = true;
          break;
        }
        if (c == '\n') ++line_;
        field += c;
        ++pos_;
      }
      if (!closed) {
        if (error) {
          *error = "unterminated quoted field (starts on line " + std::to_string(record_line_) +
                   ", runs to the end of the file)";
        }
        fields.push_back(field);
        end_line_ = line_ - (s[n - 1] == '\n' ? 1 : 0);
        return Status::kMalformed;
      }
      // After the closing quote only a separator or a line end may follow.
      if (pos_ < n && s[pos_] != ',' && s[pos_] != '\n' &&
          !(s[pos_] == '\r' && pos_ + 1 < n && s[pos_ + 1] == '\n') && !(s[pos_] == '\r' && pos_ + 1 == n)) {
        if (bad.empty()) {
          bad = "unexpected character '" + excerpt(std::string(1, s[pos_])) + "' after a closing quote in field " +
                std::to_string(fields.size() + 1) + " (a quote inside a quoted field must be doubled)";
        }
        while (pos_ < n && s[pos_] != ',' && s[pos_] != '\n') field += s[pos_++];
      } else if (pos_ < n && s[pos_] == '\r') {
        ++pos_;  // the CR of a CRLF line end right after the closing quote
      }
    } else {
      while (pos_ < n && s[pos_] != ',' && s[pos_] != '\n') field += s[pos_++];
    }
    // Drop the CR of a CRLF line end (it is data only inside quotes).
    if (pos_ < n && s[pos_] == '\n' && !field.empty() && field.back() == '\r') field.pop_back();
    if (pos_ >= n && !field.empty() && field.back() == '\r') field.pop_back();
    fields.push_back(field);
    if (pos_ >= n) {
      record_done = true;
    } else if (s[pos_] == ',') {
      ++pos_;
    } else {  // '\n'
      ++pos_;
      ++line_;
      record_done = true;
    }
  }
  end_line_ = line_ - (s[pos_ - 1] == '\n' ? 1 : 0);
  if (!bad.empty()) {
    if (error) *error = bad;
    return Status::kMalformed;
  }
  return Status::kRecord;
}

std::string csv_escape(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace rarlhf
