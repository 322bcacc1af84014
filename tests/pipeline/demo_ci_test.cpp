// `rarlhf run --config configs/demo-ci.json`: the scaled-down demo pipeline end to end (pretrain ->
// sft -> rlhf -> ra_rlhf -> eval -> compare) in a temp folder. Checks every stage's outputs are
// there and well-formed, that RL raised the mean reward over SFT, that a rerun skips every stage,
// and that a failing stage stops the pipeline naming it. Needs assets/ (scripts/fetch_assets.sh).
#include <gtest/gtest.h>
#include <unistd.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include <torch/torch.h>

#include "rarlhf/model/gpt2.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kRoot = RARLHF_SOURCE_DIR;
const std::string kBinary = std::string(RARLHF_BINARY_DIR) + "/rarlhf";

bool have_assets() {
  for (const char* f : {"assets/gpt2/encoder.json", "assets/gpt2/vocab.bpe", "assets/vader/vader_lexicon.txt",
                        "assets/uci/imdb.json", "assets/uci/amazon.json", "assets/uci/yelp.json"})
    if (!fs::exists(kRoot + "/" + f)) return false;
  return true;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `rarlhf <args>` from the repo root with output to `log`; returns the exit status.
int run_cli(const std::string& args, const std::string& log) {
  const std::string cmd = "cd '" + kRoot + "' && '" + kBinary + "' " + args + " > '" + log + "' 2>&1";
  int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<json> read_jsonl(const std::string& path) {
  std::vector<json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) rows.push_back(json::parse(line));  // throws on a malformed row
  }
  return rows;
}

class DemoPipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!have_assets() || !fs::exists(kBinary)) return;
    out_ = (fs::temp_directory_path() / ("rarlhf_demo_ci_" + std::to_string(::getpid()))).string();
    fs::remove_all(out_);
    rc_ = run_cli("run --config configs/demo-ci.json --set run.out_dir=" + out_, out_ + ".log");
    log_ = slurp(out_ + ".log");
  }
  static void TearDownTestSuite() {
    if (out_.empty()) return;
    fs::remove_all(out_);
    fs::remove(out_ + ".log");
    fs::remove(out_ + ".rerun.log");
  }
  void SetUp() override {
    if (!have_assets()) GTEST_SKIP() << "needs assets/ (run scripts/fetch_assets.sh)";
    if (!fs::exists(kBinary)) GTEST_SKIP() << "needs " << kBinary;
    ASSERT_EQ(rc_, 0) << log_;
  }
  static json eval_json(const std::string& model, const std::string& split) {
    return json::parse(slurp(out_ + "/eval/" + model + "-" + split + "/eval.json"));
  }
  static inline std::string out_, log_;
  static inline int rc_ = -1;
};

const char* kTrainStages[] = {"pretrain", "sft", "rlhf", "ra_rlhf"};

TEST_F(DemoPipeline, EveryTrainingStageLeavesALoadablePolicyAndMetrics) {
  for (const char* st : kTrainStages) {
    const std::string dir = out_ + "/" + st;
    SCOPED_TRACE(st);
    EXPECT_TRUE(fs::exists(dir + "/DONE"));
    EXPECT_TRUE(fs::exists(dir + "/config.json"));
    rarlhf::Policy p = rarlhf::load_policy(dir + "/policy", "float32", torch::kCPU);
    EXPECT_EQ(p.lm->config().n_embd, 128);
    EXPECT_EQ(p.lm->config().vocab_size, 50257);
    auto rows = read_jsonl(dir + "/metrics.jsonl");
    ASSERT_FALSE(rows.empty());
  }
  // RL logged one record per iteration with finite rewards; RA-RLHF kept fewer episodes late on.
  auto rl = read_jsonl(out_ + "/rlhf/metrics.jsonl");
  auto ra = read_jsonl(out_ + "/ra_rlhf/metrics.jsonl");
  const json cfg = json::parse(slurp(out_ + "/rlhf/config.json"));
  EXPECT_EQ(static_cast<int64_t>(rl.size()), cfg["ppo"]["total_iterations"].get<int64_t>());
  EXPECT_FALSE(cfg["risk"]["enabled"].get<bool>());
  EXPECT_TRUE(json::parse(slurp(out_ + "/ra_rlhf/config.json"))["risk"]["enabled"].get<bool>());
  // The chain: rlhf and ra_rlhf start from the sft policy, sft from the pretrained one.
  EXPECT_EQ(cfg["model"]["path"], out_ + "/sft/policy");
  EXPECT_EQ(json::parse(slurp(out_ + "/sft/config.json"))["model"]["path"], out_ + "/pretrain/policy");
  EXPECT_TRUE(json::parse(slurp(out_ + "/pretrain/config.json"))["sft"]["from_scratch"].get<bool>());
}

TEST_F(DemoPipeline, EvalRunsAreWellFormedAndRlRaisedTheReward) {
  for (const char* model : kTrainStages) {
    for (const char* split : {"test", "tail"}) {
      SCOPED_TRACE(std::string(model) + "-" + split);
      json e = eval_json(model, split);
      for (const char* k : {"reward", "tail", "cvar", "dist", "perplexity", "quantile_curve", "generations"})
        EXPECT_TRUE(e.contains(k)) << k;
      EXPECT_TRUE(std::isfinite(e["reward"]["mean"].get<double>()));
      EXPECT_GT(e["perplexity"]["mean_per_text"].get<double>(), 1.0);
      auto gens = read_jsonl(out_ + "/eval/" + model + "-" + split + "/generations.jsonl");
      EXPECT_EQ(static_cast<int64_t>(gens.size()), e["generations"].get<int64_t>());
      // The tail split holds only prompts at or below the threshold.
      if (std::string(split) == "tail") {
        for (const auto& g : gens) EXPECT_LE(g["prompt_score"].get<double>(), e["tail"]["threshold"].get<double>());
      }
    }
  }
  const double sft = eval_json("sft", "test")["reward"]["mean"].get<double>();
  EXPECT_GT(eval_json("rlhf", "test")["reward"]["mean"].get<double>(), sft);
  EXPECT_GT(eval_json("ra_rlhf", "test")["reward"]["mean"].get<double>(), sft);
}

TEST_F(DemoPipeline, SummaryTableListsEveryModel) {
  const std::string md = slurp(out_ + "/summary.md");
  ASSERT_FALSE(md.empty());
  for (const char* st : kTrainStages) EXPECT_NE(md.find(std::string("| ") + st + " |"), std::string::npos) << st;
  EXPECT_NE(md.find("CVaR_0.1"), std::string::npos);
  EXPECT_NE(log_.find("[6/6] compare"), std::string::npos) << log_;
  // The terminal got the same table.
  EXPECT_NE(log_.find("| ra_rlhf |"), std::string::npos);
}

TEST_F(DemoPipeline, RerunSkipsDoneStagesAndChangesNothing) {
  const auto before = fs::last_write_time(out_ + "/rlhf/policy/model.safetensors");
  const std::string log = out_ + ".rerun.log";
  ASSERT_EQ(run_cli("run --config configs/demo-ci.json --only rlhf --set run.out_dir=" + out_, log), 0);
  const std::string text = slurp(log);
  EXPECT_NE(text.find("done already"), std::string::npos) << text;
  EXPECT_EQ(fs::last_write_time(out_ + "/rlhf/policy/model.safetensors"), before);
}

TEST(DemoPipelineErrors, AFailingStageStopsThePipelineNamingIt) {
  if (!have_assets() || !fs::exists(kBinary)) GTEST_SKIP() << "needs assets/ and " << kBinary;
  const std::string out = (fs::temp_directory_path() / ("rarlhf_demo_fail_" + std::to_string(::getpid()))).string();
  const std::string log = out + ".log";
  // The pretrain stage's model config does not exist: the child fails, the pipeline stops there.
  int rc = run_cli("run --config configs/demo-ci.json --set run.out_dir=" + out +
                       " --set 'pipeline.pretrain=[\"model.path=" + out + "/missing\"]'",
                   log);
  const std::string text = slurp(log);
  EXPECT_EQ(rc, 1) << text;
  EXPECT_NE(text.find("stage 'pretrain' failed (exit 1)"), std::string::npos) << text;
  EXPECT_FALSE(fs::exists(out + "/sft")) << "the pipeline must stop at the failed stage";
  // An unknown stage in --only is a one-line config error.
  rc = run_cli("run --config configs/demo-ci.json --set run.out_dir=" + out + " --only rlfh", log);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(slurp(log).find("--only: 'rlfh' is not in pipeline.stages"), std::string::npos) << slurp(log);
  fs::remove_all(out);
  fs::remove(log);
}

}  // namespace
