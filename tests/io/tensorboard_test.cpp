// TensorBoard event files: CRC-32C against RFC 3720's test vectors; an Event's bytes worked by hand
// from the protobuf wire format; a file written by tensorboard's own EventFileWriter
// (tests/fixtures/tensorboard/golden.tfevents, scripts/check_tensorboard.py golden) read back;
// our writer's files read back, named in order, framing errors reported; and MetricsWriter's
// mirror of metrics.jsonl, resume included. (scripts/check_tensorboard.py run DIR checks a real
// run folder with tensorboard's EventAccumulator.)
#include "rarlhf/common/tensorboard.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/metrics.h"
#include "support/temp_dir.h"

namespace rarlhf {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::vector<std::string> event_files(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().filename().string().rfind("events.out.tfevents.", 0) == 0) out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) out += std::string{d[c >> 4], d[c & 15]} + " ";
  return out;
}

TEST(TensorBoard, Crc32cTestVectors) {
  const std::string digits = "123456789";
  EXPECT_EQ(crc32c(digits.data(), digits.size()), 0xE3069283u);
  const std::string zeros(32, '\0'), ones(32, '\xff');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720 B.4
  EXPECT_EQ(crc32c(ones.data(), ones.size()), 0x62A8AB43u);
  const uint32_t c = 0xE3069283u;
  EXPECT_EQ(masked_crc32c(digits.data(), digits.size()), ((c >> 15) | (c << 17)) + 0xa282ead8u);
}

// Event{wall_time: 1.5, step: 3, summary{value{tag: "a", simple_value: 0.25}}}, by hand:
// 09 <1.5 as little-endian double> | 10 03 | 2a 0a { 0a 08 { 0a 01 'a' | 15 <0.25f> } }.
TEST(TensorBoard, ScalarEventBytesByHand) {
  const std::string got = encode_scalar_event(1.5, 3, {{"a", 0.25}});
  const std::string expect = std::string("\x09\x00\x00\x00\x00\x00\x00\xf8\x3f", 9) + "\x10\x03" + "\x2a\x0a" +
                             "\x0a\x08" + "\x0a\x01" "a" + std::string("\x15\x00\x00\x80\x3e", 5);
  EXPECT_EQ(hex(got), hex(expect));
  // A record: length (8 bytes LE), masked CRC of the length, the payload, masked CRC of the payload.
  const std::string rec = frame_record(got);
  ASSERT_EQ(rec.size(), got.size() + 16);
  EXPECT_EQ(rec.substr(0, 8), std::string("\x17\0\0\0\0\0\0\0", 8));
  const uint32_t len_crc = masked_crc32c(rec.data(), 8), data_crc = masked_crc32c(got.data(), got.size());
  EXPECT_EQ(rec.substr(8, 4), std::string(reinterpret_cast<const char*>(&len_crc), 4));
  EXPECT_EQ(rec.substr(12, got.size()), got);
  EXPECT_EQ(rec.substr(12 + got.size()), std::string(reinterpret_cast<const char*>(&data_crc), 4));
}

TEST(TensorBoard, ReadsAFileTensorBoardWrote) {
  const auto c = read_event_file(std::string(RARLHF_SOURCE_DIR) + "/tests/fixtures/tensorboard/golden.tfevents");
  EXPECT_EQ(c.file_version, "brain.Event:2");
  EXPECT_EQ(c.session_starts, std::vector<int64_t>{2});
  ASSERT_EQ(c.scalars.size(), 7u);
  struct Want {
    const char* tag;
    int64_t step;
    double wall_time;
    float value;
  };
  const Want want[] = {{"loss/eval", 0, 1700000000.25, 3.5f},        {"loss/train", 1, 1700000001.5, 2.75f},
                       {"lr", 1, 1700000001.5, 1e-5f},               {"objective/kl", 1, 1700000001.5, -0.125f},
                       {"loss/train", 2, 1700000003.0, 2.5f},        {"env/reward_mean", 2, 1700000003.0, 123456.789f},
                       {"big/step", 40000000000, 1700000004.0, 7.0f}};
  for (size_t i = 0; i < 7; ++i) {
    EXPECT_EQ(c.scalars[i].tag, want[i].tag) << i;
    EXPECT_EQ(c.scalars[i].step, want[i].step) << i;
    EXPECT_EQ(c.scalars[i].wall_time, want[i].wall_time) << i;
    EXPECT_EQ(c.scalars[i].value, want[i].value) << i;
  }
}

TEST(TensorBoard, WriterFilesReadBackInOrderAndDamageIsReported) {
  TempDir d;
  {
    TensorBoardWriter w(d.path("tb"));
    w.scalars(0, {{"loss/eval", 3.25}});
    w.scalars(1, {{"loss/train", 2.0}, {"lr", 1e-5}});
  }
  {
    TensorBoardWriter w(d.path("tb"), /*resumed_step=*/1);  // same second: still named after the first
    w.scalars(2, {{"loss/train", 1.5}});
  }
  const auto files = event_files(d.path("tb"));
  ASSERT_EQ(files.size(), 2u);
  const auto a = read_event_file(files[0]), b = read_event_file(files[1]);
  EXPECT_EQ(a.file_version, "brain.Event:2");
  EXPECT_TRUE(a.session_starts.empty());
  ASSERT_EQ(a.scalars.size(), 3u);
  EXPECT_EQ(a.scalars[1].tag, "loss/train");
  EXPECT_EQ(a.scalars[1].step, 1);
  EXPECT_EQ(a.scalars[2].value, 1e-5f);
  EXPECT_EQ(b.session_starts, std::vector<int64_t>{1});
  ASSERT_EQ(b.scalars.size(), 1u);
  EXPECT_EQ(b.scalars[0].value, 1.5f);

  std::string bytes = read_file(files[0]);
  bytes[bytes.size() - 6] ^= 0x40;  // inside the last payload
  const std::string damaged = d.write("damaged.tfevents", bytes);
  try {
    read_event_file(damaged);
    FAIL() << "expected an IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("payload CRC mismatch"), std::string::npos) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind(damaged + ": record at byte ", 0), 0u) << e.what();
  }
  const std::string torn = d.write("torn.tfevents", read_file(files[0]).substr(0, bytes.size() - 3));
  EXPECT_THROW(read_event_file(torn), IoError);
}

// MetricsWriter mirrors each record's finite numbers (not its key, booleans, strings or NaN) under the
// record's own names; resumed at 2, the new file starts with a SessionLog START at 2.
TEST(TensorBoard, MetricsWriterMirrorsMetricsJsonl) {
  TempDir d;
  const std::string run = d.path("run");
  make_dirs(run);
  {
    MetricsWriter m(run + "/metrics.jsonl", -1, "iteration", run);
    m.write({{"iteration", 0}, {"objective/scores", 0.5}, {"ppo/updates", 4}, {"note", "x"}, {"flag", true}});
    m.write({{"iteration", 1}, {"objective/scores", std::nan("")}, {"objective/kl", 0.25}});
    m.write({{"iteration", 2}, {"objective/scores", 0.75}});
    m.sync();
  }
  {
    MetricsWriter m(run + "/metrics.jsonl", 2, "iteration", run);
    m.write({{"iteration", 2}, {"objective/scores", 0.875}});
  }
  const auto files = event_files(run);
  ASSERT_EQ(files.size(), 2u);
  const auto first = read_event_file(files[0]), second = read_event_file(files[1]);
  ASSERT_EQ(first.scalars.size(), 4u);
  EXPECT_EQ(first.scalars[0].tag, "objective/scores");
  EXPECT_EQ(first.scalars[1].tag, "ppo/updates");
  EXPECT_EQ(first.scalars[1].value, 4.0f);
  EXPECT_EQ(first.scalars[2].tag, "objective/kl");  // NaN scores of iteration 1 left out
  EXPECT_EQ(first.scalars[2].step, 1);
  EXPECT_EQ(first.scalars[3].step, 2);
  EXPECT_EQ(second.session_starts, std::vector<int64_t>{2});
  ASSERT_EQ(second.scalars.size(), 1u);
  EXPECT_EQ(second.scalars[0].value, 0.875f);
}

}  // namespace
}  // namespace rarlhf
