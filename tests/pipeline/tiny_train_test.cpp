// `rarlhf train --config configs/tiny.json`: the small CPU config a user runs first, here cut to a few
// iterations in a temp folder. Checks it trains offline end to end from a random-init policy
// (ppo.from_scratch), that the frozen reference is exactly that initial policy (first-iteration KL is
// 0), that --resume continues the run, and that a from-scratch run without config.json is a one-line
// error. Needs assets/ (scripts/fetch_assets.sh).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "cli_util.h"
#include "rarlhf/model/gpt2.h"

namespace fs = std::filesystem;
using nlohmann::json;
using rarlhf::Policy;
using rarlhf::init_policy;
using rarlhf::load_policy;

namespace {

using rarlhf::testing::kRoot;
using rarlhf::testing::read_jsonl;
using rarlhf::testing::run_cli;
using rarlhf::testing::slurp;

bool have_assets() {
  return rarlhf::testing::have_files({"assets/gpt2/encoder.json", "assets/gpt2/vocab.bpe",
                                      "assets/vader/vader_lexicon.txt", "assets/uci/imdb.json"});
}

class TinyTrainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_assets()) GTEST_SKIP() << "assets/ missing; run scripts/fetch_assets.sh";
    root_ = (fs::temp_directory_path() / ("rarlhf_tiny_" + std::to_string(::getpid()))).string();
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
  }
  std::string root_;
};

TEST_F(TinyTrainTest, TrainsFromScratchAndResumes) {
  const std::string out = root_ + "/run";
  const std::string common = "train --config configs/tiny.json --set run.out_dir='\"" + out +
                             "\"' --set run.threads=2 --set run.save_every=2";
  ASSERT_EQ(run_cli(common + " --set ppo.total_iterations=3", root_ + "/a.log"), 0) << slurp(root_ + "/a.log");
  auto rows = read_jsonl(out + "/metrics.jsonl");
  ASSERT_EQ(rows.size(), 3u) << slurp(root_ + "/a.log");
  // The reference is a copy of the random initial policy: the first rollout comes from that same policy.
  EXPECT_EQ(rows[0]["objective/kl"].get<double>(), 0.0);
  EXPECT_NE(rows[1]["objective/kl"].get<double>(), 0.0);  // the policy moved (k1 can be negative on a sample)
  for (const auto& r : rows) {
    EXPECT_EQ(r["env/response_length"].get<double>(), 12.0);  // min_new_tokens = max_new_tokens = 12
    EXPECT_EQ(r["risk/keep_count"].get<int64_t>(), 32);        // risk.n = 5: full batch for m <= 5
  }
  EXPECT_TRUE(fs::exists(out + "/DONE"));
  EXPECT_EQ(json::parse(slurp(out + "/checkpoint/trainer_state.json"))["iteration"].get<int64_t>(), 3);
  // The written policy is a loadable Hugging Face directory with the trained weights.
  Policy p = load_policy(out + "/policy", "float32", torch::kCPU);
  Policy init;
  {
    torch::manual_seed(42);  // configs/base.json run.seed: what ppo.from_scratch drew the weights from
    init = init_policy(kRoot + "/configs/models/demo-gpt2", "float32", torch::kCPU);
  }
  EXPECT_EQ(p.lm->config().n_layer, 2);
  const auto names = p.lm->named_parameters();
  const auto init_names = init.lm->named_parameters();
  ASSERT_EQ(names.size(), init_names.size());
  bool moved = false;
  for (const auto& kv : names) moved |= !torch::equal(kv.value(), init_names[kv.key()]);
  EXPECT_TRUE(moved) << "the saved policy equals the initial weights";

  // --resume with a larger budget continues from iteration 3 instead of starting again.
  ASSERT_EQ(run_cli(common + " --set ppo.total_iterations=4 --resume", root_ + "/b.log"), 0) << slurp(root_ + "/b.log");
  rows = read_jsonl(out + "/metrics.jsonl");
  ASSERT_EQ(rows.size(), 4u) << slurp(root_ + "/b.log");
  EXPECT_EQ(rows[3]["iteration"].get<int64_t>(), 3);
}

// configs/tiny-llama.json (a random GQA Llama), and the GPT-J / GPT-NeoX shapes through the same
// config: RA-RLHF runs end to end, and a run stopped after 2 iterations and resumed to 3 ends with the
// same metrics and the same policy bytes as an uninterrupted 3-iteration run.
TEST_F(TinyTrainTest, OtherFamiliesTrainAndResumeExactly) {
  for (const std::string family : {"llama", "gptj", "neox"}) {
    SCOPED_TRACE(family);
    const std::string base = "train --config configs/tiny-llama.json --set model.path='\"configs/models/tiny-" + family +
                             "\"' --set run.threads=2 --set run.save_every=1 --set risk.n=1";
    const std::string a = root_ + "/" + family + "_a", b = root_ + "/" + family + "_b";
    ASSERT_EQ(run_cli(base + " --set run.out_dir='\"" + a + "\"' --set ppo.total_iterations=3", root_ + "/fa.log"), 0)
        << slurp(root_ + "/fa.log");
    ASSERT_EQ(run_cli(base + " --set run.out_dir='\"" + b + "\"' --set ppo.total_iterations=2", root_ + "/fb.log"), 0)
        << slurp(root_ + "/fb.log");
    ASSERT_EQ(run_cli(base + " --set run.out_dir='\"" + b + "\"' --set ppo.total_iterations=3 --resume", root_ + "/fc.log"),
              0)
        << slurp(root_ + "/fc.log");
    auto ra = read_jsonl(a + "/metrics.jsonl"), rb = read_jsonl(b + "/metrics.jsonl");
    ASSERT_EQ(ra.size(), 3u);
    ASSERT_EQ(rb.size(), 3u);
    EXPECT_LT(ra[2]["risk/keep_count"].get<int64_t>(), 32);  // risk.n = 1: the soft-risk schedule has started
    for (size_t i = 0; i < 3; ++i) {
      for (const char* k : {"objective/kl", "objective/scores", "loss/policy_avg", "risk/keep_count"}) {
        EXPECT_EQ(ra[i][k], rb[i][k]) << "iteration " << i << " " << k;
      }
    }
    EXPECT_EQ(slurp(a + "/policy/model.safetensors"), slurp(b + "/policy/model.safetensors"));
    Policy p = load_policy(a + "/policy", "float32", torch::kCPU);
    EXPECT_EQ(p.lm->config().model_type, family == "neox" ? "gpt_neox" : family);
  }
}

TEST_F(TinyTrainTest, FromScratchWithoutConfigJsonIsAOneLineError) {
  fs::create_directories(root_ + "/empty");
  const std::string args = "train --config configs/tiny.json --set run.out_dir='\"" + root_ + "/run\"' --set model.path='\"" +
                           root_ + "/empty\"'";
  ASSERT_EQ(run_cli(args, root_ + "/e.log"), 1);
  const std::string log = slurp(root_ + "/e.log");
  EXPECT_NE(log.find("rarlhf: error: " + root_ + "/empty/config.json: missing"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(root_ + "/run/metrics.jsonl"));
}

TEST_F(TinyTrainTest, BadCpuLinearSettingIsAOneLineErrorBeforeAnythingIsWritten) {
  ::setenv("RARLHF_CPU_LINEAR", "sse9", 1);
  const int rc = run_cli("train --config configs/tiny.json --set run.out_dir='\"" + root_ + "/run\"'", root_ + "/v.log");
  ::unsetenv("RARLHF_CPU_LINEAR");
  EXPECT_EQ(rc, 1);
  const std::string log = slurp(root_ + "/v.log");
  EXPECT_EQ(log, "rarlhf: error: RARLHF_CPU_LINEAR: unknown value 'sse9'; use off, avx2 or avx512 (or unset it)\n");
  EXPECT_FALSE(fs::exists(root_ + "/run"));
}

}  // namespace
