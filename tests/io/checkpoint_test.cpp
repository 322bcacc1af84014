// Checkpoint folders (include/rarlhf/io/checkpoint.h): the swap leaves checkpoint/ or
// checkpoint.old/ complete at every moment, a failed write keeps the previous checkpoint and leaves
// no temp folder, and damaged or foreign trainer states are one-line errors naming the file and key.
#include "rarlhf/io/checkpoint.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "support/temp_dir.h"

namespace fs = std::filesystem;
using namespace rarlhf;

namespace {

void write_state(const std::string& dir, const std::string& json) { write_file_atomic(dir + "/trainer_state.json", json); }

// The message of the exception `f` throws as E ("" when it throws nothing).
template <class E, class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Checkpoint, SwapReplacesThePreviousCheckpointAndFindPrefersIt) {
  rarlhf::testing::TempDir tmp("ckpt");
  const std::string out = tmp.path();
  EXPECT_EQ(find_checkpoint(out), "");
  write_checkpoint(out, [](const std::string& dir) { write_state(dir, R"({"iteration": 1})"); });
  write_checkpoint(out, [](const std::string& dir) { write_state(dir, R"({"iteration": 2})"); });
  EXPECT_EQ(find_checkpoint(out), out + "/checkpoint");
  EXPECT_EQ(read_trainer_state(out + "/checkpoint").at("iteration"), 2);
  EXPECT_FALSE(fs::exists(out + "/checkpoint.old"));
  EXPECT_FALSE(fs::exists(out + "/checkpoint.tmp"));
  // A crash between the two renames leaves only checkpoint.old/: that is the one to resume from.
  fs::rename(out + "/checkpoint", out + "/checkpoint.old");
  EXPECT_EQ(find_checkpoint(out), out + "/checkpoint.old");
}

TEST(Checkpoint, FailedWriteKeepsThePreviousOneAndNoTempFolder) {
  rarlhf::testing::TempDir tmp("ckpt");
  const std::string out = tmp.path();
  write_checkpoint(out, [](const std::string& dir) { write_state(dir, R"({"iteration": 1})"); });
  EXPECT_THROW(write_checkpoint(out,
                                [](const std::string& dir) {
                                  write_state(dir, R"({"iteration": 2})");
                                  throw IoError(dir + "/optimizer.pt: disk full");
                                }),
               IoError);
  EXPECT_EQ(read_trainer_state(out + "/checkpoint").at("iteration"), 1);
  EXPECT_FALSE(fs::exists(out + "/checkpoint.tmp"));
}

TEST(Checkpoint, DamagedStatesNameTheFileAndKey) {
  rarlhf::testing::TempDir tmp("ckpt");
  const std::string dir = tmp.path("checkpoint");
  fs::create_directories(dir);
  const std::string file = dir + "/trainer_state.json";
  write_state(dir, "{not json");
  EXPECT_NE(error_of<IoError>([&] { read_trainer_state(dir); }).find(file + ": not a JSON object"), std::string::npos);
  write_state(dir, "[1, 2]");
  EXPECT_THROW(read_trainer_state(dir), IoError);

  write_state(dir, R"({"iteration": -5, "big": 1000000000000, "text": "7", "beta": "x"})");
  const nlohmann::json st = read_trainer_state(dir);
  for (const char* key : {"iteration", "big", "text"}) {
    const std::string msg = error_of<IoError>([&] { state_int(st, dir, key, 0, 30); });
    EXPECT_NE(msg.find(file + ": \"" + key + "\""), std::string::npos) << msg;
    EXPECT_NE(msg.find("[0, 30]"), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_NE(error_of<IoError>([&] { state_int(st, dir, "seed", 0, 9); }).find("no \"seed\""), std::string::npos);
  EXPECT_NE(error_of<IoError>([&] { state_double(st, dir, "beta"); }).find("\"beta\""), std::string::npos);
  EXPECT_EQ(state_int(read_trainer_state(dir), dir, "iteration", -5, 0), -5);  // in range: accepted
}

TEST(Checkpoint, AnotherRunsSettingIsAConfigErrorNamingTheSetting) {
  rarlhf::testing::TempDir tmp("ckpt");
  const std::string dir = tmp.path();
  const nlohmann::json st = {{"seed", 3}};
  EXPECT_NO_THROW(expect_same_setting(st, dir, "seed", 3, "run.seed"));
  const std::string msg = error_of<ConfigError>([&] { expect_same_setting(st, dir, "seed", 4, "run.seed"); });
  EXPECT_NE(msg.find("run.seed = 3 but this run has 4"), std::string::npos) << msg;
}

TEST(Checkpoint, OptimizerStateErrorsNameTheFile) {
  rarlhf::testing::TempDir tmp("ckpt");
  torch::Tensor w = torch::zeros({3}, torch::requires_grad());
  torch::optim::Adam adam({w}, torch::optim::AdamOptions(0.1));
  w.sum().backward();
  adam.step();
  const std::string good = tmp.path("optimizer.pt");
  save_optimizer(adam, good);
  torch::optim::Adam again({w}, torch::optim::AdamOptions(0.1));
  EXPECT_NO_THROW(load_optimizer(again, good));
  const std::string bad = tmp.write("truncated.pt", read_file(good).substr(0, 40));
  const std::string msg = error_of<IoError>([&] { load_optimizer(again, bad); });
  EXPECT_EQ(msg.rfind(bad + ": cannot read the optimiser state", 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_THROW(save_optimizer(adam, tmp.path("no/such/dir/optimizer.pt")), IoError);
}
