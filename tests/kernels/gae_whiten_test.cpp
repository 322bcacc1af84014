// gae_scan against hand-worked numbers and a naive double loop; masked_whiten against the direct
// formula (TRL's masked_mean / unbiased masked_var).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "rarlhf/kernels/ops.h"

namespace {

using rarlhf::gae_scan;
using rarlhf::masked_whiten;

void expect_values(const torch::Tensor& t, const std::vector<double>& want, double tol, const std::string& what) {
  auto flat = t.reshape({-1}).to(torch::kDouble);
  ASSERT_EQ(flat.numel(), static_cast<int64_t>(want.size())) << what;
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(flat[i].item<double>(), want[i], tol) << what << "[" << i << "]";
}

TEST(GaeScan, HandWorkedExample) {
  // T = 3, gamma = 1, lambda = 0.95, rewards [0, 0, 1], values [0.5, 0.6, 0.7]:
  //   delta_2 = 1 + 0 - 0.7 = 0.3          A_2 = 0.3
  //   delta_1 = 0 + 0.7 - 0.6 = 0.1        A_1 = 0.1 + 0.95 * 0.3   = 0.385
  //   delta_0 = 0 + 0.6 - 0.5 = 0.1        A_0 = 0.1 + 0.95 * 0.385 = 0.46575
  //   returns = A + V = [0.96575, 0.985, 1.0]
  // Second row, mask [1, 1, 0] (reward on the masked token is dropped, bootstrap 0 after t=1):
  //   A_2 = 0, delta_1 = 0 + 0 - 0.6 -> A_1 = -0.6, delta_0 = 0.6 - 0.5 -> A_0 = 0.1 - 0.57 = -0.47
  //   returns = [0.03, 0, 0]
  auto rewards = torch::tensor({0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 1.0f}).view({2, 3});
  auto values = torch::tensor({0.5f, 0.6f, 0.7f, 0.5f, 0.6f, 0.7f}).view({2, 3});
  auto mask = torch::tensor({1, 1, 1, 1, 1, 0}, torch::kBool).view({2, 3});
  for (bool custom : {true, false}) {
    auto [adv, ret] = gae_scan(rewards, values, mask, 1.0, 0.95, custom);
    expect_values(adv, {0.46575, 0.385, 0.3, -0.47, -0.6, 0.0}, 1e-6, custom ? "adv custom" : "adv plain");
    expect_values(ret, {0.96575, 0.985, 1.0, 0.03, 0.0, 0.0}, 1e-6, custom ? "ret custom" : "ret plain");
  }
}

TEST(GaeScan, MatchesNaiveLoop) {
  torch::manual_seed(11);
  const int64_t B = 7, T = 13;
  const double gamma = 0.9, lam = 0.8;
  auto rewards = torch::randn({B, T});
  auto values = torch::randn({B, T});
  auto mask = (torch::rand({B, T}) > 0.2).to(torch::kFloat);
  auto [adv, ret] = gae_scan(rewards, values, mask, gamma, lam);
  auto [adv_p, ret_p] = gae_scan(rewards, values, mask, gamma, lam, false);
  auto r = rewards.accessor<float, 2>();
  auto v = values.accessor<float, 2>();
  auto m = mask.accessor<float, 2>();
  for (int64_t b = 0; b < B; ++b) {
    double last = 0;
    for (int64_t t = T - 1; t >= 0; --t) {
      const double next_v = t + 1 < T ? v[b][t + 1] * m[b][t + 1] : 0.0;
      const double delta = r[b][t] * m[b][t] + gamma * next_v - v[b][t] * m[b][t];
      last = delta + gamma * lam * last;
      EXPECT_NEAR(adv[b][t].item<double>(), last, 1e-5);
      EXPECT_NEAR(ret[b][t].item<double>(), last + v[b][t] * m[b][t], 1e-5);
      EXPECT_NEAR(adv_p[b][t].item<double>(), last, 1e-5);
      EXPECT_NEAR(ret_p[b][t].item<double>(), last + v[b][t] * m[b][t], 1e-5);
    }
  }
}

TEST(GaeScan, RejectsBadShapes) {
  auto a = torch::zeros({2, 3});
  EXPECT_THROW(gae_scan(a, torch::zeros({2, 4}), a, 1.0, 0.95), c10::Error);
  EXPECT_THROW(gae_scan(torch::zeros({6}), torch::zeros({6}), torch::zeros({6}), 1.0, 0.95), c10::Error);
}

TEST(MaskedWhiten, HandWorkedExample) {
  // x = [1, 2, 3, 4]: mean 2.5, unbiased var = (2.25 + 0.25 + 0.25 + 2.25) / 3 = 5/3.
  // The masked-out 100 does not enter the statistics but is transformed like the rest.
  auto x = torch::tensor({1.0f, 2.0f, 3.0f, 4.0f, 100.0f});
  auto mask = torch::tensor({1.0f, 1.0f, 1.0f, 1.0f, 0.0f});
  const double s = 1.0 / std::sqrt(5.0 / 3.0 + 1e-8);
  for (bool custom : {true, false}) {
    expect_values(masked_whiten(x, mask, true, custom), {-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s, 97.5 * s}, 1e-5,
                  "shift");
    expect_values(masked_whiten(x, mask, false, custom),
                  {-1.5 * s + 2.5, -0.5 * s + 2.5, 0.5 * s + 2.5, 1.5 * s + 2.5, 97.5 * s + 2.5}, 1e-5, "keep mean");
  }
}

TEST(MaskedWhiten, MatchesDirectFormula) {
  torch::manual_seed(5);
  auto x = torch::randn({6, 20}) * 3 + 1;
  auto mask = (torch::rand({6, 20}) > 0.4).to(torch::kFloat);
  double n = 0, sum = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    n += mask.view(-1)[i].item<double>();
    sum += mask.view(-1)[i].item<double>() * x.view(-1)[i].item<double>();
  }
  const double mean = sum / n;
  double ss = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double c = x.view(-1)[i].item<double>() - mean;
    ss += mask.view(-1)[i].item<double>() * c * c;
  }
  const double inv = 1.0 / std::sqrt(ss / (n - 1) + 1e-8);
  auto want = (x.to(torch::kDouble) - mean) * inv;
  EXPECT_TRUE(torch::allclose(masked_whiten(x, mask).to(torch::kDouble), want, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(masked_whiten(x, mask, true, false).to(torch::kDouble), want, 1e-5, 1e-5));
  // Whitened over the mask: mean 0, unbiased variance ~1 on the kept entries.
  auto w = masked_whiten(x, mask).to(torch::kDouble);
  EXPECT_NEAR(((w * mask).sum() / n).item<double>(), 0.0, 1e-6);
  EXPECT_NEAR(((w * w * mask).sum() / (n - 1)).item<double>(), 1.0, 1e-5);
}

TEST(MaskedWhiten, RejectsEmptyOrSingleMask) {
  auto x = torch::randn({4});
  EXPECT_THROW(masked_whiten(x, torch::zeros({4})), c10::Error);
  EXPECT_THROW(masked_whiten(x, torch::tensor({0.0f, 1.0f, 0.0f, 0.0f})), c10::Error);
  EXPECT_THROW(masked_whiten(x, torch::ones({5})), c10::Error);
}

}  // namespace
