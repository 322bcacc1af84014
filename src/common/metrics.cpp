// metrics.jsonl writer: see include/rarlhf/common/metrics.h.
#include "rarlhf/common/metrics.h"

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/text_lines.h"

namespace rarlhf {

MetricsWriter::MetricsWriter(const std::string& path, int64_t keep_below, const std::string& key)
    : path_(path) {
  std::string kept;
  if (keep_below >= 0 && file_exists(path)) {
    for_each_line(read_file(path), [&](int64_t, const std::string& line) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) return false;  // a torn last line from a killed run
      if (j.contains(key) && j[key].is_number_integer() && j[key].get<int64_t>() < keep_below) {
        kept += line + "\n";
      }
      return true;
    });
  }
  write_file_atomic(path, kept);
  out_.open(path, std::ios::app);
  if (!out_) throw IoError(path + ": cannot open for appending");
}

void MetricsWriter::write(const nlohmann::json& record) {
  out_ << record.dump() << "\n";
  out_.flush();
}

}  // namespace rarlhf
