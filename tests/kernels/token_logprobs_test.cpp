// token_logprobs / token_logprobs_entropy (CPU twin) against log_softmax + gather and the direct
// entropy formula, values and gradients, over ragged vocab sizes, dtypes, 2-D/3-D/strided inputs.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "rarlhf/kernels/ops.h"

namespace {

using rarlhf::token_logprobs;
using rarlhf::token_logprobs_entropy;

// Reference computed in double, independent of both code paths under test.
std::pair<torch::Tensor, torch::Tensor> reference(const torch::Tensor& logits, const torch::Tensor& targets) {
  auto lsm = torch::log_softmax(logits.to(torch::kDouble), -1);
  auto lp = lsm.gather(-1, targets.unsqueeze(-1)).squeeze(-1);
  // p log p -> 0 where p = 0 (masked logits), as in the limit.
  auto plogp = torch::where(torch::isinf(lsm), torch::zeros_like(lsm), lsm.exp() * lsm);
  return {lp, -plogp.sum(-1)};
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, double atol, double rtol, const std::string& what) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  auto diff = (a.to(torch::kDouble) - b.to(torch::kDouble)).abs();
  auto tol = atol + rtol * b.to(torch::kDouble).abs();
  EXPECT_TRUE((diff <= tol).all().item<bool>())
      << what << ": max abs diff " << diff.max().item<double>();
}

TEST(TokenLogprobs, HandWorkedExample) {
  // softmax(log [1, 2, 3, 4]) = [0.1, 0.2, 0.3, 0.4]
  auto logits = torch::log(torch::tensor({1.0f, 2.0f, 3.0f, 4.0f})).view({1, 4});
  auto targets = torch::tensor({3}, torch::kLong);
  auto [lp, ent] = token_logprobs_entropy(logits, targets);
  EXPECT_NEAR(lp.item<float>(), std::log(0.4), 1e-6);
  const double h = -(0.1 * std::log(0.1) + 0.2 * std::log(0.2) + 0.3 * std::log(0.3) + 0.4 * std::log(0.4));
  EXPECT_NEAR(ent.item<float>(), h, 1e-6);
  // d logp_3 / d x = onehot(3) - p
  auto x = logits.clone().requires_grad_(true);
  token_logprobs(x, targets).sum().backward();
  expect_close(x.grad(), torch::tensor({{-0.1f, -0.2f, -0.3f, 0.6f}}), 1e-6, 0, "grad");
}

class TokenLogprobsVocab : public ::testing::TestWithParam<int64_t> {};

TEST_P(TokenLogprobsVocab, MatchesLogSoftmaxGatherFp32) {
  const int64_t vocab = GetParam();
  torch::manual_seed(vocab);
  for (auto shape : {std::vector<int64_t>{5, vocab}, std::vector<int64_t>{3, 4, vocab}}) {
    auto logits = torch::randn(shape) * 4.0;
    auto tshape = std::vector<int64_t>(shape.begin(), shape.end() - 1);
    auto targets = torch::randint(vocab, tshape, torch::kLong);
    auto [ref_lp, ref_ent] = reference(logits, targets);
    auto [lp, ent] = token_logprobs_entropy(logits, targets);
    EXPECT_EQ(lp.scalar_type(), torch::kFloat);
    expect_close(lp, ref_lp, 2e-5, 1e-5, "logprobs");
    expect_close(ent, ref_ent, 2e-5, 1e-5, "entropy");
    expect_close(token_logprobs(logits, targets), ref_lp, 2e-5, 1e-5, "logprobs only");
    // The plain path agrees too (it is the A/B baseline).
    expect_close(token_logprobs(logits, targets, false), ref_lp, 2e-5, 1e-5, "plain path");
  }
}

TEST_P(TokenLogprobsVocab, GradientsMatchAutogradFp32) {
  const int64_t vocab = GetParam();
  torch::manual_seed(100 + vocab);
  auto logits = torch::randn({2, 3, vocab}) * 3.0;
  auto targets = torch::randint(vocab, {2, 3}, torch::kLong);
  auto w_lp = torch::randn({2, 3});
  auto w_ent = torch::randn({2, 3});

  auto x_ref = logits.to(torch::kDouble).requires_grad_(true);
  auto lsm = torch::log_softmax(x_ref, -1);
  auto ref_loss = (lsm.gather(-1, targets.unsqueeze(-1)).squeeze(-1) * w_lp).sum() +
                  (-(lsm.exp() * lsm).sum(-1) * w_ent).sum();
  ref_loss.backward();

  auto x = logits.clone().requires_grad_(true);
  auto [lp, ent] = token_logprobs_entropy(x, targets);
  ((lp * w_lp).sum() + (ent * w_ent).sum()).backward();
  expect_close(x.grad(), x_ref.grad(), 1e-6, 1e-4, "grad (logprobs + entropy)");

  // logprobs alone, and entropy alone (the other output unused: undefined grad).
  auto x2 = logits.clone().requires_grad_(true);
  (token_logprobs(x2, targets) * w_lp).sum().backward();
  auto x2_ref = logits.to(torch::kDouble).requires_grad_(true);
  (torch::log_softmax(x2_ref, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1) * w_lp).sum().backward();
  expect_close(x2.grad(), x2_ref.grad(), 1e-6, 1e-4, "grad (logprobs)");

  auto x3 = logits.clone().requires_grad_(true);
  (token_logprobs_entropy(x3, targets).second * w_ent).sum().backward();
  auto x3_ref = logits.to(torch::kDouble).requires_grad_(true);
  auto l3 = torch::log_softmax(x3_ref, -1);
  (-(l3.exp() * l3).sum(-1) * w_ent).sum().backward();
  expect_close(x3.grad(), x3_ref.grad(), 1e-6, 1e-4, "grad (entropy)");
}

TEST_P(TokenLogprobsVocab, ReducedPrecisionInputs) {
  const int64_t vocab = GetParam();
  torch::manual_seed(200 + vocab);
  for (auto dtype : {torch::kBFloat16, torch::kHalf}) {
    auto logits = (torch::randn({4, vocab}) * 3.0).to(dtype);
    auto targets = torch::randint(vocab, {4}, torch::kLong);
    auto [ref_lp, ref_ent] = reference(logits, targets);  // exact math on the rounded inputs
    auto [lp, ent] = token_logprobs_entropy(logits, targets);
    EXPECT_EQ(lp.scalar_type(), torch::kFloat);
    expect_close(lp, ref_lp, 2e-5, 1e-5, "logprobs");
    expect_close(ent, ref_ent, 2e-5, 1e-5, "entropy");

    auto x = logits.clone().requires_grad_(true);
    auto w = torch::randn({4});
    (token_logprobs(x, targets) * w).sum().backward();
    EXPECT_EQ(x.grad().scalar_type(), dtype);
    auto x_ref = logits.to(torch::kDouble).requires_grad_(true);
    (torch::log_softmax(x_ref, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1) * w).sum().backward();
    // Only the final rounding to the input dtype differs (bf16: 8 mantissa bits).
    expect_close(x.grad(), x_ref.grad(), 1e-6, dtype == torch::kBFloat16 ? 8e-3 : 1e-3, "grad");
  }
}

INSTANTIATE_TEST_SUITE_P(RaggedVocab, TokenLogprobsVocab, ::testing::Values(50257, 1000, 33, 7, 1));

TEST(TokenLogprobs, StridedSliceMatchesContiguous) {
  // The PPO call site: logits[:, P-1:-1, :] of a [B, T, V] forward, not contiguous.
  torch::manual_seed(3);
  auto full = torch::randn({3, 9, 301});
  auto slice = full.slice(1, 2, 8);
  ASSERT_FALSE(slice.is_contiguous());
  auto targets = torch::randint(301, {3, 6}, torch::kLong);
  expect_close(token_logprobs(slice, targets), reference(slice, targets).first, 2e-5, 1e-5, "strided");

  auto x = full.clone().requires_grad_(true);
  token_logprobs(x.slice(1, 2, 8), targets).sum().backward();
  auto x_ref = full.to(torch::kDouble).requires_grad_(true);
  torch::log_softmax(x_ref.slice(1, 2, 8), -1).gather(-1, targets.unsqueeze(-1)).sum().backward();
  expect_close(x.grad(), x_ref.grad(), 1e-6, 1e-4, "strided grad");

  // A last dim that is not contiguous (transposed) is copied, still right.
  auto t = torch::randn({301, 4}).t();
  auto tt = torch::randint(301, {4}, torch::kLong);
  expect_close(token_logprobs(t, tt), reference(t, tt).first, 2e-5, 1e-5, "transposed");
}

TEST(TokenLogprobs, ExtremeLogitsStayFinite) {
  // -inf entries (vocab masking) and huge offsets: softmax is shift-invariant.
  auto logits = torch::randn({2, 5000});
  logits.index_put_({0, torch::indexing::Slice(0, 2500)}, -std::numeric_limits<float>::infinity());
  logits[1] += 1.0e4;
  auto targets = torch::tensor({4000, 17}, torch::kLong);
  auto [lp, ent] = token_logprobs_entropy(logits, targets);
  EXPECT_TRUE(torch::isfinite(lp).all().item<bool>());
  EXPECT_TRUE(torch::isfinite(ent).all().item<bool>());
  auto [ref_lp, ref_ent] = reference(logits, targets);
  expect_close(lp[0], ref_lp[0], 2e-5, 1e-5, "masked row");
  expect_close(ent[0], ref_ent[0], 2e-5, 1e-5, "masked row entropy");
  // Row 1 in fp32 at 1e4 has spacing ~1e-3: compare with the exact result for the rounded inputs.
  expect_close(lp[1], ref_lp[1], 1e-3, 0, "shifted row");
  // The masked entries get exactly zero gradient.
  auto x = logits.clone().requires_grad_(true);
  token_logprobs(x, targets).sum().backward();
  EXPECT_EQ(x.grad()[0].slice(0, 0, 2500).abs().max().item<float>(), 0.0f);
  // Entropy gradient too: finite, zero on the masked entries (p log p -> 0 there).
  auto y = logits.clone().requires_grad_(true);
  token_logprobs_entropy(y, targets).second.sum().backward();
  EXPECT_TRUE(torch::isfinite(y.grad()).all().item<bool>());
  EXPECT_EQ(y.grad()[0].slice(0, 0, 2500).abs().max().item<float>(), 0.0f);
}

TEST(TokenLogprobs, RejectsBadInput) {
  auto logits = torch::randn({2, 10});
  EXPECT_THROW(token_logprobs(logits, torch::tensor({1, 10}, torch::kLong)), c10::Error);   // id out of range
  EXPECT_THROW(token_logprobs(logits, torch::tensor({1, -1}, torch::kLong)), c10::Error);
  EXPECT_THROW(token_logprobs(logits, torch::tensor({1, 2, 3}, torch::kLong)), c10::Error);  // shape
  EXPECT_THROW(token_logprobs(logits, torch::tensor({1, 2}, torch::kInt)), c10::Error);      // dtype
  EXPECT_THROW(token_logprobs(logits.to(torch::kDouble), torch::tensor({1, 2}, torch::kLong)), c10::Error);
}

}  // namespace
