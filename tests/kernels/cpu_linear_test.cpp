// cpu_linear (AVX-512 and AVX2 tiles) against a float64 product, over the shapes that hit every tile
// edge: x rows around the 4/8-row tiles and the 32-row panel/packing switch, weight columns around the
// 24/48-column blocks and the 3-row dot tiles, k tails, strided x, bias or none, both layouts.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "rarlhf/kernels/ops.h"

namespace {

using rarlhf::CpuLinearIsa;
using rarlhf::cpu_linear;

bool cpu_has(CpuLinearIsa isa) {
#if defined(__x86_64__)
  if (isa == CpuLinearIsa::kAvx512) return __builtin_cpu_supports("avx512f");
  if (isa == CpuLinearIsa::kAvx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return isa == CpuLinearIsa::kReference || isa == CpuLinearIsa::kBest;  // kBest: what the CPU has (+ oneDNN)
}

// |y - x @ w - b| <= 1e-5 * (|x| @ |w| + |b|) + 1e-6, the reference in float64. fp32 rounding of a
// sum of K products is at most ~K * eps * sum |terms| (eps = 6e-8): a hard bound up to K = 160; for
// GPT-2's K = 768 the random-sign errors grow like sqrt(K) * eps, still far below.
void expect_matches_reference(const torch::Tensor& y, const torch::Tensor& x, const torch::Tensor& w,
                              const torch::Tensor& b, bool transposed, const std::string& what) {
  auto xd = x.to(torch::kDouble), wd = (transposed ? w.t() : w).to(torch::kDouble);
  auto ref = torch::matmul(xd, wd);
  auto mag = torch::matmul(xd.abs(), wd.abs());
  if (b.defined()) {
    ref = ref + b.to(torch::kDouble);
    mag = mag + b.to(torch::kDouble).abs();
  }
  ASSERT_EQ(y.sizes(), ref.sizes()) << what;
  ASSERT_EQ(y.scalar_type(), torch::kFloat) << what;
  auto excess = (y.to(torch::kDouble) - ref).abs() - (mag * 1e-5 + 1e-6);
  EXPECT_LE(excess.max().item<double>(), 0.0) << what;
}

class CpuLinearIsaTest : public ::testing::TestWithParam<CpuLinearIsa> {
 protected:
  void SetUp() override {
    if (!cpu_has(GetParam())) GTEST_SKIP() << "CPU lacks " << rarlhf::cpu_linear_isa_name(GetParam());
  }
};

TEST_P(CpuLinearIsaTest, MatchesFloat64ProductOverTileEdges) {
  torch::manual_seed(3);
  torch::NoGradGuard no_grad;
  const std::vector<int64_t> rows = {1, 3, 4, 5, 8, 9, 17, 31, 32, 33, 70};
  const std::vector<int64_t> inner = {1, 5, 16, 17, 80};
  const std::vector<int64_t> cols = {1, 2, 7, 23, 24, 25, 47, 48, 49, 100};
  for (bool transposed : {false, true}) {
    for (int64_t M : rows) {
      for (int64_t K : inner) {
        for (int64_t N : cols) {
          auto x = torch::randn({M, K});
          auto w = transposed ? torch::randn({N, K}) : torch::randn({K, N});
          auto b = (M + N) % 2 ? torch::randn({N}) : torch::Tensor();
          auto y = cpu_linear(x, w, b, transposed, GetParam());
          expect_matches_reference(y, x, w, b, transposed,
                                   "M=" + std::to_string(M) + " K=" + std::to_string(K) + " N=" + std::to_string(N) +
                                       (transposed ? " [N,K]" : " [K,N]") + (b.defined() ? " bias" : ""));
        }
      }
    }
  }
}

TEST_P(CpuLinearIsaTest, Gpt2ShapesStridedAndBatchedInputs) {
  torch::manual_seed(4);
  torch::NoGradGuard no_grad;
  // A decoding step's c_fc on [B, 1, C] and the tied LM head on rows of a wider buffer (row stride > K).
  auto x = torch::randn({8, 1, 768});
  auto w = torch::randn({768, 3072}) * 0.02, b = torch::randn({3072});
  auto y = cpu_linear(x, w, b, false, GetParam());
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{8, 1, 3072}));
  expect_matches_reference(y.view({8, 3072}), x.view({8, 768}), w, b, false, "c_fc [8,1,768]");

  auto wide = torch::randn({6, 1000});
  auto xs = wide.narrow(1, 100, 768);  // strided rows
  auto e = torch::randn({1037, 768}) * 0.02;
  expect_matches_reference(cpu_linear(xs, e, {}, true, GetParam()), xs, e, {}, true, "LM head, strided x");
  auto xt = torch::randn({768, 40}).t();  // column-major x: copied, still correct
  expect_matches_reference(cpu_linear(xt, e, {}, true, GetParam()), xt, e, {}, true, "LM head, transposed x");
}

// A claim about the tiles (fixed-order sums), not about BLAS: instantiated for the vector ISAs only.
class CpuLinearTilesTest : public CpuLinearIsaTest {};

TEST_P(CpuLinearTilesTest, ResultsDoNotDependOnTheThreadCount) {
  torch::manual_seed(5);
  torch::NoGradGuard no_grad;
  auto x = torch::randn({40, 300});
  auto w = torch::randn({300, 500}), e = torch::randn({500, 300}), b = torch::randn({500});
  const int saved = at::get_num_threads();
  at::set_num_threads(1);
  auto y1 = cpu_linear(x, w, b, false, GetParam()), z1 = cpu_linear(x, e, {}, true, GetParam());
  at::set_num_threads(2);
  auto y2 = cpu_linear(x, w, b, false, GetParam()), z2 = cpu_linear(x, e, {}, true, GetParam());
  at::set_num_threads(saved);
  EXPECT_TRUE(torch::equal(y1, y2));
  EXPECT_TRUE(torch::equal(z1, z2));
}

std::string isa_test_name(const ::testing::TestParamInfo<CpuLinearIsa>& info) {
  return rarlhf::cpu_linear_isa_name(info.param);
}
INSTANTIATE_TEST_SUITE_P(Isa, CpuLinearIsaTest,
                         ::testing::Values(CpuLinearIsa::kAvx512, CpuLinearIsa::kAvx2, CpuLinearIsa::kReference,
                                           CpuLinearIsa::kBest),
                         isa_test_name);
INSTANTIATE_TEST_SUITE_P(Isa, CpuLinearTilesTest, ::testing::Values(CpuLinearIsa::kAvx512, CpuLinearIsa::kAvx2),
                         isa_test_name);

TEST(CpuLinear, AppliesOnlyWithoutAutogradToFloat32CpuTensors) {
  if (rarlhf::cpu_linear_isa() == CpuLinearIsa::kReference) GTEST_SKIP() << "no vector kernels on this CPU";
  auto x = torch::randn({2, 8});
  auto w = torch::randn({8, 4}).requires_grad_(true);
  EXPECT_FALSE(rarlhf::cpu_linear_applies(x, w));  // a parameter while grad mode is on: BLAS + autograd
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(rarlhf::cpu_linear_applies(x, w));
    EXPECT_FALSE(rarlhf::cpu_linear_applies(x.to(torch::kDouble), w.to(torch::kDouble)));
    EXPECT_FALSE(rarlhf::cpu_linear_applies(x.to(torch::kBFloat16), w.to(torch::kBFloat16)));
    EXPECT_FALSE(rarlhf::cpu_linear_applies(x, w.t()));  // non-contiguous weight
  }
  EXPECT_TRUE(rarlhf::cpu_linear_applies(x, w.detach()));  // nothing to differentiate
}

// Found the hard way: without -fopenmp, at::parallel_for in our code ran every CPU kernel on one thread.
TEST(CpuKernels, ParallelForUsesTheThreadsSet) {
  const int saved = at::get_num_threads();
  at::set_num_threads(2);
  const int used = rarlhf::cpu_kernel_threads();
  at::set_num_threads(saved);
  EXPECT_EQ(used, 2) << "the kernels run serially: build them with OpenMP (CMakeLists.txt, OpenMP::OpenMP_CXX)";
}

TEST(CpuLinear, RejectsMismatchedShapes) {
  auto x = torch::randn({2, 8});
  EXPECT_THROW(cpu_linear(x, torch::randn({7, 4}), {}, false), c10::Error);
  EXPECT_THROW(cpu_linear(x, torch::randn({4, 7}), {}, true), c10::Error);
  EXPECT_THROW(cpu_linear(x, torch::randn({8, 4}), torch::randn({5}), false), c10::Error);
}

}  // namespace
