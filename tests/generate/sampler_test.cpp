// Generation: greedy batched KV-cache decoding == a naive loop of full unpadded forwards; returned
// logprobs == a teacher-forced recompute; min_new_tokens fixes lengths; EOS -> pad + mask; seeds
// reproduce; the sampler's empirical distribution matches softmax; hand-worked top-k/top-p cases.
#include "rarlhf/model/gpt2.h"
#include "rarlhf/generate/sampler.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rarlhf/common/error.h"

using namespace rarlhf;

namespace {

Gpt2Config cfg_small() {
  Gpt2Config c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.n_positions = 48;
  c.vocab_size = 23;
  c.eos_token_id = c.bos_token_id = 22;
  return c;
}

Gpt2 make_model(uint64_t seed) {
  torch::manual_seed(seed);
  Gpt2 m(cfg_small());
  torch::NoGradGuard g;
  for (auto& p : m->parameters()) p.mul_(10.0);  // peaky logits: varied greedy choices
  return m;
}

const std::vector<std::vector<int64_t>> kPrompts = {{1, 2, 3, 4, 5}, {7}, {9, 9, 3}, {0, 21}};

GenerateConfig gen_cfg(int64_t max_new, int64_t min_new, bool greedy) {
  GenerateConfig g;
  g.max_new_tokens = max_new;
  g.min_new_tokens = min_new;
  g.greedy = greedy;
  return g;
}

std::vector<int64_t> row(const at::Tensor& t, int64_t b) {
  auto r = t[b].to(torch::kCPU).contiguous();
  return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}

}  // namespace

TEST(Generate, GreedyBatchEqualsNaiveSingleSequenceLoop) {
  auto m = make_model(11);
  auto res = generate(m, kPrompts, gen_cfg(10, 10, true), 22, 0);
  ASSERT_EQ(res.response_ids.sizes(), (std::vector<int64_t>{4, 10}));
  ASSERT_EQ(res.query_ids.sizes(), (std::vector<int64_t>{4, 5}));
  torch::NoGradGuard g;
  for (size_t b = 0; b < kPrompts.size(); ++b) {
    std::vector<int64_t> seq = kPrompts[b];
    for (int t = 0; t < 10; ++t) {
      auto logits = m->lm_logits(m->forward_hidden(torch::tensor(seq).unsqueeze(0), {}))[0].select(0, -1);
      logits[22] = -INFINITY;  // min_new_tokens = 10
      seq.push_back(logits.argmax().item<int64_t>());
    }
    std::vector<int64_t> expect(seq.begin() + kPrompts[b].size(), seq.end());
    EXPECT_EQ(row(res.response_ids, b), expect) << "row " << b;
    // Left padding with eos, mask 1 on the prompt.
    auto q = row(res.query_ids, b);
    auto qm = row(res.query_mask, b);
    const size_t pad = 5 - kPrompts[b].size();
    for (size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(qm[i], i >= pad ? 1 : 0);
      EXPECT_EQ(q[i], i >= pad ? kPrompts[b][i - pad] : 22);
    }
  }
}

TEST(Generate, LogprobsEqualTeacherForcedRecompute) {
  auto m = make_model(12);
  auto cfg = gen_cfg(8, 3, false);
  cfg.temperature = 0.7;
  auto res = generate(m, kPrompts, cfg, 22, 123, true);
  ASSERT_TRUE(res.response_logprobs.defined());
  torch::NoGradGuard g;
  auto ids = torch::cat({res.query_ids, res.response_ids}, 1);
  auto mask = torch::cat({res.query_mask, torch::ones_like(res.response_ids)}, 1);
  auto logits = m->lm_logits(m->forward_hidden(ids, mask)).narrow(1, 4, 8) / 0.7;  // predicts response tokens
  auto lp = torch::log_softmax(logits, -1).gather(2, res.response_ids.unsqueeze(2)).squeeze(2);
  lp = lp * res.response_mask;
  EXPECT_TRUE(torch::allclose(lp, res.response_logprobs, 1e-4, 1e-4)) << (lp - res.response_logprobs).abs().max();
}

TEST(Generate, MinNewTokensFixesLengthAndEosIsPaddedAndMasked) {
  auto m = make_model(13);
  {
    // Make EOS the argmax everywhere: final hidden = ln_f.bias (weight 0), EOS row aligned with it.
    torch::NoGradGuard g;
    auto params = m->named_parameters();
    params["ln_f.weight"].zero_();
    params["ln_f.bias"].copy_(torch::linspace(-1, 1, 16));
    params["wte.weight"][22].copy_(torch::linspace(-1, 1, 16) * 50);
  }
  auto fixed = generate(m, kPrompts, gen_cfg(6, 6, false), 22, 5);
  EXPECT_TRUE(fixed.response_mask.eq(1).all().item<bool>());
  EXPECT_FALSE(fixed.response_ids.eq(22).any().item<bool>());

  auto free = generate(m, kPrompts, gen_cfg(6, 2, false), 22, 5, true);
  for (int64_t b = 0; b < 4; ++b) {
    EXPECT_EQ(row(free.response_mask, b), (std::vector<int64_t>{1, 1, 1, 0, 0, 0}));
    auto r = row(free.response_ids, b);
    EXPECT_NE(r[0], 22);
    EXPECT_NE(r[1], 22);
    EXPECT_EQ(r[2], 22);  // EOS itself is kept and masked in
    EXPECT_EQ(r[3], 22);  // pad afterwards
    EXPECT_EQ(free.response_logprobs[b][4].item<float>(), 0.0f);
  }
}

TEST(Generate, SeedsReproduceAndDiffer) {
  auto m = make_model(14);
  auto cfg = gen_cfg(12, 12, false);
  cfg.temperature = 2.0;
  auto a = generate(m, kPrompts, cfg, 22, 77);
  torch::manual_seed(999);  // the global RNG must not matter
  auto b = generate(m, kPrompts, cfg, 22, 77);
  auto c = generate(m, kPrompts, cfg, 22, 78);
  EXPECT_TRUE(torch::equal(a.response_ids, b.response_ids));
  EXPECT_FALSE(torch::equal(a.response_ids, c.response_ids));
}

TEST(Generate, SamplingMatchesSoftmaxDistribution) {
  auto m = make_model(15);
  {
    torch::NoGradGuard g;
    for (auto& p : m->parameters()) p.mul_(0.05);  // flatter distribution: many tokens get mass
  }
  const int64_t N = 4000;
  std::vector<std::vector<int64_t>> prompts(N, std::vector<int64_t>{3, 1, 4});
  auto res = generate(m, prompts, gen_cfg(1, 0, false), 22, 2024);
  torch::NoGradGuard g;
  auto p = torch::softmax(m->lm_logits(m->forward_hidden(torch::tensor({3, 1, 4}).unsqueeze(0), {}))[0][-1], 0);
  auto counts = torch::bincount(res.response_ids.select(1, 0), {}, 23).to(torch::kDouble) / N;
  // Each frequency within 4.5 standard errors of its probability.
  auto se = torch::sqrt(p.to(torch::kDouble) * (1 - p.to(torch::kDouble)) / N) + 1e-9;
  auto z = ((counts - p.to(torch::kDouble)).abs() / se).max().item<double>();
  EXPECT_LT(z, 4.5) << counts << p;
  EXPECT_GT((counts > 0).sum().item<int64_t>(), 10);
}

TEST(Generate, TopKOneAndTinyTopPEqualGreedy) {
  auto m = make_model(16);
  auto greedy = generate(m, kPrompts, gen_cfg(7, 7, true), 22, 1);
  auto k1 = gen_cfg(7, 7, false);
  k1.top_k = 1;
  auto p0 = gen_cfg(7, 7, false);
  p0.top_p = 1e-6;
  EXPECT_TRUE(torch::equal(generate(m, kPrompts, k1, 22, 3).response_ids, greedy.response_ids));
  EXPECT_TRUE(torch::equal(generate(m, kPrompts, p0, 22, 4).response_ids, greedy.response_ids));
}

TEST(Generate, ProcessLogitsHandWorked) {
  auto logits = torch::tensor({{1.0f, 2.0f, 3.0f, 4.0f}});  // softmax = .032 .087 .237 .644
  const float inf = INFINITY;
  GenerateConfig c;
  c.top_k = 2;
  EXPECT_TRUE(torch::equal(process_logits(logits, c, 0, false), torch::tensor({{-inf, -inf, 3.0f, 4.0f}})));
  c.top_k = 0;
  c.top_p = 0.5;
  EXPECT_TRUE(torch::equal(process_logits(logits, c, 0, false), torch::tensor({{-inf, -inf, -inf, 4.0f}})));
  c.top_p = 0.7;
  EXPECT_TRUE(torch::equal(process_logits(logits, c, 0, false), torch::tensor({{-inf, -inf, 3.0f, 4.0f}})));
  c.top_p = 1.0;
  c.temperature = 2.0;
  EXPECT_TRUE(torch::equal(process_logits(logits, c, 3, true), torch::tensor({{0.5f, 1.0f, 1.5f, -inf}})));
  // A reference with fewer ids (vocab_limit 2): ids 2 and 3 are never drawn, top-p renormalises over
  // the rest (softmax of 1, 2 = .269 .731: top_p 0.5 keeps id 1 alone).
  c.temperature = 1.0;
  c.vocab_limit = 2;
  EXPECT_TRUE(torch::equal(process_logits(logits, c, 0, false), torch::tensor({{1.0f, 2.0f, -inf, -inf}})));
  c.top_p = 0.5;
  EXPECT_TRUE(torch::equal(process_logits(logits, c, 0, false), torch::tensor({{-inf, 2.0f, -inf, -inf}})));
}

TEST(Generate, BadInputsAreConfigErrors) {
  auto m = make_model(17);
  EXPECT_THROW(generate(m, {}, gen_cfg(4, 4, true), 22, 0), ConfigError);
  EXPECT_THROW(generate(m, {{1}, {}}, gen_cfg(4, 4, true), 22, 0), ConfigError);
  EXPECT_THROW(generate(m, {{1, 99}}, gen_cfg(4, 4, true), 22, 0), ConfigError);
  EXPECT_THROW(generate(m, {{1, 2}}, gen_cfg(47, 47, true), 22, 0), ConfigError);  // 2 + 47 > 48
  auto t0 = gen_cfg(4, 4, false);
  t0.temperature = 0;
  EXPECT_THROW(generate(m, {{1}}, t0, 22, 0), ConfigError);
}

// response_tokens on a hand-made batch: row 0 stopped at eos 9, row 1 at the model's other eos id
// 7, row 2 ran to the length limit (its last token is no stop id: nothing dropped).
TEST(ResponseTokens, DropOnlyTheTokenThatStoppedTheResponse) {
  GenerationResult gen;
  gen.response_ids = torch::tensor({3, 9, 9, 4, 5, 7, 1, 2, 6}, torch::kLong).reshape({3, 3});
  gen.response_mask = torch::tensor({1, 1, 0, 1, 1, 1, 1, 1, 1}, torch::kLong).reshape({3, 3});
  gen.stop_ids = {9, 7};
  const auto all = response_tokens(gen, /*with_stop=*/true);
  const auto text = response_tokens(gen, /*with_stop=*/false);
  EXPECT_EQ(all, (std::vector<std::vector<int64_t>>{{3, 9}, {4, 5, 7}, {1, 2, 6}}));
  EXPECT_EQ(text, (std::vector<std::vector<int64_t>>{{3}, {4, 5}, {1, 2, 6}}));
}
