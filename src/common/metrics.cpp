// metrics.jsonl writer: see include/rarlhf/common/metrics.h.
#include "rarlhf/common/metrics.h"

#include <cmath>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/tensorboard.h"
#include "rarlhf/common/text_lines.h"

namespace rarlhf {

MetricsWriter::MetricsWriter(const std::string& path, int64_t keep_below, const std::string& key,
                             const std::string& tensorboard_dir)
    : path_(path), key_(key) {
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
    // One record per unit before keep_below.
    if (kept_count < keep_below) {
      RARLHF_LOG_WARN("{}: {} record(s) before {} {} are missing (lost before this resume); the run goes on "
                      "from the checkpoint", path, keep_below - kept_count, key, keep_below);
    }
  }
  write_file_atomic(path, kept);
  out_ = std::make_unique<AppendFile>(path);
  if (!tensorboard_dir.empty()) tensorboard_ = std::make_unique<TensorBoardWriter>(tensorboard_dir, keep_below >= 0 ? keep_below : -1);
}

MetricsWriter::~MetricsWriter() = default;

void MetricsWriter::write(const nlohmann::json& record) {
  out_->append(record.dump() + "\n");
  if (!tensorboard_ || !record.contains(key_) || !record[key_].is_number_integer()) return;
  std::vector<std::pair<std::string, double>> values;
  for (auto it = record.begin(); it != record.end(); ++it) {
    if (it.key() == key_ || !it.value().is_number()) continue;
    const double v = it.value().get<double>();
    if (std::isfinite(v)) values.emplace_back(it.key(), v);  // NaN is null in the JSON: left out of both
  }
  tensorboard_->scalars(record[key_].get<int64_t>(), values);
}

void MetricsWriter::sync() {
  out_->sync();
  if (tensorboard_) tensorboard_->sync();
}

}  // namespace rarlhf
