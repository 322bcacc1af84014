// metrics.jsonl writer: see include/rarlhf/common/metrics.h.
#include "rarlhf/common/metrics.h"

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/text_lines.h"

namespace rarlhf {

MetricsWriter::MetricsWriter(const std::string& path, int64_t keep_below, const std::string& key)
    : path_(path) {
  std::string kept;
  int64_t kept_count = 0;
  if (keep_below >= 0 && file_exists(path)) {
    for_each_line(read_file(path), [&](int64_t, const std::string& line) {
      nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded()) return false;  // a torn last line from a killed run
      if (j.contains(key) && j[key].is_number_integer() && j[key].get<int64_t>() < keep_below) {
        kept += line + "\n";
        ++kept_count;
      }
      return true;
    });
    // One record per unit before the resumed one (SFT also logs its step-0 eval: one more).
    if (kept_count < keep_below) {
      RARLHF_LOG_WARN("{}: {} record(s) before {} {} are missing (lost before this resume); the run goes on "
                      "from the checkpoint", path, keep_below - kept_count, key, keep_below);
    }
  }
  write_file_atomic(path, kept);
  out_ = std::make_unique<AppendFile>(path);
}

void MetricsWriter::write(const nlohmann::json& record) { out_->append(record.dump() + "\n"); }

}  // namespace rarlhf
