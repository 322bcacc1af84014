// PPO pieces against hand-computed cases: per-token rewards (k1, k3), risk selection with ties,
// the clipped policy/value loss and its stats, the KL controller arithmetic.
#include "rarlhf/rl/ppo.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "rarlhf/common/error.h"

namespace {

using namespace rarlhf;

TEST(PerTokenRewards, HandWorkedK1AndK3) {
  // Row 0: all 3 tokens valid, score 2 on t=2. Row 1: mask [1, 1, 0], score -1 lands on t=1.
  auto lp = torch::tensor({-1.0f, -2.0f, -0.5f, -1.0f, -1.0f, -3.0f}).view({2, 3});
  auto ref = torch::tensor({-1.5f, -1.0f, -0.5f, -2.0f, -0.5f, -1.0f}).view({2, 3});
  auto mask = torch::tensor({1, 1, 1, 1, 1, 0}, torch::kLong).view({2, 3});
  auto scores = torch::tensor({2.0f, -1.0f});
  // k1: kl = lp - ref = [0.5, -1, 0; 1, -0.5, -2]; -0.1 * kl * mask = [-0.05, 0.1, 0; -0.1, 0.05, 0]
  auto r1 = per_token_rewards(scores, lp, ref, mask, 0.1, "k1");
  auto want1 = torch::tensor({-0.05f, 0.1f, 2.0f, -0.1f, -0.95f, 0.0f}).view({2, 3});
  EXPECT_TRUE(torch::allclose(r1, want1, 1e-6, 1e-6)) << r1;
  // k3: d = ref - lp; kl = e^d - 1 - d. d = -0.5 -> 0.1065307; d = 1 -> 0.7182818; d = 0 -> 0;
  // d = -1 -> 0.3678794; d = 0.5 -> 0.1487213.
  auto r3 = per_token_rewards(scores, lp, ref, mask, 0.1, "k3");
  auto want3 = torch::tensor({-0.01065307f, -0.07182818f, 2.0f, -0.03678794f, -0.01487213f - 1.0f, 0.0f}).view({2, 3});
  EXPECT_TRUE(torch::allclose(r3, want3, 1e-5, 1e-6)) << r3;
  EXPECT_THROW(per_token_rewards(scores, lp, ref, mask, 0.1, "k2"), ConfigError);
  EXPECT_THROW(per_token_rewards(scores, lp, ref, torch::zeros({2, 3}), 0.1, "k1"), c10::Error);  // empty row
}

TEST(RiskSelection, LowestReturnsWithTies) {
  auto returns = torch::tensor({3.0f, 1.0f, 2.0f, 2.0f, 5.0f});
  auto sel = select_lowest_returns(returns, 2);  // sorted [1, 2, 2, 3, 5]: q = 2, both 2s kept
  EXPECT_DOUBLE_EQ(sel.threshold, 2.0);
  EXPECT_EQ(sel.keep_count, 3);
  EXPECT_TRUE(torch::equal(sel.keep, torch::tensor({false, true, true, true, false})));
  sel = select_lowest_returns(returns, 1);
  EXPECT_EQ(sel.keep_count, 1);
  EXPECT_TRUE(sel.keep[1].item<bool>());
  sel = select_lowest_returns(returns, 5);
  EXPECT_EQ(sel.keep_count, 5);
  EXPECT_DOUBLE_EQ(sel.threshold, 5.0);
  // All equal: everything is a tie at q-hat.
  EXPECT_EQ(select_lowest_returns(torch::full({4}, 0.5), 1).keep_count, 4);
  EXPECT_THROW(select_lowest_returns(returns, 0), c10::Error);
  EXPECT_THROW(select_lowest_returns(returns, 6), c10::Error);
  EXPECT_THROW(select_lowest_returns(torch::tensor({1.0f, NAN}), 1), c10::Error);
}

// The ablation control: exactly k episodes, seed-determined, uniform over the batch (each episode's
// inclusion frequency k/B within binomial noise over many seeds), independent of the returns.
TEST(RiskSelection, RandomEpisodesAreExactlyKAndUniform) {
  auto returns = torch::tensor({3.0f, 1.0f, 2.0f, 2.0f, 5.0f, 0.0f, -1.0f, 4.0f});
  auto a = select_random_episodes(returns, 3, 11);
  auto b = select_random_episodes(returns, 3, 11);
  EXPECT_EQ(a.keep_count, 3);
  EXPECT_EQ(a.keep.sum().item<int64_t>(), 3);  // no tie expansion, unlike the lowest-returns rule
  EXPECT_TRUE(torch::equal(a.keep, b.keep));
  double max_kept = -1e9;
  for (int64_t i = 0; i < 8; ++i) {
    if (a.keep[i].item<bool>()) max_kept = std::max(max_kept, returns[i].item<double>());
  }
  EXPECT_DOUBLE_EQ(a.threshold, max_kept);
  // Same draw whatever the returns are (the rule must not look at them).
  EXPECT_TRUE(torch::equal(select_random_episodes(-returns, 3, 11).keep, a.keep));
  const int trials = 4000;
  std::vector<int> hits(8, 0);
  int differs = 0;
  for (int s = 0; s < trials; ++s) {
    auto sel = select_random_episodes(returns, 3, static_cast<uint64_t>(s));
    for (int64_t i = 0; i < 8; ++i) hits[i] += sel.keep[i].item<bool>();
    differs += !torch::equal(sel.keep, a.keep);
  }
  // p = 3/8, n = 4000: sd = sqrt(n p (1-p)) = 30.6; allow 5 sd around 1500.
  for (int64_t i = 0; i < 8; ++i) EXPECT_NEAR(hits[i], 1500, 153) << "episode " << i;
  EXPECT_GT(differs, trials / 2);
  EXPECT_EQ(select_random_episodes(returns, 8, 3).keep_count, 8);
  EXPECT_THROW(select_random_episodes(returns, 0, 1), c10::Error);
  EXPECT_THROW(select_random_episodes(returns, 9, 1), c10::Error);
  EXPECT_THROW(select_random_episodes(torch::tensor({1.0f, NAN}), 1, 1), c10::Error);
}

TEST(PpoLoss, HandComputedSmallCase) {
  PpoConfig cfg;  // clip 0.2, value clip 0.2, vf_coef 0.1, ratio_threshold 10
  // Three tokens, the third masked out (its huge values must not matter).
  //  t0: log ratio ln(1.5) -> ratio 1.5, A = 1   : pg1 = -1.5, pg2 = -1.2 -> max -1.2 (clipped)
  //  t1: log ratio ln(0.5) -> ratio 0.5, A = -2  : pg1 = 1.0,  pg2 = 1.6  -> max 1.6  (clipped)
  //  pg_loss = (-1.2 + 1.6) / 2 = 0.2, clipfrac = 1
  //  values: v = [1.0, 0.0], old_v = [0.5, 0.1], returns G = [2.0, 0.0]
  //  t0: clip(1.0, 0.3, 0.7) = 0.7: vf1 = 1.0, vf2 = 1.69 -> 1.69 (clipped)
  //  t1: clip(0.0, -0.1, 0.3) = 0.0: vf1 = 0, vf2 = 0 -> 0
  //  vf_loss = 0.5 * 1.69 / 2 = 0.4225, vf_clipfrac = 0.5; loss = 0.2 + 0.1 * 0.4225 = 0.24225
  //  approx_kl = 0.5 * (ln(1.5)^2 + ln(0.5)^2) / 2; ratio_mean = 1.0, ratio_max = 1.5
  auto old_lp = torch::tensor({{-1.0f, -1.0f, -1.0f}});
  auto lp = (old_lp + torch::tensor({{std::log(1.5f), std::log(0.5f), 50.0f}})).requires_grad_(true);
  auto v = torch::tensor({{1.0f, 0.0f, 99.0f}}).requires_grad_(true);
  auto old_v = torch::tensor({{0.5f, 0.1f, 0.0f}});
  auto adv = torch::tensor({{1.0f, -2.0f, 7.0f}});
  auto ret = torch::tensor({{2.0f, 0.0f, -9.0f}});
  auto mask = torch::tensor({{1.0f, 1.0f, 0.0f}});
  auto ent = torch::tensor({{2.0f, 4.0f, 100.0f}});
  PpoLoss out = ppo_loss(lp, old_lp, v, old_v, adv, ret, mask, cfg, ent);
  EXPECT_NEAR(out.loss.item<double>(), 0.24225, 1e-6);
  EXPECT_NEAR(out.stats.pg_loss, 0.2, 1e-6);
  EXPECT_NEAR(out.stats.vf_loss, 0.4225, 1e-6);
  EXPECT_NEAR(out.stats.clipfrac, 1.0, 1e-9);
  EXPECT_NEAR(out.stats.vf_clipfrac, 0.5, 1e-9);
  const double l1 = std::log(1.5), l2 = std::log(0.5);
  EXPECT_NEAR(out.stats.approx_kl, 0.25 * (l1 * l1 + l2 * l2), 1e-6);
  EXPECT_NEAR(out.stats.policy_entropy, 3.0, 1e-6);
  EXPECT_NEAR(out.stats.ratio_mean, 1.0, 1e-6);
  EXPECT_NEAR(out.stats.ratio_max, 1.5, 1e-6);
  EXPECT_LE(out.stats.ratio_mean, cfg.ratio_threshold);  // the trainer's skip rule would keep it
  // Both policy tokens are clipped -> no policy gradient; value: t0 clipped (no grad), t1 unclipped
  // with v = G -> 0. So every gradient is zero here.
  out.loss.backward();
  EXPECT_NEAR(lp.grad().abs().sum().item<double>(), 0.0, 1e-9);
  EXPECT_NEAR(v.grad().abs().sum().item<double>(), 0.0, 1e-9);
}

TEST(PpoLoss, UnclippedGradient) {
  // ratio 1.1 inside the clip range, A = 2, one of two tokens kept: d loss / d lp_0 = -A * ratio / n = -2.2.
  PpoConfig cfg;
  auto old_lp = torch::zeros({1, 2});
  auto lp = torch::tensor({{std::log(1.1f), 0.0f}}).requires_grad_(true);
  auto v = torch::tensor({{0.5f, 0.0f}}).requires_grad_(true);
  auto old_v = torch::tensor({{0.45f, 0.0f}});
  auto ret = torch::tensor({{1.0f, 0.0f}});
  auto out = ppo_loss(lp, old_lp, v, old_v, torch::tensor({{2.0f, 1.0f}}), ret, torch::tensor({{1.0f, 0.0f}}), cfg);
  out.loss.backward();
  EXPECT_NEAR(lp.grad()[0][0].item<double>(), -2.2, 1e-5);
  EXPECT_EQ(lp.grad()[0][1].item<double>(), 0.0);
  // value: |0.5 - 0.45| < 0.2 -> unclipped: d/dv 0.1 * 0.5 * (v - G)^2 = 0.1 * (0.5 - 1) = -0.05
  EXPECT_NEAR(v.grad()[0][0].item<double>(), -0.05, 1e-6);
  EXPECT_NEAR(out.stats.clipfrac, 0.0, 1e-9);
}

TEST(PpoLoss, RatioThresholdAndEmptyMask) {
  PpoConfig cfg;
  cfg.ratio_threshold = 10.0;
  auto z = torch::zeros({1, 2});
  auto lp = torch::full({1, 2}, 3.0f).requires_grad_(true);  // ratio e^3 = 20 > 10
  auto out = ppo_loss(lp, z, z, z, torch::ones({1, 2}), z, torch::ones({1, 2}), cfg);
  EXPECT_GT(out.stats.ratio_mean, cfg.ratio_threshold);  // what the trainer's skip rule reads
  EXPECT_NEAR(out.stats.ratio_mean, std::exp(3.0), 1e-4);
  // All episodes dropped: a zero loss that still backpropagates (zeros).
  auto empty = ppo_loss(lp, z, z, z, torch::ones({1, 2}), z, torch::zeros({1, 2}), cfg);
  EXPECT_EQ(empty.loss.item<double>(), 0.0);
  empty.loss.backward();
  EXPECT_EQ(lp.grad().abs().sum().item<double>(), 0.0);
  EXPECT_THROW(ppo_loss(lp, z, z, z, torch::ones({1, 3}), z, z, cfg), c10::Error);
}

TEST(KlController, AdaptiveArithmetic) {
  PpoConfig cfg;  // beta 0.2, target 6, horizon 10000
  KlController kl(cfg);
  EXPECT_DOUBLE_EQ(kl.value(), 0.2);
  kl.update(9.0, 128);  // e = clip(0.5) = 0.2 -> * (1 + 0.2 * 128 / 10000) = * 1.00256
  EXPECT_NEAR(kl.value(), 0.2 * 1.00256, 1e-12);
  kl.update(3.0, 128);  // e = clip(-0.5) = -0.2 -> * 0.99744
  EXPECT_NEAR(kl.value(), 0.2 * 1.00256 * 0.99744, 1e-12);
  kl.set_value(0.3);
  kl.update(6.6, 100);  // e = 0.1 -> * (1 + 0.1 * 100 / 10000) = * 1.001
  EXPECT_NEAR(kl.value(), 0.3 * 1.001, 1e-12);
  kl.update(NAN, 100);  // ignored, with a warning
  EXPECT_NEAR(kl.value(), 0.3 * 1.001, 1e-12);
  EXPECT_THROW(kl.set_value(-1.0), ConfigError);

  cfg.adaptive_kl = false;
  KlController fixed(cfg);
  fixed.update(100.0, 128);
  EXPECT_DOUBLE_EQ(fixed.value(), 0.2);
  cfg.adaptive_kl = true;
  cfg.kl_target = 0.0;
  EXPECT_THROW(KlController{cfg}, ConfigError);
}

}  // namespace
