// TensorBoard event files, written without TensorFlow or protobuf: `tensorboard --logdir runs/` and
// its EventAccumulator read them as they read PyTorch's SummaryWriter output. The format (TensorFlow's
// record_writer and event.proto, documented by both projects):
//   a file = records; a record = u64 length (little endian), u32 masked CRC-32C of those 8 bytes,
//   the payload, u32 masked CRC-32C of the payload; masked(c) = ((c >> 15) | (c << 17)) + 0xa282ead8.
//   payload = an Event: 1 wall_time (double), 2 step (int64), 3 file_version (string, first record
//   "brain.Event:2"), 5 summary { repeated 1 value { 1 tag, 2 simple_value (float) } },
//   7 session_log { 1 status: START = 1 }.
// A resumed run opens a new file that starts with a SessionLog START at the resumed step: TensorBoard
// then drops the scalars an earlier file logged at or after that step (written after the last
// checkpoint of the interrupted run), as it does for TensorFlow's restarts. Torch-free.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rarlhf/common/fs.h"

namespace rarlhf {

// CRC-32C (Castagnoli), as TFRecord framing uses it; crc32c("123456789") == 0xE3069283.
uint32_t crc32c(const void* data, size_t size);
uint32_t masked_crc32c(const void* data, size_t size);

// One Event's protobuf bytes.
std::string encode_scalar_event(double wall_time, int64_t step, const std::vector<std::pair<std::string, double>>& values);
std::string encode_file_version_event(double wall_time);
std::string encode_session_start_event(double wall_time, int64_t step);
// A payload framed as one TFRecord.
std::string frame_record(const std::string& payload);

class TensorBoardWriter {
 public:
  // Creates dir/events.out.tfevents.<seconds>.<host>.<pid>.rarlhf, its timestamp later than any event
  // file already in dir (TensorBoard reads a folder's files in name order). resumed_step >= 0 writes
  // a SessionLog START at that step. IoError when the file cannot be created.
  TensorBoardWriter(const std::string& dir, int64_t resumed_step = -1);
  void scalars(int64_t step, const std::vector<std::pair<std::string, double>>& values);
  void sync() { out_->sync(); }
  const std::string& path() const { return out_->path(); }

 private:
  std::unique_ptr<AppendFile> out_;
};

// What a reader gets back from one event file (tests, tools): each scalar as (tag, step, value),
// plus the file version and the SessionLog START steps. IoError naming the file and offset when a
// record's length or CRC is wrong or a payload is not a well-formed Event.
struct EventFileContents {
  std::string file_version;
  std::vector<int64_t> session_starts;
  struct Scalar {
    std::string tag;
    int64_t step = 0;
    double wall_time = 0;
    float value = 0;
  };
  std::vector<Scalar> scalars;
};
EventFileContents read_event_file(const std::string& path);

}  // namespace rarlhf
