// SftTrainer: packing and truncation by hand-worked example; HF's linear LR schedule worked by
// hand; a tiny random GPT-2 fine-tuned on patterned toy text lowers its held-out loss; mean_nll
// equals an independent computation; the logged gradient norm is the norm of the loss gradient
// computed independently, and the applied LR follows the schedule; resume after a stop (dropout on)
// gives the same weights as an uninterrupted run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "rarlhf/model/gpt2.h"
#include "support/files.h"
#include "rarlhf/common/signals.h"
#include "rarlhf/text/bpe_tokenizer.h"
#include "rarlhf/train/sft_trainer.h"
#include "support/temp_dir.h"
#include "support/tiny_policy.h"

using namespace rarlhf;
namespace fs = std::filesystem;

namespace {
const std::string kTokDir = std::string(RARLHF_SOURCE_DIR) + "/../shared/data/tiny-gpt2-vocab21";

std::string make_policy_dir(const std::string& root) { return rarlhf::testing::write_tiny_gpt2(root + "/policy0"); }

// Patterned text: "lower newer wider" cycles, so the next word is predictable.
std::vector<std::vector<int64_t>> docs(const BpeTokenizer& tok, int n, int offset) {
  const char* words[] = {" lower", " newer", " wider"};
  std::vector<std::vector<int64_t>> out;
  for (int d = 0; d < n; ++d) {
    std::string s;
    for (int i = 0; i < 9; ++i) s += words[(d + offset + i) % 3];
    out.push_back(tok.encode(s));
  }
  return out;
}

class SftTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTokDir + "/vocab.json")) GTEST_SKIP() << "needs ../shared/data/tiny-gpt2-vocab21";
    torch::set_num_threads(1);
    tmp_.emplace("sft");
    root_ = tmp_->path();
    model_ = make_policy_dir(root_);
  }
  Config config(const std::string& out) {
    Config c;
    c.run.out_dir = root_ + "/" + out;
    c.model.path = model_;
    c.sft.learning_rate = 3e-3;
    c.sft.batch_size = 4;
    c.sft.grad_accum = 2;
    c.sft.epochs = 6;
    c.sft.seq_length = 16;
    c.logging.progress = false;
    return c;
  }
  std::optional<rarlhf::testing::TempDir> tmp_;  // removed with the fixture
  std::string root_, model_;
};
}  // namespace

TEST(SftPack, PacksWithEosAndKeepsShortTail) {
  auto w = pack_sequences({{1, 2, 3}, {4, 5}, {6}}, 9, 4);
  // stream: 1 2 3 9 4 5 9 6 9 -> [1 2 3 9] [4 5 9 6] [9] (a 1-token tail predicts nothing: dropped)
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0], (std::vector<int64_t>{1, 2, 3, 9}));
  EXPECT_EQ(w[1], (std::vector<int64_t>{4, 5, 9, 6}));
  auto w2 = pack_sequences({{1, 2, 3}, {4, 5, 6}}, 9, 3);
  ASSERT_EQ(w2.size(), 3u);  // [1 2 3] [9 4 5] [6 9]
  EXPECT_EQ(w2[2], (std::vector<int64_t>{6, 9}));
}

// TRL's SFTTrainer with packing=False: the tokenizer's truncation=True, max_length=seq_length; no
// EOS appended; a text of one token predicts nothing and is dropped.
TEST(SftTruncate, FirstTokensOfEachText) {
  auto w = truncate_sequences({{1, 2, 3, 4, 5, 6}, {7, 8}, {9}, {}, {10, 11, 12, 13}}, 4);
  ASSERT_EQ(w.size(), 3u);
  EXPECT_EQ(w[0], (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(w[1], (std::vector<int64_t>{7, 8}));
  EXPECT_EQ(w[2], (std::vector<int64_t>{10, 11, 12, 13}));
  // 3 sequences, 4 + 2 + 4 = 10 tokens; packing the same texts streams all 13 tokens + 5 EOS = 18:
  // 4 windows of 4 and one of 2.
  size_t tokens = 0;
  for (const auto& s : w) tokens += s.size();
  EXPECT_EQ(tokens, 10u);
  EXPECT_EQ(pack_sequences({{1, 2, 3, 4, 5, 6}, {7, 8}, {9}, {}, {10, 11, 12, 13}}, 99, 4).size(), 5u);
}

// transformers' get_linear_schedule_with_warmup, worked by hand: lr * step / warmup, then
// lr * (total - step) / (total - warmup); the first step (0) runs at the full rate without warmup.
TEST(SftSchedule, LinearDecayAndWarmup) {
  SftConfig s;
  s.learning_rate = 1e-3;
  const double expect4[] = {1e-3, 7.5e-4, 5e-4, 2.5e-4};
  for (int t = 0; t < 4; ++t) EXPECT_NEAR(sft_learning_rate(s, t, 4), expect4[t], 1e-15) << t;
  s.warmup_steps = 2;
  const double expect6[] = {0.0, 5e-4, 1e-3, 7.5e-4, 5e-4, 2.5e-4};
  for (int t = 0; t < 6; ++t) EXPECT_NEAR(sft_learning_rate(s, t, 6), expect6[t], 1e-15) << t;
  s.lr_schedule = "constant";
  const double expect_c[] = {0.0, 5e-4, 1e-3, 1e-3, 1e-3};
  for (int t = 0; t < 5; ++t) EXPECT_NEAR(sft_learning_rate(s, t, 5), expect_c[t], 1e-15) << t;
}

TEST_F(SftTest, MeanNllMatchesDirectComputation) {
  Policy p = load_policy(model_, "float32", torch::kCPU);
  std::vector<std::vector<int64_t>> w = {{1, 2, 3, 4, 5}, {6, 7, 8}};  // ragged: padding must not count
  double got = mean_nll(p.lm, w, 2, torch::kCPU, true);
  torch::NoGradGuard ng;
  double total = 0, n = 0;
  for (auto& seq : w) {  // one sequence at a time, log_softmax + gather
    auto ids = torch::tensor(seq).unsqueeze(0);
    auto h = p.lm->forward_hidden(ids, torch::ones_like(ids));
    auto lp = torch::log_softmax(p.lm->lm_logits(h), -1)[0];
    for (size_t t = 1; t < seq.size(); ++t) total -= lp[t - 1][seq[t]].item<double>(), n += 1;
  }
  EXPECT_NEAR(got, total / n, 1e-5);
}

TEST_F(SftTest, LowersHeldOutLoss) {
  BpeTokenizer tok = BpeTokenizer::from_dir(kTokDir);
  Config c = config("learn");
  auto train = pack_sequences(docs(tok, 24, 0), tok.eos_id(), 16);
  auto eval = pack_sequences(docs(tok, 6, 1), tok.eos_id(), 16);
  SftTrainer t(c, train, eval, load_policy(model_, "float32", torch::kCPU), torch::kCPU, kTokDir);
  const double before = t.eval_loss();
  ASSERT_TRUE(t.train());
  const double after = t.eval_loss();
  // The paper's settings (linear decay, clipping to 1.0, dropout 0.1): 3.07 -> 2.13 nats here.
  EXPECT_LT(after, before * 0.75) << "before " << before << " after " << after;
  EXPECT_TRUE(fs::exists(c.run.out_dir + "/policy/model.safetensors"));
}

// float32, and bfloat16 with fp32 master weights (the checkpoint holds them: master_weights.safetensors).
TEST_F(SftTest, ResumeEqualsUninterrupted) {
  BpeTokenizer tok = BpeTokenizer::from_dir(kTokDir);
  auto train = pack_sequences(docs(tok, 24, 0), tok.eos_id(), 16);
  for (const std::string dtype : {"float32", "bfloat16"}) {
    SCOPED_TRACE(dtype);
    Config a = config("a-" + dtype);
    a.sft.epochs = 2;
    a.model.dtype = dtype;
    {
      SftTrainer t(a, train, {}, load_policy(model_, dtype, torch::kCPU), torch::kCPU, kTokDir);
      ASSERT_TRUE(t.train());
    }
    Config b = config("b-" + dtype);
    b.sft.epochs = 2;
    b.model.dtype = dtype;
    {
      SftTrainer t(b, train, {}, load_policy(model_, dtype, torch::kCPU), torch::kCPU, kTokDir);
      g_stop_requested.store(true);
      EXPECT_FALSE(t.train());
      g_stop_requested.store(false);
      EXPECT_EQ(t.step(), 1);
    }
    EXPECT_EQ(fs::exists(b.run.out_dir + "/checkpoint/master_weights.safetensors"), dtype == "bfloat16");
    {
      SftTrainer t(b, train, {}, load_policy(model_, dtype, torch::kCPU), torch::kCPU, kTokDir);
      ASSERT_TRUE(t.resume());
      ASSERT_TRUE(t.train());
    }
    auto pa = load_policy(a.run.out_dir + "/policy", dtype, torch::kCPU);
    auto pb = load_policy(b.run.out_dir + "/policy", dtype, torch::kCPU);
    auto wa = pa.lm->parameters(), wb = pb.lm->parameters();
    for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wb[i])) << i;
    // metrics.jsonl too: the resumed run keeps the record of the step it stopped after.
    auto ma = rarlhf::testing::read_jsonl(a.run.out_dir + "/metrics.jsonl", {"time/", "mem/"});
    auto mb = rarlhf::testing::read_jsonl(b.run.out_dir + "/metrics.jsonl", {"time/", "mem/"});
    ASSERT_EQ(ma.size(), mb.size());
    for (size_t i = 0; i < ma.size(); ++i) EXPECT_EQ(ma[i], mb[i]) << "record " << i;
  }
}

// One micro-batch holding every sequence, so that step 1's gradient is that of the token-mean NLL
// over all of them whatever the shuffle: computed here with log_softmax + gather, its norm is the
// grad_norm metrics.jsonl logs (before clipping to sft.max_grad_norm); every step's lr follows the
// linear schedule, and clipping to a small norm changes the weights the run ends with.
TEST_F(SftTest, LogsTheGradientNormAndTheScheduledRate) {
  BpeTokenizer tok = BpeTokenizer::from_dir(kTokDir);
  auto train = truncate_sequences(docs(tok, 12, 0), 10);
  Config c = config("clip");
  c.sft.batch_size = 16;
  c.sft.grad_accum = 1;
  c.sft.epochs = 3;
  c.sft.dropout = 0;
  c.sft.max_grad_norm = 1e-3;
  Policy start = load_policy(model_, "float32", torch::kCPU);
  double expect_norm = 0;
  {
    double n_tokens = 0;
    at::Tensor nll = torch::zeros({});
    for (const auto& seq : train) {
      auto ids = torch::tensor(seq).unsqueeze(0);
      auto lp = torch::log_softmax(start.lm->lm_logits(start.lm->forward_hidden(ids, torch::ones_like(ids))), -1)[0];
      for (size_t t = 1; t < seq.size(); ++t) nll = nll - lp[t - 1][seq[t]], n_tokens += 1;
    }
    (nll / n_tokens).backward();
    for (const auto& p : start.lm->parameters()) expect_norm += p.grad().pow(2).sum().item<double>();
    expect_norm = std::sqrt(expect_norm);
  }
  SftTrainer t(c, train, {}, load_policy(model_, "float32", torch::kCPU), torch::kCPU, kTokDir);
  ASSERT_EQ(t.total_steps(), 3);
  ASSERT_TRUE(t.train());
  auto m = rarlhf::testing::read_jsonl(c.run.out_dir + "/metrics.jsonl", {"time/", "mem/"});
  std::vector<nlohmann::json> steps;
  for (const auto& r : m) {
    if (r.contains("loss/train")) steps.push_back(r);
  }
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_NEAR(steps[0]["grad_norm"].get<double>(), expect_norm, 1e-4 * expect_norm);
  for (int s = 0; s < 3; ++s) EXPECT_NEAR(steps[s]["lr"].get<double>(), 3e-3 * (3 - s) / 3.0, 1e-12) << s;

  Config u = config("unclipped");
  u.sft = c.sft;
  u.sft.max_grad_norm = 0;
  SftTrainer tu(u, train, {}, load_policy(model_, "float32", torch::kCPU), torch::kCPU, kTokDir);
  ASSERT_TRUE(tu.train());
  auto wa = load_policy(c.run.out_dir + "/policy", "float32", torch::kCPU).lm->parameters();
  auto wb = load_policy(u.run.out_dir + "/policy", "float32", torch::kCPU).lm->parameters();
  bool differ = false;
  for (size_t i = 0; i < wa.size(); ++i) differ = differ || !torch::allclose(wa[i], wb[i], 1e-6, 1e-7);
  EXPECT_TRUE(differ);
}
