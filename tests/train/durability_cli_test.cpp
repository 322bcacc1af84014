// What a run leaves on disk when things go wrong, through the real `rarlhf train`: a second trainer
// on a folder in use stops at once with one line naming the holder and writes nothing there; a disk
// that fills up mid-run (a small tmpfs, then a filler file) fails the run with exit 1 and one line
// naming the file — never exit 0 or DONE with metrics missing — keeps the last checkpoint whole and
// no checkpoint.tmp, and once space is back `--resume` finishes with every iteration logged once.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <nlohmann/json.hpp>

#include "rarlhf/common/fs.h"
#include "support/files.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/tiny_policy.h"

using namespace rarlhf;
namespace fs = std::filesystem;
using rarlhf::testing::run;
using rarlhf::testing::spawn;
using rarlhf::testing::wait_for;
using rarlhf::testing::wait_lines;

namespace {

const std::string kBin = rarlhf::testing::rarlhf_binary();

class DurabilityCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kBin)) GTEST_SKIP() << "build the rarlhf target first";
    if (!fs::exists(rarlhf::testing::shared_data("tiny-gpt2-vocab21/vocab.json"))) GTEST_SKIP() << "needs ../shared/data";
    tmp_.emplace("durability");
  }
  std::vector<std::string> train(const std::string& cfg, const std::string& out,
                                 const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> argv = {kBin, "train", "--config", cfg, "--set", "run.out_dir=" + out};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }
  std::optional<rarlhf::testing::TempDir> tmp_;
};

std::vector<int64_t> iterations_of(const std::string& metrics) {
  std::vector<int64_t> out;
  for (const auto& j : rarlhf::testing::read_jsonl(metrics)) out.push_back(j.at("iteration").get<int64_t>());
  return out;
}

// The error lines ("rarlhf: error: ...") of a log.
std::vector<std::string> error_lines(const std::string& log) {
  std::vector<std::string> out;
  std::istringstream in(read_file(log));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("rarlhf: error: ", 0) == 0) out.push_back(line);
  }
  return out;
}

}  // namespace

TEST_F(DurabilityCliTest, ASecondTrainerOnAFolderInUseStopsAtOnce) {
  const std::string root = tmp_->path();
  const std::string cfg = rarlhf::testing::write_tiny_rl_run(root, 100000);
  const std::string out = root + "/run";
  const pid_t first = spawn(train(cfg, out), {}, root + "/first.log");
  ASSERT_TRUE(wait_lines(out + "/metrics.jsonl", 1, first)) << read_file(root + "/first.log");
  const std::string config_before = read_file(out + "/config.json");
  ASSERT_EQ(run(train(cfg, out, {"--set", "ppo.learning_rate=0.5"}), {}, root + "/second.log", 120), 1)
      << read_file(root + "/second.log");
  const auto errors = error_lines(root + "/second.log");
  ASSERT_EQ(errors.size(), 1u) << read_file(root + "/second.log");
  EXPECT_NE(errors[0].find(out + ": run folder in use by another rarlhf (rarlhf train, pid " + std::to_string(first)),
            std::string::npos)
      << errors[0];
  EXPECT_EQ(read_file(out + "/config.json"), config_before) << "the second run must not touch the folder";
  kill(first, SIGTERM);  // the first goes on undisturbed and stops as asked
  EXPECT_EQ(wait_for(first, std::chrono::seconds(120)), 0) << read_file(root + "/first.log");
  EXPECT_TRUE(fs::exists(out + "/checkpoint/trainer_state.json"));
  const auto its = iterations_of(out + "/metrics.jsonl");
  for (size_t i = 0; i < its.size(); ++i) EXPECT_EQ(its[i], static_cast<int64_t>(i));
}

TEST_F(DurabilityCliTest, ADiskThatFillsUpFailsTheRunAndResumeFinishesIt) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  const std::string root = tmp_->path();
  const int64_t iterations = 12;
  const std::string cfg = rarlhf::testing::write_tiny_rl_run(root, iterations);
  const std::string disk = root + "/disk";
  fs::create_directories(disk);
  if (::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=4m") != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
  struct Unmount {
    std::string dir;
    ~Unmount() { ::umount2(dir.c_str(), MNT_DETACH); }
  } unmount{disk};
  const std::string out = disk + "/run";
  const std::vector<std::string> every = {"--set", "run.save_every=1"};
  const pid_t pid = spawn(train(cfg, out, every), {}, root + "/full.log");
  ASSERT_TRUE(wait_lines(out + "/metrics.jsonl", 3, pid)) << read_file(root + "/full.log");
  {  // fill what is left of the 4 MB
    std::ofstream filler(disk + "/filler", std::ios::binary);
    const std::string block(64 * 1024, 'x');
    while (filler.write(block.data(), block.size())) {
    }
  }
  const int rc = wait_for(pid, std::chrono::seconds(120));
  const std::string log = read_file(root + "/full.log");
  ASSERT_EQ(rc, 1) << "a run that cannot write must fail:\n" << log;
  const auto errors = error_lines(root + "/full.log");
  ASSERT_EQ(errors.size(), 1u) << log;
  EXPECT_NE(errors[0].find("No space left on device"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find(out + "/"), std::string::npos) << "names the file: " << errors[0];
  EXPECT_FALSE(fs::exists(out + "/DONE"));
  EXPECT_FALSE(fs::exists(out + "/checkpoint.tmp")) << "nothing half-written left behind";
  ASSERT_TRUE(fs::exists(out + "/checkpoint/trainer_state.json"));
  const int64_t at = nlohmann::json::parse(read_file(out + "/checkpoint/trainer_state.json"))["iteration"].get<int64_t>();
  EXPECT_GE(at, 1);
  EXPECT_GE(static_cast<int64_t>(iterations_of(out + "/metrics.jsonl").size()), at)
      << "the log is durable up to its checkpoint";

  fs::remove(disk + "/filler");  // space is back
  ASSERT_EQ(run(train(cfg, out, {"--set", "run.save_every=1", "--resume"}), {}, root + "/resume.log", 180), 0)
      << read_file(root + "/resume.log");
  EXPECT_TRUE(fs::exists(out + "/DONE"));
  std::vector<int64_t> want(iterations);
  for (int64_t i = 0; i < iterations; ++i) want[i] = i;
  EXPECT_EQ(iterations_of(out + "/metrics.jsonl"), want) << "every iteration once, none lost, none twice";
}
