// End-to-end data parallelism through the product: `scripts/launch_local.sh 2 rarlhf train` on a
// tiny config writes the same metrics as one `rarlhf train` process; a rank killed mid-run makes its
// peer exit with a one-line error before the collective timeout runs out (no hang); SIGUSR1 to the
// launcher checkpoints every rank and `--resume` finishes the run; the launcher returns a failing
// rank's exit code. (The Slurm scripts: slurm_scripts_test.cpp.)
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>

#include "rarlhf/common/fs.h"
#include "rarlhf/dist/communicator.h"
#include "rarlhf/io/safetensors.h"
#include "rarlhf/model/gpt2.h"
#include "support/files.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/tiny_policy.h"

using namespace rarlhf;
namespace fs = std::filesystem;

namespace {

const std::string kSrc = RARLHF_SOURCE_DIR;
const std::string kBin = rarlhf::testing::rarlhf_binary();
const std::string kTokDir = rarlhf::testing::tiny_vocab_dir();
const std::string kLexicon = rarlhf::testing::shared_data("sentiment-lexicons/vader_lexicon.txt");

using rarlhf::testing::count_lines;
using rarlhf::testing::run;
using rarlhf::testing::spawn;
using rarlhf::testing::wait_for;
using rarlhf::testing::wait_lines;

// Without the wall-clock and the world-size-dependent keys.
std::vector<nlohmann::json> read_metrics(const std::string& path) {
  return rarlhf::testing::read_jsonl(path, {"time/", "dist/", "mem/"});
}

class DistCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTokDir + "/vocab.json") || !fs::exists(kLexicon)) GTEST_SKIP() << "needs ../shared/data";
    if (!fs::exists(kBin)) GTEST_SKIP() << "build the rarlhf target first";
    tmp_.emplace("distcli");
    root_ = tmp_->path();
  }
  // A tiny RA-RLHF config (tests/support/tiny_policy.h).
  std::string write_config(int64_t iterations) { return rarlhf::testing::write_tiny_rl_run(root_, iterations); }
  std::vector<std::string> train_cmd(const std::string& cfg, const std::string& out) {
    return {kBin, "train", "--config", cfg, "--set", "run.out_dir=" + out};
  }
  std::optional<rarlhf::testing::TempDir> tmp_;  // removed with the fixture
  std::string root_;
};

}  // namespace

namespace {

// Every metric of every iteration equal (integers) or within summation-order rounding (the rest).
void expect_same_metrics(const std::vector<nlohmann::json>& a, const std::vector<nlohmann::json>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t m = 0; m < a.size(); ++m) {
    for (auto it = a[m].begin(); it != a[m].end(); ++it) {
      ASSERT_TRUE(b[m].contains(it.key())) << it.key();
      if (it->is_number_integer()) {
        EXPECT_EQ(b[m][it.key()].get<int64_t>(), it->get<int64_t>()) << "iteration " << m << " " << it.key();
      } else {
        const double x = it->get<double>();
        EXPECT_NEAR(b[m][it.key()].get<double>(), x, 2e-4 * (1 + std::fabs(x))) << "iteration " << m << " " << it.key();
      }
    }
  }
}

}  // namespace

TEST_F(DistCliTest, LaunchLocalTwoRanksMatchesOneProcess) {
  if (!dist::c10d_available()) GTEST_SKIP() << "no c10d in this LibTorch";
  const std::string cfg = write_config(4);
  ASSERT_EQ(run(train_cmd(cfg, root_ + "/one"), {}, root_ + "/one.log"), 0) << read_file(root_ + "/one.log");
  std::vector<std::string> two = {kSrc + "/scripts/launch_local.sh", "2"};
  for (auto& a : train_cmd(cfg, root_ + "/two")) two.push_back(a);
  ASSERT_EQ(run(two, {{"RARLHF_DIST_TIMEOUT_S", "60"}}, root_ + "/two.log"), 0) << read_file(root_ + "/two.log");
  auto a = read_metrics(root_ + "/one/metrics.jsonl");
  auto b = read_metrics(root_ + "/two/metrics.jsonl");
  ASSERT_EQ(a.size(), 4u);
  ASSERT_EQ(b.size(), 4u);  // only rank 0 writes metrics
  expect_same_metrics(a, b);
  EXPECT_LT(a.back()["risk/keep_count"].get<int64_t>(), 16);  // RA-RLHF dropped episodes by then
  EXPECT_TRUE(fs::exists(root_ + "/two/DONE"));
  EXPECT_TRUE(fs::exists(root_ + "/two/policy/model.safetensors"));
  // Rank-0-only logging: the per-iteration line appears once per iteration, not twice.
  const std::string log = read_file(root_ + "/two.log");
  size_t lines = 0;
  for (size_t p = log.find("train: it "); p != std::string::npos; p = log.find("train: it ", p + 1)) ++lines;
  EXPECT_EQ(lines, 4u) << log;
}

// LoRA (issue #14) over two ranks: the adapters' (and value head's) gradients are what is summed, and
// two ranks train the same adapters as one process.
TEST_F(DistCliTest, LoraOverTwoRanksMatchesOneProcess) {
  if (!dist::c10d_available()) GTEST_SKIP() << "no c10d in this LibTorch";
  const std::string cfg = write_config(3);
  auto cmd = [&](const std::string& out) {
    auto c = train_cmd(cfg, out);
    for (const char* s : {"lora.r=4", "lora.alpha=16", "lora.target_modules=[\"c_attn\",\"c_fc\"]"}) {
      c.push_back("--set");
      c.push_back(s);
    }
    return c;
  };
  ASSERT_EQ(run(cmd(root_ + "/one"), {}, root_ + "/one.log"), 0) << read_file(root_ + "/one.log");
  std::vector<std::string> two = {kSrc + "/scripts/launch_local.sh", "2"};
  for (auto& a : cmd(root_ + "/two")) two.push_back(a);
  ASSERT_EQ(run(two, {{"RARLHF_DIST_TIMEOUT_S", "60"}}, root_ + "/two.log"), 0) << read_file(root_ + "/two.log");
  auto a = read_metrics(root_ + "/one/metrics.jsonl");
  auto b = read_metrics(root_ + "/two/metrics.jsonl");
  ASSERT_EQ(a.size(), 3u);
  expect_same_metrics(a, b);
  EXPECT_EQ(a[0]["objective/kl"].get<double>(), 0.0);  // the reference is the base: B = 0 at the start
  ASSERT_TRUE(fs::exists(root_ + "/two/policy/adapter_config.json"));
  EXPECT_FALSE(fs::exists(root_ + "/two/policy/model.safetensors"));
  const auto ta = load_safetensors(root_ + "/one/policy/adapter_model.safetensors");
  const auto tb = load_safetensors(root_ + "/two/policy/adapter_model.safetensors");
  ASSERT_EQ(ta.size(), 8u);  // A and B on c_attn and c_fc of 2 layers
  for (const auto& [k, t] : ta) EXPECT_LT((t - tb.at(k)).abs().max().item<double>(), 1e-4) << k;
}

TEST_F(DistCliTest, KilledRankMakesThePeerFailWithAnError) {
  if (!dist::c10d_available()) GTEST_SKIP() << "no c10d in this LibTorch";
  const std::string cfg = write_config(100000);
  const std::string port = std::to_string(20000 + ::getpid() % 20000);
  std::map<std::string, std::string> env = {{"WORLD_SIZE", "2"}, {"MASTER_ADDR", "127.0.0.1"},
                                            {"MASTER_PORT", port}, {"RARLHF_DIST_TIMEOUT_S", "20"}};
  env["RANK"] = "0";
  pid_t r0 = spawn(train_cmd(cfg, root_ + "/k"), env, root_ + "/r0.log");
  env["RANK"] = "1";
  pid_t r1 = spawn(train_cmd(cfg, root_ + "/k"), env, root_ + "/r1.log");
  // Let them train a few iterations, then kill rank 1 without warning.
  if (!wait_lines(root_ + "/k/metrics.jsonl", 2, r0)) {
    kill(r0, SIGKILL);
    kill(r1, SIGKILL);
    waitpid(r1, nullptr, 0);
    FAIL() << "rank 0 did not train two iterations:\n" << read_file(root_ + "/r0.log") << read_file(root_ + "/r1.log");
  }
  kill(r1, SIGKILL);
  waitpid(r1, nullptr, 0);
  const auto t_kill = std::chrono::steady_clock::now();
  const int rc = wait_for(r0, std::chrono::seconds(90));
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_kill).count();
  const std::string log = read_file(root_ + "/r0.log");
  ASSERT_NE(rc, -1) << "rank 0 hung after its peer died";
  EXPECT_EQ(rc, 1) << log;
  EXPECT_LT(took, 45.0);
  EXPECT_NE(log.find("rarlhf: error: distributed"), std::string::npos) << log;
}

TEST_F(DistCliTest, UsrOneToTheLauncherCheckpointsAndResumeFinishes) {
  if (!dist::c10d_available()) GTEST_SKIP() << "no c10d in this LibTorch";
  const std::string cfg = write_config(400);
  std::vector<std::string> cmd = {kSrc + "/scripts/launch_local.sh", "2"};
  for (auto& a : train_cmd(cfg, root_ + "/p")) cmd.push_back(a);
  pid_t launcher = spawn(cmd, {{"RARLHF_DIST_TIMEOUT_S", "60"}}, root_ + "/p1.log");
  if (!wait_lines(root_ + "/p/metrics.jsonl", 2, launcher)) {
    kill(launcher, SIGKILL);
    FAIL() << "the launcher did not train two iterations:\n" << read_file(root_ + "/p1.log");
  }
  kill(launcher, SIGUSR1);  // Slurm's --signal=USR1@120 does this to every task
  ASSERT_EQ(wait_for(launcher, std::chrono::seconds(120)), 0) << read_file(root_ + "/p1.log");
  ASSERT_TRUE(fs::exists(root_ + "/p/checkpoint/trainer_state.json"));
  EXPECT_FALSE(fs::exists(root_ + "/p/DONE"));
  const auto st = nlohmann::json::parse(read_file(root_ + "/p/checkpoint/trainer_state.json"));
  const int64_t stopped_at = st["iteration"].get<int64_t>();
  EXPECT_GE(stopped_at, 2);
  EXPECT_LT(stopped_at, 400);
  // Resume with fewer iterations left to keep the test short: same seed/batch, so the checkpoint is accepted.
  cmd.push_back("--resume");
  cmd.push_back("--set");
  cmd.push_back("ppo.total_iterations=" + std::to_string(stopped_at + 2));
  ASSERT_EQ(run(cmd, {{"RARLHF_DIST_TIMEOUT_S", "60"}}, root_ + "/p2.log"), 0) << read_file(root_ + "/p2.log");
  EXPECT_TRUE(fs::exists(root_ + "/p/DONE"));
  auto ms = read_metrics(root_ + "/p/metrics.jsonl");
  ASSERT_EQ(ms.size(), static_cast<size_t>(stopped_at + 2));
  for (size_t i = 0; i < ms.size(); ++i) EXPECT_EQ(ms[i]["iteration"].get<int64_t>(), static_cast<int64_t>(i));
}

TEST(LaunchLocal, ReturnsTheFailingRanksCodeAndStopsTheOthers) {
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = run({kSrc + "/scripts/launch_local.sh", "3", "sh", "-c",
                      "if [ \"$RANK\" = 2 ]; then exit 7; fi; sleep 60"},
                     {}, "/dev/null", 50);
  EXPECT_EQ(rc, 7);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0);
}

TEST(LaunchLocal, SetsTheRankEnvironment) {
  const std::string log = (fs::temp_directory_path() / ("rarlhf_ll_" + std::to_string(::getpid()))).string();
  ASSERT_EQ(run({kSrc + "/scripts/launch_local.sh", "2", "sh", "-c",
                 "sleep 0.$RANK; echo \"r=$RANK w=$WORLD_SIZE l=$LOCAL_RANK lw=$LOCAL_WORLD_SIZE a=$MASTER_ADDR p=$MASTER_PORT\""},
                {{"MASTER_PORT", "23456"}}, log, 30),
            0);
  const std::string out = read_file(log);
  fs::remove(log);
  EXPECT_NE(out.find("r=0 w=2 l=0 lw=2 a=127.0.0.1 p=23456"), std::string::npos) << out;
  EXPECT_NE(out.find("r=1 w=2 l=1 lw=2 a=127.0.0.1 p=23456"), std::string::npos) << out;
}
