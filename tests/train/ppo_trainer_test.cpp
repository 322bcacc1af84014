// PPOTrainer behaviour on a tiny random GPT-2 (2 layers, 21-token toy vocabulary) with a toy
// reward (count of the token " lowest" in the response): it learns the reward, RA-RLHF trains
// only on the lowest-return episodes, an interrupted + resumed run equals an uninterrupted one,
// and a NaN loss stops the run naming the iteration.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/signals.h"
#include "rarlhf/train/ppo_trainer.h"

using namespace rarlhf;
namespace fs = std::filesystem;

namespace {

const std::string kTokDir = std::string(RARLHF_SOURCE_DIR) + "/../shared/data/tiny-gpt2-vocab21";

class CountReward : public RewardModel {
 public:
  explicit CountReward(double nan_after = -1) : nan_after_(nan_after) {}
  std::vector<double> score(const std::vector<std::string>& texts) override {
    std::vector<double> out;
    for (const auto& t : texts) {
      double n = 0;
      for (size_t p = t.find(" lowest"); p != std::string::npos; p = t.find(" lowest", p + 1)) n += 1;
      out.push_back(n);
    }
    if (nan_after_ >= 0 && calls_++ >= nan_after_) out[0] = std::nan("");
    return out;
  }
  std::string describe() const override { return "count(' lowest')"; }

 private:
  double nan_after_;
  int calls_ = 0;
};

bool have_assets() { return fs::exists(kTokDir + "/vocab.json"); }

// A random 2-layer GPT-2 over the toy vocabulary, saved in HF layout.
std::string make_policy_dir(const std::string& root) {
  const std::string dir = root + "/policy0";
  if (fs::exists(dir + "/model.safetensors")) return dir;
  nlohmann::json cfg = {{"model_type", "gpt2"}, {"n_layer", 2}, {"n_head", 2}, {"n_embd", 16},
                        {"n_positions", 64}, {"vocab_size", 21}, {"layer_norm_epsilon", 1e-5},
                        {"activation_function", "gelu_new"}, {"bos_token_id", 20}, {"eos_token_id", 20}};
  torch::manual_seed(0);
  Policy p;
  p.lm = Gpt2(Gpt2Config::from_json(cfg, "test"));
  p.value_head = ValueHead(16);
  save_policy(p, dir, kTokDir);
  return dir;
}

Config tiny_config(const std::string& out_dir, const std::string& model_dir) {
  Config c;
  c.run.out_dir = out_dir;
  c.run.seed = 7;
  c.model.path = model_dir;
  c.ppo.batch_size = 16;
  c.ppo.mini_batch_size = 8;
  c.ppo.ppo_epochs = 4;
  c.ppo.learning_rate = 3e-3;
  c.ppo.total_iterations = 6;
  c.ppo.init_kl_coef = 0.02;
  c.generate.max_new_tokens = 6;
  c.generate.min_new_tokens = 6;
  c.reward.input = "response";
  c.logging.progress = false;
  validate(c);
  return c;
}

std::vector<TrainPrompt> prompts(const BpeTokenizer& tok) {
  std::vector<TrainPrompt> out;
  const char* words[] = {" low", " newer", " wider", " lower", " new", " wide", " lowest"};
  for (const char* a : words) {
    for (const char* b : {" low", " newer", " wider", " lower", " new"}) {
      std::string s = std::string(a) + b;
      out.push_back({s, tok.encode(s)});
    }
  }
  return out;
}

std::unique_ptr<PPOTrainer> make_trainer(const Config& c, double nan_after = -1) {
  BpeTokenizer tok = BpeTokenizer::from_dir(c.model.path);
  auto ps = prompts(tok);
  torch::manual_seed(1);
  Policy policy = load_policy(c.model.path, "float32", torch::kCPU);
  Gpt2 ref = load_policy(c.model.path, "float32", torch::kCPU).lm;
  return std::make_unique<PPOTrainer>(c, ps, std::move(policy), std::move(ref),
                                      std::make_unique<CountReward>(nan_after), tok, torch::kCPU);
}

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  std::vector<nlohmann::json> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    auto j = nlohmann::json::parse(line);
    for (auto it = j.begin(); it != j.end();) it = it.key().rfind("time/", 0) == 0 ? j.erase(it) : std::next(it);
    out.push_back(j);
  }
  return out;
}

class PpoTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_assets()) GTEST_SKIP() << "needs ../shared/data/tiny-gpt2-vocab21";
    torch::set_num_threads(1);
    root_ = (fs::temp_directory_path() / ("rarlhf_ppo_" + std::to_string(::getpid()))).string();
    fs::create_directories(root_);
    model_ = make_policy_dir(root_);
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
  }
  std::string root_, model_;
};

}  // namespace

TEST_F(PpoTrainerTest, LearnsToyReward) {
  Config c = tiny_config(root_ + "/learn", model_);
  c.ppo.total_iterations = 40;
  auto t = make_trainer(c);
  ASSERT_TRUE(t->train());
  auto m = read_metrics(c.run.out_dir + "/metrics.jsonl");
  ASSERT_EQ(m.size(), 40u);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) {
    first += m[i]["objective/scores"].get<double>() / 5;
    last += m[35 + i]["objective/scores"].get<double>() / 5;
  }
  // Uniform sampling over 21 tokens gives ~6/21 = 0.29 " lowest" per response.
  EXPECT_LT(first, 0.8);
  EXPECT_GT(last, first + 1.0) << "first " << first << " last " << last;
  EXPECT_TRUE(fs::exists(c.run.out_dir + "/policy/model.safetensors"));
  EXPECT_TRUE(fs::exists(c.run.out_dir + "/DONE"));
}

TEST_F(PpoTrainerTest, RiskKeepsOnlyLowestReturns) {
  Config c = tiny_config(root_ + "/risk", model_);
  c.risk.enabled = true;
  c.risk.alpha = 0.25;
  c.risk.n = 0;
  c.risk.rho = 0.2;  // ceil(rho * M) = 2: k = ceil(0.25 * 16) = 4 from m = 2 on
  auto t = make_trainer(c);
  for (int64_t m = 0; m < 3; ++m) {
    nlohmann::json rec = t->step(m);
    const at::Tensor keep = t->last_keep();
    const at::Tensor ret = t->last_returns();
    const int64_t kept = keep.sum().item<int64_t>();
    if (m == 0) {
      EXPECT_EQ(kept, 16);  // warm start: full batch
      continue;
    }
    const int64_t k = m == 1 ? 10 : 4;  // paper Eq. 8-10: ceil(16 * (1 - 0.75 * m / 2)) at m = 1
    EXPECT_GE(kept, k) << "m=" << m;
    EXPECT_EQ(rec["risk/keep_count"].get<int64_t>(), kept);
    const double max_kept = ret.index({keep}).max().item<double>();
    EXPECT_DOUBLE_EQ(max_kept, rec["risk/return_threshold"].get<double>());
    if (kept < 16) {
      const double min_dropped = ret.index({keep.logical_not()}).min().item<double>();
      EXPECT_GT(min_dropped, max_kept) << "m=" << m;  // ties at q-hat are kept
    }
  }
}

TEST_F(PpoTrainerTest, ResumeEqualsUninterrupted) {
  Config a = tiny_config(root_ + "/straight", model_);
  a.risk.enabled = true;
  a.risk.n = 1;
  a.risk.alpha = 0.5;
  ASSERT_TRUE(make_trainer(a)->train());

  Config b = a;
  b.run.out_dir = root_ + "/interrupted";
  {
    auto t = make_trainer(b);
    g_stop_requested.store(true);  // as if SIGTERM arrived during iteration 0
    EXPECT_FALSE(t->train());
    g_stop_requested.store(false);
    EXPECT_EQ(t->iteration(), 1);
  }
  {
    auto t = make_trainer(b);
    ASSERT_TRUE(t->resume());
    EXPECT_EQ(t->iteration(), 1);
    ASSERT_TRUE(t->train());
  }
  auto ma = read_metrics(a.run.out_dir + "/metrics.jsonl");
  auto mb = read_metrics(b.run.out_dir + "/metrics.jsonl");
  ASSERT_EQ(ma.size(), 6u);
  ASSERT_EQ(mb.size(), 6u);
  for (size_t i = 0; i < ma.size(); ++i) EXPECT_EQ(ma[i], mb[i]) << "iteration " << i;
  auto pa = load_policy(a.run.out_dir + "/policy", "float32", torch::kCPU);
  auto pb = load_policy(b.run.out_dir + "/policy", "float32", torch::kCPU);
  auto wa = pa.lm->parameters(), wb = pb.lm->parameters();
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wb[i]));
}

TEST_F(PpoTrainerTest, NanLossStopsNamingIterationAndKeepsCheckpoint) {
  Config c = tiny_config(root_ + "/nan", model_);
  c.run.save_every = 1;
  auto t = make_trainer(c, /*nan_after=*/2);  // the third scoring call returns NaN
  try {
    t->train();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("iteration 2"), std::string::npos) << e.what();
  }
  auto st = nlohmann::json::parse(read_file(c.run.out_dir + "/checkpoint/trainer_state.json"));
  EXPECT_EQ(st["iteration"].get<int64_t>(), 2);
}

TEST_F(PpoTrainerTest, TooFewPromptsIsAConfigError) {
  Config c = tiny_config(root_ + "/few", model_);
  c.ppo.batch_size = 64;
  c.ppo.mini_batch_size = 32;
  EXPECT_THROW(make_trainer(c), ConfigError);
}

namespace {
// Prompts that start with " wide" (10 of 35) want " newer" and are penalised for " lowest", which
// all other prompts want; the hard prompts also carry a -2 offset, as negative IMDB prompts pull the sentiment reward down whatever
// the continuation (the paper's tail). They are the tail that RA-RLHF should lift faster.
class TwoTaskReward : public RewardModel {
 public:
  std::vector<double> score(const std::vector<std::string>& texts) override {
    std::vector<double> out;
    for (const auto& t : texts) {
      const bool hard = t.rfind(" wide", 0) == 0;
      const std::string want = hard ? " newer" : " lowest";
      const size_t start = t.find(' ', 1);  // skip the first word of the prompt
      auto count = [&](const std::string& w) {
        double n = 0;
        for (size_t p = t.find(w, start); p != std::string::npos; p = t.find(w, p + 1)) n += 1;
        return n;
      };
      // What the majority learns (" lowest") is penalised on the hard prompts.
      out.push_back(hard ? count(" newer") - count(" lowest") - 2.0 : count(" lowest"));
    }
    return out;
  }
  std::string describe() const override { return "two-task"; }
};

}  // namespace

// The mechanism of RA-RLHF: after the warm start the update is concentrated on the tail. In this
// toy the hard prompts (reward offset -2, like negative IMDB prompts) are 10 of 35 prompts; their share
// of the kept episodes must be far above their share of the batch. (Whether the tail reward then ends higher than with RLHF is an
// empirical question this toy does not settle: over 6 seeds and 40 iterations RLHF reached a higher
// hard-prompt reward here, 3.93 vs 1.55, since the tiny policy conditions on the prompt easily.)
TEST_F(PpoTrainerTest, RiskSelectionConcentratesOnTailPrompts) {
  double kept_hard = 0, kept = 0, batch_hard = 0, batch = 0;
  for (int seed = 1; seed <= 3; ++seed) {
    Config c = tiny_config(root_ + "/tail_" + std::to_string(seed), model_);
    c.run.seed = seed;
    c.ppo.total_iterations = 12;
    c.reward.input = "prompt+response";
    c.risk.enabled = true;
    c.risk.alpha = 0.3;
    c.risk.n = 2;
    c.risk.rho = 0.5;
    BpeTokenizer tok = BpeTokenizer::from_dir(c.model.path);
    torch::manual_seed(1);
    Policy policy = load_policy(c.model.path, "float32", torch::kCPU);
    Gpt2 ref = load_policy(c.model.path, "float32", torch::kCPU).lm;
    const auto ps = prompts(tok);
    PPOTrainer t(c, ps, std::move(policy), std::move(ref), std::make_unique<TwoTaskReward>(), tok, torch::kCPU);
    for (int64_t m = 0; m < c.ppo.total_iterations; ++m) {
      t.step(m);
      if (m <= c.risk.n) continue;
      const auto& idx = t.last_prompt_indices();
      const at::Tensor keep = t.last_keep();
      for (size_t i = 0; i < idx.size(); ++i) {
        const bool hard = ps[idx[i]].text.rfind(" wide", 0) == 0;
        batch += 1, batch_hard += hard;
        if (keep[i].item<bool>()) kept += 1, kept_hard += hard;
      }
    }
  }
  const double share_kept = kept_hard / kept, share_batch = batch_hard / batch;
  std::printf("hard-prompt share: batch %.3f, kept episodes %.3f\n", share_batch, share_kept);
  // Measured: batch 0.28, kept 0.60 (ties at q-hat keep some easy failures too).
  EXPECT_GT(share_kept, 1.8 * share_batch);
}
