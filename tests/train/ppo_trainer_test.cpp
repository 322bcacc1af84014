// PPOTrainer behaviour on a tiny random GPT-2 (2 layers, 21-token toy vocabulary) with a toy
// reward (count of the token " lowest" in the response): it learns the reward, RA-RLHF trains
// only on the lowest-return episodes and lifts the worst-decile reward faster than RLHF and than
// training on as many randomly drawn episodes, an interrupted + resumed run equals an
// uninterrupted one, and a NaN loss stops the run naming the iteration.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <iterator>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>

#include "rarlhf/model/gpt2.h"
#include "rarlhf/model/lora.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/signals.h"
#include "rarlhf/generate/sampler.h"
#include "rarlhf/rl/soft_risk.h"
#include "rarlhf/train/ppo_trainer.h"
#include "support/fake_rewards.h"
#include "support/files.h"
#include "support/temp_dir.h"
#include "support/tiny_policy.h"

using namespace rarlhf;
namespace fs = std::filesystem;

namespace {

const std::string kTokDir = std::string(RARLHF_SOURCE_DIR) + "/../shared/data/tiny-gpt2-vocab21";

// The number of " lowest" in the text; NaN in the first score from call nan_after on.
struct CountReward : rarlhf::testing::WordReward {
  explicit CountReward(double nan_after = -1)
      : rarlhf::testing::WordReward({{" lowest", 1.0}}, "count(' lowest')", nan_after) {}
};

bool have_assets() { return fs::exists(kTokDir + "/vocab.json"); }

// A random 2-layer GPT-2 over the toy vocabulary, saved in HF layout.
std::string make_policy_dir(const std::string& root) {
  const std::string dir = root + "/policy0";
  if (fs::exists(dir + "/model.safetensors")) return dir;
  return rarlhf::testing::write_tiny_gpt2(dir);
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

std::vector<Prompt> prompts(const BpeTokenizer& tok) {
  std::vector<Prompt> out;
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
  CausalLm ref = load_policy(c.model.path, "float32", torch::kCPU).lm;
  return std::make_unique<PPOTrainer>(c, ps, std::move(policy), std::move(ref),
                                      std::make_unique<CountReward>(nan_after), tok, torch::kCPU);
}

std::vector<nlohmann::json> read_metrics(const std::string& path) {
  return rarlhf::testing::read_jsonl(path, {"time/", "mem/"});  // wall-clock times differ between runs
}

class PpoTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!have_assets()) GTEST_SKIP() << "needs ../shared/data/tiny-gpt2-vocab21";
    torch::set_num_threads(1);
    tmp_.emplace("ppo");
    root_ = tmp_->path();
    model_ = make_policy_dir(root_);
  }
  std::optional<rarlhf::testing::TempDir> tmp_;  // removed with the fixture
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
    const IterationResult result = t->step(m);
    nlohmann::json rec = result.record();
    const at::Tensor keep = result.keep;
    const at::Tensor ret = result.returns;
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

// ppo.dropout (TRL v0.7's train-mode passes): the masks come from a per-iteration seed, so a stopped
// and resumed run still equals an uninterrupted one; and dropout does change the run.
TEST_F(PpoTrainerTest, DropoutRunResumesExactly) {
  Config a = tiny_config(root_ + "/drop", model_);
  a.ppo.total_iterations = 3;
  a.ppo.dropout = true;
  ASSERT_TRUE(make_trainer(a)->train());
  Config b = a;
  b.run.out_dir = root_ + "/drop-resumed";
  {
    auto t = make_trainer(b);
    g_stop_requested.store(true);
    EXPECT_FALSE(t->train());
    g_stop_requested.store(false);
  }
  {
    auto t = make_trainer(b);
    ASSERT_TRUE(t->resume());
    ASSERT_TRUE(t->train());
  }
  Config off = a;
  off.run.out_dir = root_ + "/no-drop";
  off.ppo.dropout = false;
  ASSERT_TRUE(make_trainer(off)->train());
  auto ma = read_metrics(a.run.out_dir + "/metrics.jsonl");
  auto mb = read_metrics(b.run.out_dir + "/metrics.jsonl");
  auto mo = read_metrics(off.run.out_dir + "/metrics.jsonl");
  ASSERT_EQ(ma.size(), 3u);
  ASSERT_EQ(mb.size(), 3u);
  for (size_t i = 0; i < ma.size(); ++i) EXPECT_EQ(ma[i], mb[i]) << "iteration " << i;
  EXPECT_NE(ma[0], mo[0]);
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

// ppo.ratio_threshold as TRL v0.7 applies it: a minibatch over the threshold gets a zero loss and
// the optimiser still steps (FusedAdam.ZeroGradientStepFollowsAdamsRule checks the step itself).
// A threshold below every ratio zeroes all 2 x 4 minibatches: all are counted, none is an update,
// from Adam's zero moments nothing moves (an optimiser step on a real loss would), and their
// statistics are still averaged.
TEST_F(PpoTrainerTest, RatioOverThresholdZeroesTheLossAndStillSteps) {
  Config c = tiny_config(root_ + "/ratio", model_);
  c.ppo.ratio_threshold = 1e-9;
  auto t = make_trainer(c);
  std::vector<at::Tensor> before;
  for (const auto& p : t->policy().lm->parameters()) before.push_back(p.detach().clone());
  for (const auto& p : t->policy().value_head->parameters()) before.push_back(p.detach().clone());
  const IterationResult r = t->step(0);
  EXPECT_EQ(r.ppo.skipped, 8);
  EXPECT_EQ(r.ppo.updates, 0);
  size_t i = 0;
  for (const auto& p : t->policy().lm->parameters()) EXPECT_TRUE(torch::equal(p, before[i++]));
  for (const auto& p : t->policy().value_head->parameters()) EXPECT_TRUE(torch::equal(p, before[i++]));
  EXPECT_EQ(r.record()["ppo/skipped_minibatches"].get<int64_t>(), 8);
  // TRL averages every minibatch's statistics, the skipped ones with their losses zeroed: nothing
  // moved, so each had ratio 1 and no clipping.
  EXPECT_NEAR(r.record()["val/ratio"].get<double>(), 1.0, 1e-6);
  EXPECT_EQ(r.record()["loss/policy_avg"].get<double>(), 0.0);
  EXPECT_EQ(r.record()["loss/value_avg"].get<double>(), 0.0);
  EXPECT_EQ(r.record()["policy/clipfrac_avg"].get<double>(), 0.0);
  // The optimiser stepped all 8 times: its saved state (read into LibTorch's own Adam over the same
  // parameters, in the trainer's order) counts 8 steps for every parameter.
  t->save_checkpoint();
  std::vector<at::Tensor> params = t->policy().lm->parameters();
  for (const auto& p : t->policy().value_head->parameters()) params.push_back(p);
  torch::optim::Adam saved(params, torch::optim::AdamOptions(c.ppo.learning_rate));
  torch::load(saved, c.run.out_dir + "/checkpoint/optimizer.pt");
  ASSERT_EQ(saved.state().size(), params.size());
  for (const auto& kv : saved.state()) EXPECT_EQ(static_cast<torch::optim::AdamParamState&>(*kv.second).step(), 8);
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
// hard-prompt reward here, 3.93 vs 1.55, since what the hard prompts learn carries over to the easy
// ones. RiskOnRaisesTheWorstDecileFasterThanRiskOff below uses a toy built for that question.)
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
    CausalLm ref = load_policy(c.model.path, "float32", torch::kCPU).lm;
    const auto ps = prompts(tok);
    PPOTrainer t(c, ps, std::move(policy), std::move(ref), std::make_unique<TwoTaskReward>(), tok, torch::kCPU);
    for (int64_t m = 0; m < c.ppo.total_iterations; ++m) {
      const IterationResult result = t.step(m);
      if (m <= c.risk.n) continue;
      const auto& idx = result.prompt_indices;
      const at::Tensor keep = result.keep;
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

namespace {
// The tail toy. 80 three-token prompts: two filler letters, then a marker token. 68 "easy" prompts
// end in " low" and want " lowest" (reward = its count in the 6-token response, 0..6); 12 "hard"
// prompts (15%) end in " wider" and want " newer" (reward = its count - 2, -2..4; the offset puts
// them below the easy ones whatever the response, as negative IMDB prompts pull the sentiment
// reward down). The policy starts from a short supervised warm-up (the paper starts from an SFT
// model) that already does fine on the easy prompts (" lowest" ~60% of tokens) and continues the
// hard ones with random tokens without " lowest" (" newer" ~10%), so the hard prompts are the tail:
// what RLHF learns on the easy majority does not solve them, and each kind needs its own update.
constexpr int64_t kLowTok = 14, kLowestTok = 16, kNewerTok = 17, kWiderTok = 18;

class TailToyReward : public RewardModel {
 public:
  static bool is_hard(const std::string& text) { return text.compare(2, 6, " wider") == 0; }
  std::vector<double> score(const std::vector<std::string>& texts) override {
    std::vector<double> out;
    for (const auto& t : texts) {
      const bool hard = is_hard(t);
      const size_t start = hard ? 8 : 6;  // the response starts after "xy wider" / "xy low"
      const std::string want = hard ? " newer" : " lowest";
      double n = 0;
      for (size_t p = t.find(want, start); p != std::string::npos; p = t.find(want, p + 1)) n += 1;
      out.push_back(hard ? n - 2.0 : n);
    }
    return out;
  }
  std::string describe() const override { return "tail-toy"; }
};

std::vector<Prompt> tail_toy_prompts(const BpeTokenizer& tok) {
  const int64_t fill[] = {8, 7, 5, 6, 4, 1};  // d i s t r o: no filler can merge into a target word
  std::vector<Prompt> out;
  for (int i = 0; i < 80; ++i) {
    std::vector<int64_t> ids = {fill[i % 6], fill[(i / 6 + i) % 6], i < 68 ? kLowTok : kWiderTok};
    out.push_back({tok.decode(ids), ids});
  }
  return out;
}

// A random 2-layer GPT-2 (n_embd 32) warmed up for 100 Adam steps of teacher forcing on sampled
// continuations (easy: " lowest" with p 0.6, else uniform; hard: uniform with " lowest" -> " newer").
std::string make_tail_toy_policy(const std::string& root, const std::vector<Prompt>& ps) {
  const std::string dir = root + "/tail_toy_sft";
  if (fs::exists(dir + "/model.safetensors")) return dir;
  nlohmann::json cfg = {{"model_type", "gpt2"}, {"n_layer", 2}, {"n_head", 2}, {"n_embd", 32},
                        {"n_positions", 64}, {"vocab_size", 21}, {"layer_norm_epsilon", 1e-5},
                        {"activation_function", "gelu_new"}, {"bos_token_id", 20}, {"eos_token_id", 20}};
  torch::manual_seed(0);
  Policy p;
  p.lm = Gpt2(Gpt2Config::from_json(cfg, "test"));
  p.value_head = ValueHead(32);
  torch::manual_seed(11);
  torch::optim::Adam opt(p.lm->parameters(), torch::optim::AdamOptions(1e-2));
  for (int step = 0; step < 100; ++step) {
    std::vector<at::Tensor> rows;
    for (int b = 0; b < 32; ++b) {
      const Prompt& q = ps[torch::randint(static_cast<int64_t>(ps.size()), {1}).item<int64_t>()];
      const bool hard = q.ids[2] == kWiderTok;
      std::vector<int64_t> ids = q.ids;
      for (int t = 0; t < 6; ++t) {
        int64_t tok = torch::randint(20, {1}).item<int64_t>();  // any token but EOS
        if (hard && tok == kLowestTok) tok = kNewerTok;
        const double u = torch::rand({1}).item<double>();
        ids.push_back(!hard && u < 0.6 ? kLowestTok : tok);
      }
      rows.push_back(torch::tensor(ids));
    }
    at::Tensor x = torch::stack(rows);                                   // [32, 9]
    at::Tensor logits = p.lm->lm_logits(p.lm->forward_hidden(x, {}));    // [32, 9, 21]
    at::Tensor loss = torch::nn::functional::cross_entropy(logits.narrow(1, 2, 6).reshape({-1, 21}),
                                                           x.narrow(1, 3, 6).reshape({-1}));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  save_policy(p, dir, kTokDir);
  return dir;
}

struct TailEval {
  double worst_decile = 0;     // mean of the lowest 10% of per-episode rewards
  double mean = 0;
  double hard_in_decile = 0;   // fraction of the worst decile that comes from hard prompts
};

// 8 sampled responses per prompt (640 episodes), one fixed sampling seed for every policy.
TailEval eval_tail_toy(const CausalLm& lm, const std::vector<Prompt>& ps, const GenerateConfig& gc,
                       const BpeTokenizer& tok) {
  std::vector<std::vector<int64_t>> queries;
  for (int rep = 0; rep < 8; ++rep)
    for (const auto& p : ps) queries.push_back(p.ids);
  torch::NoGradGuard no_grad;
  lm->eval();
  GenerationResult g = generate(lm, queries, gc, tok.eos_id(), /*seed=*/12345);
  std::vector<std::string> texts;
  at::Tensor resp = g.response_ids.contiguous();
  for (size_t b = 0; b < queries.size(); ++b) {
    const int64_t* r = resp[b].data_ptr<int64_t>();
    texts.push_back(tok.decode(queries[b]) + tok.decode(std::vector<int64_t>(r, r + resp.size(1))));
  }
  const std::vector<double> rewards = TailToyReward().score(texts);
  std::vector<size_t> order(rewards.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return rewards[a] < rewards[b]; });
  TailEval e;
  const size_t k = rewards.size() / 10;
  for (size_t i = 0; i < k; ++i) {
    e.worst_decile += rewards[order[i]] / k;
    e.hard_in_decile += TailToyReward::is_hard(texts[order[i]]) ? 1.0 / k : 0.0;
  }
  e.mean = std::accumulate(rewards.begin(), rewards.end(), 0.0) / rewards.size();
  return e;
}

// Training seeds of the worst-decile tests, and on how many of them the claimed variant must come
// out strictly ahead. The toy's worst decile sits at the reward floor (-2.00) for weak policies, so a
// seed where both variants stay there is a tie, not a loss; LibTorch builds differ in float
// reduction order, and on pip's 2.13 seed 2 ties that way in both tests. Six seeds, five ahead and a
// mean margin > 1.0 hold on LibTorch 1.13 (Debian 12) and 2.13 (pip), figures below.
constexpr int kTailToySeeds[] = {1, 2, 3, 4, 5, 6};
constexpr int kTailToySeedsAhead = 5;

// The tail-toy setup shared by the worst-decile tests: 15 iterations of 64 episodes, mini-batch =
// batch (as in the paper), soft-risk schedule alpha 0.3 reached at iteration 4 after n = 2 warm-start
// iterations. risk.enabled and risk.selection are left to the caller.
Config tail_toy_config(const std::string& out_dir, const std::string& sft) {
  Config c = tiny_config(out_dir, sft);
  c.ppo.batch_size = 64;
  c.ppo.mini_batch_size = 64;
  c.ppo.total_iterations = 15;
  c.reward.input = "prompt+response";
  c.risk.alpha = 0.3;
  c.risk.n = 2;
  c.risk.rho = 0.25;
  return c;
}

// What the PPO update was spent on after the warm start (iterations m > risk.n).
struct TailKept {
  int64_t kept = 0, expected_kept = 0;  // episodes kept vs the sum of k(m) (B when risk is off)
  double hard_share = 0;                // fraction of the kept episodes that came from hard prompts
};

// Trains the warmed-up tail-toy policy with `c` (same initial weights and torch seed for every
// variant, so runs differ only in what `c` changes) and evaluates the result.
TailEval train_tail_toy(const Config& c, const std::string& sft, const std::vector<Prompt>& ps,
                        const BpeTokenizer& tok, TailKept* kept = nullptr) {
  torch::manual_seed(1);
  Policy policy = load_policy(sft, "float32", torch::kCPU);
  CausalLm ref = load_policy(sft, "float32", torch::kCPU).lm;
  PPOTrainer t(c, ps, std::move(policy), std::move(ref), std::make_unique<TailToyReward>(), tok, torch::kCPU);
  int64_t hard = 0;
  for (int64_t m = 0; m < c.ppo.total_iterations; ++m) {
    const IterationResult result = t.step(m);
    if (kept == nullptr || m <= c.risk.n) continue;
    const at::Tensor keep = result.keep;  // [B]
    const auto& idx = result.prompt_indices;
    for (size_t i = 0; i < idx.size(); ++i) {
      if (!keep[static_cast<int64_t>(i)].item<bool>()) continue;
      kept->kept += 1;
      hard += ps[static_cast<size_t>(idx[i])].ids[2] == kWiderTok;
    }
    kept->expected_kept += c.risk.enabled
                               ? soft_risk_keep_count(m, c.ppo.batch_size, c.ppo.total_iterations, c.risk)
                               : c.ppo.batch_size;
  }
  if (kept != nullptr && kept->kept > 0) kept->hard_share = static_cast<double>(hard) / kept->kept;
  return eval_tail_toy(t.policy().lm, ps, c.generate, tok);
}

}  // namespace

// Issue #5: "with risk on, the worst-decile reward rises faster than without". RA-RLHF and RLHF run
// from the same warmed-up policy with the same seed, data order, sampling streams and budget (15
// iterations of 64 episodes, mini-batch = batch as in the paper, so both take the same number of
// optimiser steps); only risk.enabled differs. The expectation follows from the mechanism: after a
// 2-iteration warm start the soft-risk schedule (alpha 0.3, reached at iteration 4) spends the whole
// update on the lowest-return ~30% of episodes, i.e. on the hard prompts and the worst easy ones,
// while RLHF spends ~85% of it on easy prompts, whose " lowest" update does nothing for " newer"
// and (the tiny policy generalises across prompts) leaks " lowest" into the hard prompts.
// Worst-decile reward after 15 iterations, RLHF vs RA-RLHF (warm-up below; figures from an earlier
// sampling stream, today's margins are beside the assertions): seed 1 -1.22 vs -0.22,
// seed 2 -2.00 vs -0.12, seed 3 -2.00 vs 1.89; RA-RLHF was ahead on seeds 4-10 too (margin 0.02 to
// 4.2), and over 3 other warm-up draws (20 runs) it was ahead in 19 and tied at the ceiling in 1
// (smallest margin 0.19). What this toy does NOT show is that the mean is kept: the tiny policy learns
// a global token preference, and in 10 of those 30 runs RA-RLHF's mean fell more than 0.5 below
// RLHF's (seed 2 here: 2.82 vs 4.79) as " newer" leaked into the easy prompts, so the mean is
// printed, not asserted.
TEST_F(PpoTrainerTest, RiskOnRaisesTheWorstDecileFasterThanRiskOff) {
  BpeTokenizer tok = BpeTokenizer::from_dir(model_);
  const std::vector<Prompt> ps = tail_toy_prompts(tok);
  const std::string sft = make_tail_toy_policy(root_, ps);
  const Config base = tail_toy_config(root_ + "/tail_toy", sft);

  {  // The toy is what the test claims: before training, the worst decile is all hard prompts.
    Policy p0 = load_policy(sft, "float32", torch::kCPU);
    const TailEval e0 = eval_tail_toy(p0.lm, ps, base.generate, tok);
    EXPECT_DOUBLE_EQ(e0.hard_in_decile, 1.0);
    std::printf("before training: worst decile %.2f, mean %.2f\n", e0.worst_decile, e0.mean);
  }
  double margin_sum = 0;
  int ahead = 0;
  for (int seed : kTailToySeeds) {
    TailEval e[2];
    for (int risk = 0; risk <= 1; ++risk) {
      Config c = base;
      c.run.seed = seed;
      c.run.out_dir = root_ + "/tail_toy_" + std::to_string(seed) + (risk ? "_ra" : "_rlhf");
      c.risk.enabled = risk == 1;
      e[risk] = train_tail_toy(c, sft, ps, tok);
    }
    std::printf("seed %d: worst decile RLHF %.2f RA-RLHF %.2f; mean RLHF %.2f RA-RLHF %.2f\n", seed,
                e[0].worst_decile, e[1].worst_decile, e[0].mean, e[1].mean);
    ahead += e[1].worst_decile > e[0].worst_decile;
    margin_sum += e[1].worst_decile - e[0].worst_decile;
  }
  // Margins, seeds 1-6: Debian 12's LibTorch 1.13 0.55 0.50 3.51 2.17 4.99 0.98 (mean 2.12; seeds
  // 7-10 3.46 4.19 4.89 0.20); pip's LibTorch 2.13 1.00 0.00 1.81 1.93 1.45 3.26 (mean 1.58; seed 2
  // ties at the -2.00 floor, seeds 7-10 2.83 2.21 0.77 0.28). With alpha = 1 (risk on, whole batch
  // kept) the two runs are identical and this test fails, as it must.
  EXPECT_GE(ahead, kTailToySeedsAhead);
  EXPECT_GT(margin_sum / std::size(kTailToySeeds), 1.0);
}

// Issue #5, the ablation control for the test above: is RA-RLHF's gain from *which* episodes it
// trains on (the lowest-return ones, the paper's mechanism) or merely from taking its optimiser
// steps on fewer episodes (a larger effective step per episode)? risk.selection = "random" keeps
// the same k(m) episodes per iteration, drawn uniformly, with everything else as in the test above.
// If fewer episodes were the cause, random would match lowest; it does not. Worst-decile reward
// after 15 iterations (earlier sampling stream, as above), RLHF / lowest (RA-RLHF) / random: seed 1 -1.22 / -0.22 / -1.00, seed 2
// -2.00 / -0.12 / -1.48, seed 3 -2.00 / 1.89 / -2.00. Over seeds 1-30 lowest beat random in all 30
// (mean margin 2.15, smallest 0.05 on seed 30, 0.09 on seed 16), while random did no better than
// RLHF (mean worst decile RLHF -0.90, lowest 0.90, random -1.25; random ahead of RLHF in 7 of 30).
// Over 3 other warm-up draws (seeds 1-10 each) lowest beat random in 27 of 30. The mean reward of
// random stayed at RLHF's (4.89 vs 5.00 over seeds 1-30; lowest 4.55, see the caveat above).
TEST_F(PpoTrainerTest, RandomSelectionDoesNotRaiseTheWorstDecileAsMuch) {
  BpeTokenizer tok = BpeTokenizer::from_dir(model_);
  const std::vector<Prompt> ps = tail_toy_prompts(tok);
  const std::string sft = make_tail_toy_policy(root_, ps);
  Config base = tail_toy_config(root_ + "/tail_toy", sft);
  base.risk.enabled = true;
  double margin_sum = 0;
  int ahead = 0;
  for (int seed : kTailToySeeds) {
    TailEval e[2];
    TailKept kept[2];
    const char* selection[2] = {"lowest", "random"};
    for (int v = 0; v < 2; ++v) {
      Config c = base;
      c.run.seed = seed;
      c.run.out_dir = root_ + "/tail_toy_" + std::to_string(seed) + "_" + selection[v];
      c.risk.selection = selection[v];
      e[v] = train_tail_toy(c, sft, ps, tok, &kept[v]);
    }
    // The control is what it claims: as many episodes as RA-RLHF keeps. Random keeps exactly k(m);
    // lowest keeps the ties at q-hat too (iterations 3-14: 263 vs 262 on seeds 1 and 2, 262 on
    // seed 3).
    EXPECT_EQ(kept[1].kept, kept[1].expected_kept) << "seed " << seed;
    EXPECT_GE(kept[0].kept, kept[0].expected_kept) << "seed " << seed;
    EXPECT_LE(kept[0].kept, kept[0].expected_kept + kept[0].expected_kept / 50) << "seed " << seed;
    std::printf("seed %d: worst decile lowest %.2f random %.2f; mean lowest %.2f random %.2f; "
                "hard share of kept episodes lowest %.2f random %.2f\n",
                seed, e[0].worst_decile, e[1].worst_decile, e[0].mean, e[1].mean, kept[0].hard_share,
                kept[1].hard_share);
    // ... but not the same episodes: lowest spends its update on the hard prompts (15% of the
    // prompts), random on a uniform draw of the batch (measured 0.44 vs 0.17 / 0.16 / 0.12).
    EXPECT_GT(kept[0].hard_share, 2 * kept[1].hard_share) << "seed " << seed;
    ahead += e[0].worst_decile > e[1].worst_decile;
    margin_sum += e[0].worst_decile - e[1].worst_decile;
  }
  // Margins, seeds 1-6 (random selection draws from derive_seed(seed, m, ·) like every other
  // stream): LibTorch 1.13 0.55 0.50 4.20 1.97 5.10 3.51 (mean 2.64; seeds 7-10 3.32 4.25 4.91
  // 0.70); LibTorch 2.13 1.00 0.00 2.09 1.80 2.06 2.94 (mean 1.65; seed 2 ties at the floor; seeds
  // 7-10 3.94 2.27 3.50 2.44). With the earlier seed*1000003+m stream, over all 4060 triples of seeds
  // 1-30 91% had every margin > 0 and a mean > 1.0 (the seed 1-30 figures above are from that
  // stream). If the selection were ignored (random == lowest) the margin would be 0 and this fails.
  EXPECT_GE(ahead, kTailToySeedsAhead);
  EXPECT_GT(margin_sum / std::size(kTailToySeeds), 1.0);
}

namespace {

// The policy of `c` with fresh LoRA adapters (r 4, every linear layer), its own KL reference (ref nullptr).
std::unique_ptr<PPOTrainer> make_lora_trainer(const Config& c, std::shared_ptr<LoraAdaptersImpl> ref_adapters = {}) {
  BpeTokenizer tok = BpeTokenizer::from_dir(c.model.path);
  auto ps = prompts(tok);
  torch::manual_seed(1);
  Policy policy = load_policy(c.model.path, "float32", torch::kCPU);
  if (!policy.lm->lora()) {
    LoraSettings s;
    s.r = 4;
    s.alpha = 8;
    s.target_modules = {"all-linear"};
    add_lora(policy, s, c.model.path, "lora");
  }
  auto t = std::make_unique<PPOTrainer>(c, ps, std::move(policy), CausalLm(nullptr), std::make_unique<CountReward>(),
                                        tok, torch::kCPU);
  t->set_reference_adapters(std::move(ref_adapters));
  return t;
}

}  // namespace

// LoRA (issue #14): training moves the adapters and the value head and nothing else (the base stays
// bit-identical), the reference is the base itself (iteration 0's KL is exactly 0: B = 0), the policy
// written is a PEFT adapter, a stopped and resumed run equals an uninterrupted one, and a run that
// starts from that adapter has it, frozen, as its reference (KL 0 again at its first iteration).
TEST_F(PpoTrainerTest, LoraTrainsOnlyTheAdaptersAndResumesExactly) {
  Config a = tiny_config(root_ + "/lora", model_);
  a.ppo.total_iterations = 3;
  a.ppo.learning_rate = 1e-2;
  Policy base = load_policy(model_, "float32", torch::kCPU);
  {
    auto t = make_lora_trainer(a);
    ASSERT_TRUE(t->train());
    const Policy& p = t->policy();
    auto now = p.lm->named_parameters(), orig = base.lm->named_parameters();
    for (const auto& kv : orig) EXPECT_TRUE(torch::equal(now[kv.key()], kv.value())) << kv.key();
    double moved = 0;
    for (const auto& w : p.lm->lora()->named_parameters()) {
      if (w.key().find("lora_B") != std::string::npos) moved += w.value().abs().sum().item<double>();
    }
    EXPECT_GT(moved, 0);
    EXPECT_FALSE(torch::equal(p.value_head->summary->weight, base.value_head->summary->weight));
  }
  EXPECT_TRUE(fs::exists(a.run.out_dir + "/policy/adapter_config.json"));
  EXPECT_FALSE(fs::exists(a.run.out_dir + "/policy/model.safetensors"));
  auto ma = read_metrics(a.run.out_dir + "/metrics.jsonl");
  ASSERT_EQ(ma.size(), 3u);
  EXPECT_EQ(ma[0]["objective/kl"].get<double>(), 0.0);
  EXPECT_NE(ma[2]["objective/kl"].get<double>(), 0.0);

  Config b = a;
  b.run.out_dir = root_ + "/lora-resumed";
  {
    auto t = make_lora_trainer(b);
    g_stop_requested.store(true);
    EXPECT_FALSE(t->train());
    g_stop_requested.store(false);
  }
  {
    auto t = make_lora_trainer(b);
    ASSERT_TRUE(t->resume());
    ASSERT_TRUE(t->train());
  }
  auto mb = read_metrics(b.run.out_dir + "/metrics.jsonl");
  ASSERT_EQ(mb.size(), 3u);
  for (size_t i = 0; i < ma.size(); ++i) EXPECT_EQ(ma[i], mb[i]) << "iteration " << i;
  EXPECT_EQ(read_file(a.run.out_dir + "/policy/adapter_model.safetensors"),
            read_file(b.run.out_dir + "/policy/adapter_model.safetensors"));

  // Continue from the trained adapter: the reference is that adapter (a frozen copy), not the base.
  Config c = a;
  c.model.path = a.run.out_dir + "/policy";
  c.run.out_dir = root_ + "/lora-continued";
  c.ppo.total_iterations = 1;
  Policy start = load_policy(c.model.path, "float32", torch::kCPU);
  {
    auto t = make_lora_trainer(c, start.lm->lora()->frozen_copy());
    ASSERT_TRUE(t->train());
  }
  auto mc = read_metrics(c.run.out_dir + "/metrics.jsonl");
  ASSERT_EQ(mc.size(), 1u);
  EXPECT_EQ(mc[0]["objective/kl"].get<double>(), 0.0);
}

TEST_F(PpoTrainerTest, LoraDropoutWithoutTrainModeIsRefused) {
  Config c = tiny_config(root_ + "/lora-drop", model_);
  BpeTokenizer tok = BpeTokenizer::from_dir(c.model.path);
  Policy policy = load_policy(c.model.path, "float32", torch::kCPU);
  LoraSettings s;
  s.r = 2;
  s.dropout = 0.1;
  add_lora(policy, s, c.model.path, "lora");
  try {
    PPOTrainer t(c, prompts(tok), std::move(policy), CausalLm(nullptr), std::make_unique<CountReward>(), tok,
                 torch::kCPU);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("lora.dropout: 0.1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("ppo.dropout=true"), std::string::npos) << e.what();
  }
}

// A reference with fewer token ids than the policy (the paper's GPT-2 reference for GPT-J, whose
// embedding is padded to 50,400 rows): the policy never samples an id the reference cannot score.
// Here 3 of the policy's 24 ids are outside the 21-id reference; a random policy would draw them
// in almost every batch of 16 x 6 tokens.
TEST_F(PpoTrainerTest, AReferenceWithFewerIdsIsNeverAskedToScoreThem) {
  rarlhf::testing::TinyGpt2 spec;
  spec.vocab_size = 24;
  spec.seed = 5;
  const std::string big = rarlhf::testing::write_tiny_gpt2(root_ + "/policy24", spec);
  Config c = tiny_config(root_ + "/vocab", big);
  c.ppo.total_iterations = 2;
  BpeTokenizer tok = BpeTokenizer::from_dir(model_);
  Policy policy = load_policy(big, "float32", torch::kCPU);
  CausalLm ref = load_policy(model_, "float32", torch::kCPU).lm;  // 21 ids
  PPOTrainer t(c, prompts(tok), std::move(policy), std::move(ref), std::make_unique<CountReward>(), tok, torch::kCPU);
  for (int64_t m = 0; m < 2; ++m) EXPECT_NO_THROW(t.step(m)) << "iteration " << m;
}

// model.dtype=bfloat16 fine-tuning every weight: the optimizer steps fp32 masters (the checkpoint holds
// them), the policy written is bf16, and a stopped + resumed run equals an uninterrupted one.
TEST_F(PpoTrainerTest, Bfloat16WithFp32MastersResumesExactly) {
  auto make = [&](const Config& c) {
    BpeTokenizer tok = BpeTokenizer::from_dir(c.model.path);
    torch::manual_seed(1);
    Policy policy = load_policy(c.model.path, "bfloat16", torch::kCPU);
    CausalLm ref = load_policy(c.model.path, "bfloat16", torch::kCPU).lm;
    return std::make_unique<PPOTrainer>(c, prompts(tok), std::move(policy), std::move(ref),
                                        std::make_unique<CountReward>(), tok, torch::kCPU);
  };
  Config a = tiny_config(root_ + "/bf16", model_);
  a.model.dtype = "bfloat16";
  a.ppo.total_iterations = 3;
  a.run.save_every = 1;
  ASSERT_TRUE(make(a)->train());
  const TensorMap masters = load_safetensors(a.run.out_dir + "/checkpoint/master_weights.safetensors");
  ASSERT_FALSE(masters.empty());
  for (const auto& [k, t] : masters) EXPECT_EQ(t.scalar_type(), at::kFloat) << k;
  const TensorMap weights = load_safetensors(a.run.out_dir + "/policy/model.safetensors");
  for (const auto& [k, t] : weights) EXPECT_EQ(t.scalar_type(), at::kBFloat16) << k;

  Config b = a;
  b.run.out_dir = root_ + "/bf16-resumed";
  {
    auto t = make(b);
    g_stop_requested.store(true);
    EXPECT_FALSE(t->train());
    g_stop_requested.store(false);
  }
  {
    auto t = make(b);
    ASSERT_TRUE(t->resume());
    ASSERT_TRUE(t->train());
  }
  auto ma = read_metrics(a.run.out_dir + "/metrics.jsonl");
  auto mb = read_metrics(b.run.out_dir + "/metrics.jsonl");
  ASSERT_EQ(ma.size(), 3u);
  ASSERT_EQ(mb.size(), 3u);
  for (size_t i = 0; i < ma.size(); ++i) EXPECT_EQ(ma[i], mb[i]) << "iteration " << i;
  EXPECT_EQ(read_file(a.run.out_dir + "/checkpoint/master_weights.safetensors"),
            read_file(b.run.out_dir + "/checkpoint/master_weights.safetensors"));
}
