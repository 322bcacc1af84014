// CUDA twins against the CPU twins (same inputs copied to the GPU) over ragged shapes, dtypes and
// strided inputs: token_logprobs (+ entropy) values and gradients, gae_scan, masked_whiten.
// Every test skips without a GPU or without the CUDA kernels built in.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rarlhf/kernels/ops.h"

namespace {

#define REQUIRE_CUDA()                                                                   \
  do {                                                                                   \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";                  \
    if (!rarlhf::cuda_kernels_built()) GTEST_SKIP() << "built without the CUDA kernels"; \
  } while (0)

void expect_close(const torch::Tensor& gpu, const torch::Tensor& cpu, double atol, double rtol, const std::string& what) {
  ASSERT_TRUE(gpu.is_cuda()) << what;
  auto a = gpu.cpu().to(torch::kDouble), b = cpu.to(torch::kDouble);
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  auto diff = (a - b).abs();
  EXPECT_TRUE((diff <= atol + rtol * b.abs()).all().item<bool>()) << what << ": max diff " << diff.max().item<double>();
}

struct Case {
  std::vector<int64_t> shape;  // logits shape [..., V]
  torch::ScalarType dtype;
};

TEST(CudaKernels, TokenLogprobsMatchesCpuTwin) {
  REQUIRE_CUDA();
  torch::manual_seed(0);
  const std::vector<Case> cases = {
      {{6, 50257}, torch::kFloat}, {{2, 5, 1000}, torch::kFloat},   {{3, 33}, torch::kFloat},
      {{4, 7}, torch::kFloat},     {{1, 1}, torch::kFloat},         {{3, 4, 50257}, torch::kBFloat16},
      {{5, 1001}, torch::kHalf},   {{2, 3, 33}, torch::kBFloat16}, {{64, 4096}, torch::kFloat}};
  for (const Case& c : cases) {
    const std::string what = std::string(c10::toString(c.dtype)) + " V=" + std::to_string(c.shape.back());
    auto logits = (torch::randn(c.shape) * 3).to(c.dtype);
    std::vector<int64_t> tshape(c.shape.begin(), c.shape.end() - 1);
    auto targets = torch::randint(c.shape.back(), tshape, torch::kLong);
    auto w_lp = torch::randn(tshape), w_ent = torch::randn(tshape);

    auto xc = logits.clone().requires_grad_(true);
    auto [lpc, entc] = rarlhf::token_logprobs_entropy(xc, targets);
    ((lpc * w_lp).sum() + (entc * w_ent).sum()).backward();

    auto xg = logits.cuda().requires_grad_(true);
    auto [lpg, entg] = rarlhf::token_logprobs_entropy(xg, targets.cuda());
    ((lpg * w_lp.cuda()).sum() + (entg * w_ent.cuda()).sum()).backward();

    expect_close(lpg, lpc, 1e-4, 1e-5, what + " logprobs");
    expect_close(entg, entc, 1e-4, 1e-5, what + " entropy");
    const double rtol = c.dtype == torch::kFloat ? 1e-4 : 1e-2;
    expect_close(xg.grad(), xc.grad().to(torch::kFloat), 1e-6, rtol, what + " grad");
    EXPECT_EQ(xg.grad().scalar_type(), c.dtype);
    // Logprobs only (no entropy term) as well.
    expect_close(rarlhf::token_logprobs(xg.detach(), targets.cuda()), lpc, 1e-4, 1e-5, what + " logprobs only");
  }
}

TEST(CudaKernels, TokenLogprobsStridedAndMisaligned) {
  REQUIRE_CUDA();
  torch::manual_seed(1);
  // A [B, T, V] slice (rows start at odd element offsets: the 16-byte head/tail paths) and a
  // storage offset of one element.
  auto full = torch::randn({3, 9, 1003});
  auto targets = torch::randint(1003, {3, 6}, torch::kLong);
  auto ref = rarlhf::token_logprobs(full.slice(1, 2, 8), targets);
  auto g = full.cuda();
  expect_close(rarlhf::token_logprobs(g.slice(1, 2, 8), targets.cuda()), ref, 1e-4, 1e-5, "strided");
  auto flat = torch::randn({1 + 4 * 512});
  auto t4 = torch::randint(512, {4}, torch::kLong);
  expect_close(rarlhf::token_logprobs(flat.cuda().slice(0, 1).view({4, 512}), t4.cuda()),
               rarlhf::token_logprobs(flat.slice(0, 1).view({4, 512}), t4), 1e-4, 1e-5, "offset by one");
  // Gradient through a strided slice.
  auto xc = full.clone().requires_grad_(true);
  rarlhf::token_logprobs(xc.slice(1, 2, 8), targets).sum().backward();
  auto xg = full.cuda().requires_grad_(true);
  rarlhf::token_logprobs(xg.slice(1, 2, 8), targets.cuda()).sum().backward();
  expect_close(xg.grad(), xc.grad(), 1e-6, 1e-4, "strided grad");
}

TEST(CudaKernels, TokenLogprobsMaskedLogits) {
  REQUIRE_CUDA();
  auto logits = torch::randn({2, 3000});
  logits.index_put_({0, torch::indexing::Slice(0, 1500)}, -std::numeric_limits<float>::infinity());
  auto targets = torch::tensor({2000, 5}, torch::kLong);
  auto [lpc, entc] = rarlhf::token_logprobs_entropy(logits, targets);
  auto xg = logits.cuda().requires_grad_(true);
  auto [lpg, entg] = rarlhf::token_logprobs_entropy(xg, targets.cuda());
  expect_close(lpg, lpc, 1e-4, 1e-5, "masked logprobs");
  expect_close(entg, entc, 1e-4, 1e-5, "masked entropy");
  (lpg.sum() + entg.sum()).backward();
  EXPECT_TRUE(torch::isfinite(xg.grad()).all().item<bool>());
  EXPECT_EQ(xg.grad()[0].slice(0, 0, 1500).abs().max().item<float>(), 0.0f);
}

TEST(CudaKernels, GaeScanMatchesCpuTwin) {
  REQUIRE_CUDA();
  torch::manual_seed(2);
  for (auto bt : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {3, 48}, {128, 48}, {200, 33}}) {
    auto r = torch::randn({bt.first, bt.second}), v = torch::randn({bt.first, bt.second});
    auto m = (torch::rand({bt.first, bt.second}) > 0.3).to(torch::kFloat);
    auto [ac, rc] = rarlhf::gae_scan(r, v, m, 0.99, 0.95);
    auto [ag, rg] = rarlhf::gae_scan(r.cuda(), v.cuda(), m.cuda(), 0.99, 0.95);
    expect_close(ag, ac, 1e-5, 1e-5, "advantages");
    expect_close(rg, rc, 1e-5, 1e-5, "returns");
  }
}

TEST(CudaKernels, MaskedWhitenMatchesCpuTwin) {
  REQUIRE_CUDA();
  torch::manual_seed(3);
  for (int64_t n : {2, 33, 6144, 100003}) {
    auto x = torch::randn({n}) * 5 + 2, m = (torch::rand({n}) > 0.5).to(torch::kFloat);
    m[0] = 1, m[1] = 1;
    for (bool shift : {true, false})
      expect_close(rarlhf::masked_whiten(x.cuda(), m.cuda(), shift), rarlhf::masked_whiten(x, m, shift), 1e-5, 1e-5,
                   "whiten n=" + std::to_string(n));
  }
}

}  // namespace
