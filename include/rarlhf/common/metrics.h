// metrics.jsonl writer: one JSON object per line, flushed per record so that a killed run keeps
// everything logged so far. On resume the file is cut back to the records before the resumed
// step, so an interrupted + resumed run leaves the same file as an uninterrupted one.
#pragma once
#include <cstdint>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

namespace rarlhf {

class MetricsWriter {
 public:
  // keep_below >= 0: keep existing records whose `key` < keep_below (resume); -1: start afresh.
  MetricsWriter(const std::string& path, int64_t keep_below = -1, const std::string& key = "iteration");
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace rarlhf
