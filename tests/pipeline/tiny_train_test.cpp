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

// LoRA through the CLI (issue #14) on the tiny Llama, its base weights in bfloat16, with activation
// checkpointing: sft with adapters
// writes a PEFT adapter; train continues that adapter with it (frozen) as the reference, so iteration
// 0's KL is exactly 0; a run stopped after 2 iterations and resumed to 3 equals an uninterrupted one
// (metrics and adapter bytes); `export --merge` writes a plain checkpoint computing what base + adapter do.
TEST_F(TinyTrainTest, LoraSftThenTrainInBfloat16WithCheckpointingResumesExactlyAndMerges) {
  const std::string base = root_ + "/base";
  ASSERT_EQ(run_cli("train --config configs/tiny-llama.json --set run.threads=2 --set ppo.total_iterations=1 "
                    "--set run.out_dir='\"" + base + "\"'",
                    root_ + "/base.log"),
            0)
      << slurp(root_ + "/base.log");
  const std::string lora = " --set run.threads=2 --set ppo.from_scratch=false --set model.dtype='\"bfloat16\"'"
                           " --set model.gradient_checkpointing=true";
  const std::string sft = root_ + "/sft";
  ASSERT_EQ(run_cli("sft --config configs/tiny-llama.json" + lora + " --set lora.r=4 --set lora.alpha=8 "
                    "--set data.max_examples=40 --set sft.epochs=1 --set sft.batch_size=4 --set sft.seq_length=32 --set model.path='\"" +
                        base + "/policy\"' --set run.out_dir='\"" + sft + "\"'",
                    root_ + "/sft.log"),
            0)
      << slurp(root_ + "/sft.log");
  ASSERT_TRUE(fs::exists(sft + "/policy/adapter_config.json")) << slurp(root_ + "/sft.log");
  EXPECT_FALSE(fs::exists(sft + "/policy/model.safetensors"));
  const std::string train = "train --config configs/tiny-llama.json" + lora + " --set run.save_every=1 --set risk.n=1 "
                            "--set model.path='\"" + sft + "/policy\"'";
  const std::string a = root_ + "/lora_a", b = root_ + "/lora_b";
  ASSERT_EQ(run_cli(train + " --set run.out_dir='\"" + a + "\"' --set ppo.total_iterations=3", root_ + "/la.log"), 0)
      << slurp(root_ + "/la.log");
  ASSERT_EQ(run_cli(train + " --set run.out_dir='\"" + b + "\"' --set ppo.total_iterations=2", root_ + "/lb.log"), 0)
      << slurp(root_ + "/lb.log");
  ASSERT_EQ(run_cli(train + " --set run.out_dir='\"" + b + "\"' --set ppo.total_iterations=3 --resume", root_ + "/lc.log"),
            0)
      << slurp(root_ + "/lc.log");
  auto ra = read_jsonl(a + "/metrics.jsonl"), rb = read_jsonl(b + "/metrics.jsonl");
  for (auto* rows : {&ra, &rb}) {  // wall-clock times differ between runs
    for (auto& r : *rows) {
      for (auto it = r.begin(); it != r.end();) it = it.key().rfind("time/", 0) == 0 || it.key().rfind("mem/", 0) == 0 ? r.erase(it) : std::next(it);
    }
  }
  ASSERT_EQ(ra.size(), 3u);
  ASSERT_EQ(rb.size(), 3u);
  EXPECT_EQ(ra[0]["objective/kl"].get<double>(), 0.0);  // the reference is the SFT adapter itself
  EXPECT_NE(ra[2]["objective/kl"].get<double>(), 0.0);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(ra[i], rb[i]) << "iteration " << i;
  EXPECT_EQ(slurp(a + "/policy/adapter_model.safetensors"), slurp(b + "/policy/adapter_model.safetensors"));
  EXPECT_NE(slurp(a + "/policy/adapter_model.safetensors"), slurp(sft + "/policy/adapter_model.safetensors"));

  ASSERT_EQ(run_cli("export --merge -m '" + a + "/policy' -o '" + root_ + "/merged'", root_ + "/m.log"), 0)
      << slurp(root_ + "/m.log");
  Policy adapted = load_policy(a + "/policy", "float32", torch::kCPU);
  Policy merged = load_policy(root_ + "/merged", "float32", torch::kCPU);
  ASSERT_TRUE(adapted.lm->lora());
  ASSERT_FALSE(merged.lm->lora());
  torch::NoGradGuard g;
  const auto ids = torch::tensor({{464, 3290, 373, 257, 1049, 2646}}, torch::kLong);
  const auto la = adapted.lm->lm_logits(adapted.lm->forward_hidden(ids, {}));
  const auto lm = merged.lm->lm_logits(merged.lm->forward_hidden(ids, {}));
  EXPECT_LT((la - lm).abs().max().item<double>(), 1e-4);
  EXPECT_TRUE(torch::equal(adapted.value_head->summary->weight, merged.value_head->summary->weight));
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
