// metrics.jsonl writer: one JSON object per line, written through to the file per record so that a
// killed run keeps everything logged so far; a record that cannot be written in full (disk full)
// is an IoError that stops the run, never a silently truncated file; sync() (at checkpoints) makes
// everything up to the checkpoint durable. On resume the file is cut back to the records before the
// resumed step (a torn last line is dropped), so an interrupted + resumed run leaves the same file
// as an uninterrupted one; records missing before that step are reported.
#pragma once
#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "rarlhf/common/fs.h"

namespace rarlhf {

class TensorBoardWriter;

class MetricsWriter {
 public:
  // keep_below >= 0: keep existing records whose `key` < keep_below (resume); -1: start afresh.
  // tensorboard_dir non-empty: every record's numbers (booleans and nulls aside) also go to a
  // TensorBoard event file there, tag = the record's key, step = its `key` field; a resumed writer
  // starts its file with a SessionLog START at keep_below, so TensorBoard drops the stopped run's
  // later points as this file drops its later records.
  MetricsWriter(const std::string& path, int64_t keep_below = -1, const std::string& key = "iteration",
                const std::string& tensorboard_dir = "");
  ~MetricsWriter();
  void write(const nlohmann::json& record);
  void sync();
  const std::string& path() const { return path_; }

 private:
  std::string path_, key_;
  std::unique_ptr<AppendFile> out_;
  std::unique_ptr<TensorBoardWriter> tensorboard_;
};

}  // namespace rarlhf
