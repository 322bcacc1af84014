// SftTrainer: packing by hand-worked example; a tiny random GPT-2 fine-tuned on patterned toy
// text lowers its held-out loss; mean_nll equals an independent computation; resume after a stop
// gives the same weights as an uninterrupted run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "rarlhf/model/gpt2.h"
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
  EXPECT_LT(after, before * 0.6) << "before " << before << " after " << after;
  EXPECT_TRUE(fs::exists(c.run.out_dir + "/policy/model.safetensors"));
}

TEST_F(SftTest, ResumeEqualsUninterrupted) {
  BpeTokenizer tok = BpeTokenizer::from_dir(kTokDir);
  auto train = pack_sequences(docs(tok, 24, 0), tok.eos_id(), 16);
  Config a = config("a");
  a.sft.epochs = 2;
  {
    SftTrainer t(a, train, {}, load_policy(model_, "float32", torch::kCPU), torch::kCPU, kTokDir);
    ASSERT_TRUE(t.train());
  }
  Config b = config("b");
  b.sft.epochs = 2;
  {
    SftTrainer t(b, train, {}, load_policy(model_, "float32", torch::kCPU), torch::kCPU, kTokDir);
    g_stop_requested.store(true);
    EXPECT_FALSE(t.train());
    g_stop_requested.store(false);
    EXPECT_EQ(t.step(), 1);
  }
  {
    SftTrainer t(b, train, {}, load_policy(model_, "float32", torch::kCPU), torch::kCPU, kTokDir);
    ASSERT_TRUE(t.resume());
    ASSERT_TRUE(t.train());
  }
  auto pa = load_policy(a.run.out_dir + "/policy", "float32", torch::kCPU);
  auto pb = load_policy(b.run.out_dir + "/policy", "float32", torch::kCPU);
  auto wa = pa.lm->parameters(), wb = pb.lm->parameters();
  for (size_t i = 0; i < wa.size(); ++i) EXPECT_TRUE(torch::equal(wa[i], wb[i])) << i;
}
