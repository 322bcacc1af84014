// Parity with Hugging Face transformers on a tiny random GPT2LMHeadModel: logits of unpadded and
// left-padded inputs (atol 1e-4, float32) and greedy generations must match what transformers
// computed. Fixtures come from scripts/make_parity_fixtures.py (run on a machine with transformers);
// the tests skip when tests/fixtures/parity/gpt2_tiny does not exist.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "rarlhf/generate/sampler.h"
#include "rarlhf/model/gpt2.h"

using namespace rarlhf;

namespace {

const std::string kDir = std::string(RARLHF_SOURCE_DIR) + "/tests/fixtures/parity/gpt2_tiny";

class Gpt2Parity : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kDir + "/expected.safetensors")) {
      GTEST_SKIP() << kDir << " missing; run scripts/make_parity_fixtures.py where transformers is installed";
    }
    policy_ = load_policy(kDir + "/model", "float32", torch::kCPU);
    expected_ = load_safetensors(kDir + "/expected.safetensors");
  }
  Policy policy_;
  TensorMap expected_;
};

void expect_close(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const float diff = (got - want).abs().max().item<float>();
  EXPECT_LE(diff, 1e-4f) << what;
}

}  // namespace

TEST_F(Gpt2Parity, UnpaddedLogits) {
  torch::NoGradGuard g;
  for (int i = 0; i < 2; ++i) {
    const std::string k = "single_" + std::to_string(i);
    auto ids = expected_.at(k + ".input_ids").unsqueeze(0);
    auto logits = policy_.lm->lm_logits(policy_.lm->forward_hidden(ids, {}))[0];
    expect_close(logits, expected_.at(k + ".logits"), k);
  }
}

TEST_F(Gpt2Parity, LeftPaddedLogits) {
  torch::NoGradGuard g;
  auto ids = expected_.at("batch.input_ids"), mask = expected_.at("batch.attention_mask");
  auto want = expected_.at("batch.logits");
  // Explicit position ids (as given to transformers) and the ones derived from the mask.
  for (bool derive : {false, true}) {
    auto pos = derive ? at::Tensor() : expected_.at("batch.position_ids");
    auto logits = policy_.lm->lm_logits(policy_.lm->forward_hidden(ids, mask, pos));
    for (int64_t b = 0; b < ids.size(0); ++b) {
      auto keep = mask[b].nonzero().squeeze(1);
      expect_close(logits[b].index_select(0, keep), want[b].index_select(0, keep),
                   "row " + std::to_string(b) + (derive ? " (derived positions)" : ""));
    }
  }
}

TEST_F(Gpt2Parity, GreedyGenerations) {
  auto ids = expected_.at("batch.input_ids"), mask = expected_.at("batch.attention_mask");
  auto want = expected_.at("greedy.output_ids");
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t b = 0; b < ids.size(0); ++b) {
    auto row = ids[b].index_select(0, mask[b].nonzero().squeeze(1)).contiguous();
    prompts.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
  }
  GenerateConfig cfg;
  cfg.greedy = true;
  cfg.max_new_tokens = cfg.min_new_tokens = want.size(1);
  auto res = generate(policy_.lm, prompts, cfg, policy_.lm->config().eos_token_id, 0);
  EXPECT_TRUE(torch::equal(res.response_ids, want)) << res.response_ids << want;
}
