// onednn_linear (training's products on oneDNN's sgemm) against the same layer in float64 autograd:
// output and the gradients of x, w and b for both weight layouts, a frozen weight (no dW, as a LoRA
// base), no bias, [B, T, K] inputs; and that it refuses what it cannot run.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "rarlhf/kernels/ops.h"

namespace {

double max_rel(const torch::Tensor& got, const torch::Tensor& want) {
  return ((got.to(torch::kDouble) - want).abs().max() / (want.abs().max() + 1e-12)).item<double>();
}

TEST(OnednnLinear, OutputAndGradientsMatchFloat64Autograd) {
  auto probe = torch::zeros({32, 4});
  if (!rarlhf::onednn_linear_applies(probe, torch::zeros({4, 4}))) GTEST_SKIP() << "no oneDNN in this process";
  torch::manual_seed(21);
  for (bool w_t : {true, false}) {
    for (bool bias : {true, false}) {
      for (bool frozen : {false, true}) {
        const std::string what = std::string(w_t ? "[N,K]" : "[K,N]") + (bias ? " bias" : "") + (frozen ? " frozen" : "");
        const int64_t B = 5, T = 13, K = 37, N = 70;  // 65 rows
        auto x = torch::randn({B, T, K}, torch::requires_grad());
        auto w = (w_t ? torch::randn({N, K}) : torch::randn({K, N})).requires_grad_(!frozen);
        auto b = bias ? torch::randn({N}, torch::requires_grad()) : torch::Tensor();
        auto y = rarlhf::onednn_linear(x, w, b, w_t);
        auto g = torch::randn({B, T, N});
        (y * g).sum().backward();

        auto xd = x.detach().to(torch::kDouble).requires_grad_(true);
        auto wd = w.detach().to(torch::kDouble).requires_grad_(true);
        auto bd = bias ? b.detach().to(torch::kDouble).requires_grad_(true) : torch::Tensor();
        auto yd = torch::matmul(xd, w_t ? wd.t() : wd);
        if (bias) yd = yd + bd;
        (yd * g.to(torch::kDouble)).sum().backward();

        ASSERT_EQ(y.sizes(), yd.sizes()) << what;
        EXPECT_LE(max_rel(y.detach(), yd.detach()), 1e-6) << what;
        ASSERT_TRUE(x.grad().defined()) << what;
        EXPECT_EQ(x.grad().sizes(), x.sizes()) << what;
        EXPECT_LE(max_rel(x.grad(), xd.grad()), 1e-6) << what;
        if (frozen) {
          EXPECT_FALSE(w.grad().defined()) << what;
        } else {
          EXPECT_LE(max_rel(w.grad(), wd.grad()), 1e-6) << what;
        }
        if (bias) EXPECT_LE(max_rel(b.grad(), bd.grad()), 1e-6) << what;
      }
    }
  }
}

TEST(OnednnLinear, AppliesToFloat32CpuProductsOfAtLeast32Rows) {
  if (!rarlhf::cpu_linear_uses_onednn()) GTEST_SKIP() << "no oneDNN in this process";
  auto w = torch::zeros({8, 4});
  EXPECT_TRUE(rarlhf::onednn_linear_applies(torch::zeros({4, 8, 4}), w));
  EXPECT_FALSE(rarlhf::onednn_linear_applies(torch::zeros({31, 4}), w));  // a decoding step: the tiles
  EXPECT_FALSE(rarlhf::onednn_linear_applies(torch::zeros({32, 4}, torch::kBFloat16), w.to(torch::kBFloat16)));
  EXPECT_FALSE(rarlhf::onednn_linear_applies(torch::zeros({32, 4}, torch::kDouble), w.to(torch::kDouble)));
  EXPECT_THROW(rarlhf::onednn_linear(torch::zeros({32, 5}), w, {}, true), c10::Error);
}

}  // namespace
