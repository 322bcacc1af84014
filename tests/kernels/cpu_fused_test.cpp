// The fused CPU inference kernels (cpu_attention, cpu_rms_norm, cpu_rope, cpu_silu_mul) against the
// same math written out in float64 ATen ops: grouped heads, masks (left padding, a fully masked row),
// strided inputs as the model code passes them, D and S around the 8/16-lane tails, partial and
// interleaved rotary dims; each result the same bits on 1 and 2 threads.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <string>

#include "rarlhf/kernels/ops.h"

namespace {

bool have_kernels() {
  auto t = torch::zeros({1, 1, 1, 1});
  return rarlhf::cpu_attention_applies(t, t, t) && rarlhf::cpu_fused_applies({&t});
}

#define SKIP_WITHOUT_KERNELS() \
  if (!have_kernels()) GTEST_SKIP() << "needs AVX2+FMA and RARLHF_CPU_LINEAR not off"

void expect_close(const torch::Tensor& got, const torch::Tensor& want, double tol, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  ASSERT_EQ(got.scalar_type(), torch::kFloat) << what;
  const double err = (got.to(torch::kDouble) - want).abs().max().item<double>();
  EXPECT_LE(err, tol) << what;
}

// softmax(q k^T * scale, masked to the lowest float) v in float64; query head h reads K/V head h / n_rep.
torch::Tensor attention_reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                  const torch::Tensor& allowed, double scale) {
  const int64_t n_rep = q.size(1) / k.size(1);
  auto kd = k.to(torch::kDouble).repeat_interleave(n_rep, 1), vd = v.to(torch::kDouble).repeat_interleave(n_rep, 1);
  auto scores = torch::matmul(q.to(torch::kDouble), kd.transpose(-1, -2)) * scale;
  if (allowed.defined()) scores = scores.masked_fill(allowed.logical_not(), std::numeric_limits<float>::lowest());
  return torch::matmul(torch::softmax(scores, -1), vd);
}

TEST(CpuAttention, MatchesFloat64AttentionWithGroupedHeadsAndMasks) {
  SKIP_WITHOUT_KERNELS();
  torch::manual_seed(11);
  torch::NoGradGuard no_grad;
  struct Shape {
    int64_t B, H, Hkv, T, S, D;
  };
  for (const Shape& s : {Shape{2, 4, 4, 1, 1, 8}, Shape{3, 9, 3, 1, 37, 64}, Shape{2, 6, 2, 3, 20, 17},
                         Shape{1, 2, 1, 4, 9, 5}, Shape{4, 12, 12, 1, 112, 64}, Shape{2, 4, 2, 2, 8, 128}}) {
    const std::string what = "B" + std::to_string(s.B) + " H" + std::to_string(s.H) + "/" + std::to_string(s.Hkv) +
                             " T" + std::to_string(s.T) + " S" + std::to_string(s.S) + " D" + std::to_string(s.D);
    // q as the model passes it: a linear's [B, T, H, D] output viewed [B, H, T, D]; k/v a narrowed cache.
    auto q = torch::randn({s.B, s.T, s.H, s.D}).transpose(1, 2);
    auto k = torch::randn({s.B, s.Hkv, s.S + 5, s.D}).narrow(2, 0, s.S);
    auto v = torch::randn({s.B, s.Hkv, s.S + 5, s.D}).narrow(2, 0, s.S);
    const double scale = 1.0 / std::sqrt(double(s.D));
    expect_close(rarlhf::cpu_attention(q, k, v, {}, scale), attention_reference(q, k, v, {}, scale), 2e-6,
                 what + " unmasked");
    // Left padding: row b has b pad positions, plus a causal edge for T > 1; [B, 1, T, S] bool.
    auto pos = torch::arange(s.S);
    auto allowed = torch::empty({s.B, 1, s.T, s.S}, torch::kBool);
    for (int64_t b = 0; b < s.B; ++b) {
      for (int64_t t = 0; t < s.T; ++t) {
        allowed[b][0][t] = (pos >= std::min<int64_t>(b, s.S - 1)) & (pos <= s.S - s.T + t);
      }
    }
    expect_close(rarlhf::cpu_attention(q, k, v, allowed, scale), attention_reference(q, k, v, allowed, scale), 2e-6,
                 what + " masked");
    // One mask for the whole batch, broadcast over B.
    auto shared = allowed.narrow(0, 0, 1);
    expect_close(rarlhf::cpu_attention(q, k, v, shared, scale),
                 attention_reference(q, k, v, shared.expand({s.B, 1, s.T, s.S}), scale), 2e-6, what + " shared mask");
  }
}

TEST(CpuAttention, FullyMaskedRowIsUniformAsTheAtenSoftmax) {
  SKIP_WITHOUT_KERNELS();
  torch::manual_seed(12);
  torch::NoGradGuard no_grad;
  auto q = torch::randn({1, 2, 1, 16}), k = torch::randn({1, 2, 6, 16}), v = torch::randn({1, 2, 6, 16});
  auto allowed = torch::zeros({1, 1, 1, 6}, torch::kBool);
  auto out = rarlhf::cpu_attention(q, k, v, allowed, 0.25);
  expect_close(out, v.to(torch::kDouble).mean(2, true), 1e-6, "every position masked: the mean of v");
}

TEST(CpuAttention, SameBitsOnOneAndTwoThreads) {
  SKIP_WITHOUT_KERNELS();
  torch::manual_seed(13);
  torch::NoGradGuard no_grad;
  auto q = torch::randn({4, 9, 1, 64}), k = torch::randn({4, 3, 50, 64}), v = torch::randn({4, 3, 50, 64});
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  auto one = rarlhf::cpu_attention(q, k, v, {}, 0.125).contiguous();
  at::set_num_threads(2);
  auto two = rarlhf::cpu_attention(q, k, v, {}, 0.125).contiguous();
  at::set_num_threads(before);
  EXPECT_TRUE(torch::equal(one, two));
}

TEST(CpuAttention, RefusesWhatItCannotRun) {
  SKIP_WITHOUT_KERNELS();
  auto q = torch::randn({1, 3, 1, 8}), k = torch::randn({1, 2, 4, 8}), v = torch::randn({1, 2, 4, 8});
  EXPECT_THROW(rarlhf::cpu_attention(q, k, v, {}, 1.0), c10::Error);  // 3 heads over 2 K/V heads
  auto q2 = torch::randn({1, 2, 1, 8});
  EXPECT_THROW(rarlhf::cpu_attention(q2, k, v, torch::ones({1, 1, 1, 3}, torch::kBool), 1.0), c10::Error);
  auto wants_grad = torch::randn({1, 2, 1, 8}, torch::requires_grad());
  EXPECT_FALSE(rarlhf::cpu_attention_applies(wants_grad, k, v));
  EXPECT_FALSE(rarlhf::cpu_attention_applies(q2.to(torch::kDouble), k, v));
}

TEST(CpuFused, RmsNormMatchesFloat64) {
  SKIP_WITHOUT_KERNELS();
  torch::manual_seed(14);
  torch::NoGradGuard no_grad;
  for (int64_t C : {1, 7, 8, 16, 17, 576, 2048}) {
    for (int64_t M : {1, 3, 64}) {
      auto x = torch::randn({M, 2, C}).transpose(0, 1) * 3;  // strided rows
      auto w = torch::randn({C});
      auto xd = x.to(torch::kDouble);
      auto want = w.to(torch::kDouble) * (xd * torch::rsqrt(xd.pow(2).mean(-1, true) + 1e-5));
      expect_close(rarlhf::cpu_rms_norm(x, w, 1e-5), want, 2e-5, "C" + std::to_string(C) + " M" + std::to_string(M));
    }
  }
}

TEST(CpuFused, SiluMulMatchesFloat64AcrossTheExpRange) {
  SKIP_WITHOUT_KERNELS();
  torch::NoGradGuard no_grad;
  // Every regime of the vector exp: underflow (silu(g) -> -0 * ...), the normal range, overflow of e^-g.
  auto g = torch::cat({torch::linspace(-120, 120, 4001), torch::randn({1003}) * 4});
  auto u = torch::randn({g.numel()});
  auto gd = g.to(torch::kDouble);
  auto want = gd * torch::sigmoid(gd) * u.to(torch::kDouble);
  auto got = rarlhf::cpu_silu_mul(g, u);
  auto rel = (got.to(torch::kDouble) - want).abs() / (want.abs() + 1e-30);
  EXPECT_LE(rel.max().item<double>(), 1e-6);
  // A NaN stays NaN.
  auto nan = rarlhf::cpu_silu_mul(torch::full({9}, std::nanf("")), torch::ones({9}));
  EXPECT_TRUE(torch::isnan(nan).all().item<bool>());
}

TEST(CpuFused, GeluTanhMatchesFloat64) {
  SKIP_WITHOUT_KERNELS();
  torch::NoGradGuard no_grad;
  auto x = torch::cat({torch::linspace(-60, 60, 4001), torch::randn({1005}) * 3, torch::linspace(-1e-3, 1e-3, 101)});
  auto xd = x.to(torch::kDouble);
  auto want = 0.5 * xd * (1 + torch::tanh(std::sqrt(2.0 / M_PI) * (xd + 0.044715 * xd.pow(3))));
  auto got = rarlhf::cpu_gelu_tanh(x);
  // Relative to max(|want|, 1e-3 |x|): near x ~ -5..-10 gelu is a tiny tail where fp32 keeps ~1e-7 of |x|.
  auto err = (got.to(torch::kDouble) - want).abs() / torch::max(want.abs(), 1e-3 * xd.abs() + 1e-30);
  EXPECT_LE(err.max().item<double>(), 2e-5);
  EXPECT_EQ(got.sizes(), x.sizes());
}

TEST(CpuFused, RopeMatchesRotateHalfAndInterleavedWithPartialDims) {
  SKIP_WITHOUT_KERNELS();
  torch::manual_seed(15);
  torch::NoGradGuard no_grad;
  const int64_t B = 3, H = 4, T = 5;
  for (bool interleaved : {false, true}) {
    for (auto [D, R] : {std::pair<int64_t, int64_t>{64, 64}, {64, 16}, {80, 20}, {6, 2}}) {
      auto x = torch::randn({B, T, H, D}).transpose(1, 2);  // [B, H, T, D] as a linear's output viewed per head
      auto cos = torch::randn({B, 1, T, R}), sin = torch::randn({B, 1, T, R});
      auto xr = x.narrow(-1, 0, R).to(torch::kDouble);
      torch::Tensor turned;
      if (interleaved) {
        auto pairs = xr.unflatten(-1, {R / 2, 2});
        turned = torch::stack({-pairs.select(-1, 1), pairs.select(-1, 0)}, -1).flatten(-2);
      } else {
        turned = torch::cat({-xr.narrow(-1, R / 2, R / 2), xr.narrow(-1, 0, R / 2)}, -1);
      }
      auto want = xr * cos.to(torch::kDouble) + turned * sin.to(torch::kDouble);
      if (R < D) want = torch::cat({want, x.narrow(-1, R, D - R).to(torch::kDouble)}, -1);
      const std::string what = std::string(interleaved ? "interleaved" : "rotate-half") + " D" + std::to_string(D) +
                               " R" + std::to_string(R);
      expect_close(rarlhf::cpu_rope(x, cos, sin, R, interleaved), want, 1e-5, what);
      // cos/sin shared by the batch (positions from one arange).
      auto c1 = cos.narrow(0, 0, 1), s1 = sin.narrow(0, 0, 1);
      auto want1 = xr * c1.to(torch::kDouble) + turned * s1.to(torch::kDouble);
      if (R < D) want1 = torch::cat({want1, x.narrow(-1, R, D - R).to(torch::kDouble)}, -1);
      expect_close(rarlhf::cpu_rope(x, c1, s1, R, interleaved), want1, 1e-5, what + " broadcast angles");
    }
  }
  auto x = torch::randn({1, 1, 1, 8});
  EXPECT_THROW(rarlhf::cpu_rope(x, torch::ones({1, 1, 1, 3}), torch::ones({1, 1, 1, 3}), 3, false), c10::Error);
}

}  // namespace
