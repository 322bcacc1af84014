// GPU report for the custom kernels (own main, plain timing with device synchronisation; built with
// the other bench programs, runs anywhere but measures only with a GPU and the CUDA kernels built):
//  1. token_logprobs forward bandwidth = logits bytes read / time, against a device-to-device copy
//     of the same tensor measured in the same run (copy bandwidth = bytes read + written / time);
//     goal: >= 80% of the copy's bandwidth.
//  2. forward+backward time and peak memory, fused vs log_softmax + gather.
#include <torch/torch.h>

#include <chrono>
#include <cstdio>

#include "rarlhf/kernels/ops.h"

#if RARLHF_CUDA_KERNELS
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace {

template <typename F>
double time_ms(F&& f, int iters) {
  f();  // warm-up (also allocator warm-up)
  torch::cuda::synchronize();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) f();
  torch::cuda::synchronize();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / iters;
}

#if RARLHF_CUDA_KERNELS
// Peak bytes allocated while running f, above what was allocated before.
template <typename F>
double peak_mib(F&& f) {
  torch::cuda::synchronize();
  const int dev = 0;
  const auto before = c10::cuda::CUDACachingAllocator::getDeviceStats(dev).allocated_bytes[0].current;
  c10::cuda::CUDACachingAllocator::resetPeakStats(dev);
  f();
  torch::cuda::synchronize();
  const auto peak = c10::cuda::CUDACachingAllocator::getDeviceStats(dev).allocated_bytes[0].peak;
  return static_cast<double>(peak - before) / (1024.0 * 1024.0);
}
#endif

void report(int64_t rows, int64_t vocab, torch::ScalarType dtype) {
  torch::manual_seed(0);
  const auto dev = torch::Device(torch::kCUDA, 0);
  auto logits = (torch::randn({rows, vocab}, torch::TensorOptions().device(dev)) * 3).to(dtype);
  auto targets = torch::randint(vocab, {rows}, torch::TensorOptions().device(dev).dtype(torch::kLong));
  auto copy_dst = torch::empty_like(logits);
  const double bytes = static_cast<double>(logits.numel()) * logits.element_size();
  const int iters = 20;

  double t_fused, t_plain;
  {
    torch::NoGradGuard no_grad;
    t_fused = time_ms([&] { rarlhf::token_logprobs(logits, targets, true); }, iters);
    t_plain = time_ms([&] { rarlhf::token_logprobs(logits, targets, false); }, iters);
  }
  const double t_copy = time_ms([&] { copy_dst.copy_(logits); }, iters);
  const double bw_fused = bytes / (t_fused * 1e-3) / 1e9;
  const double bw_copy = 2.0 * bytes / (t_copy * 1e-3) / 1e9;  // a copy reads and writes every byte

  auto w = torch::randn({rows}, torch::TensorOptions().device(dev));
  auto x = logits.detach().requires_grad_(true);
  auto step = [&](bool custom) {
    (rarlhf::token_logprobs(x, targets, custom) * w).sum().backward();
    x.mutable_grad() = torch::Tensor();
  };
  const double tb_fused = time_ms([&] { step(true); }, iters);
  const double tb_plain = time_ms([&] { step(false); }, iters);

  std::printf("token_logprobs [%lld, %lld] %s (%.0f MiB of logits)\n", static_cast<long long>(rows),
              static_cast<long long>(vocab), c10::toString(dtype), bytes / (1024.0 * 1024.0));
  std::printf("  fwd   fused %8.3f ms  %7.1f GB/s read | plain %8.3f ms | copy %8.3f ms %7.1f GB/s (r+w)\n", t_fused,
              bw_fused, t_plain, t_copy, bw_copy);
  std::printf("  fwd   fused bandwidth / copy bandwidth = %.1f%% (goal >= 80%%); plain / fused time = %.2fx\n",
              100.0 * bw_fused / bw_copy, t_plain / t_fused);
  std::printf("  fwd+bwd fused %8.3f ms | plain %8.3f ms | plain / fused = %.2fx\n", tb_fused, tb_plain,
              tb_plain / tb_fused);
#if RARLHF_CUDA_KERNELS
  const double m_fused = peak_mib([&] { step(true); });
  const double m_plain = peak_mib([&] { step(false); });
  std::printf("  fwd+bwd peak memory above inputs: fused %.1f MiB | plain %.1f MiB | plain / fused = %.2fx\n",
              m_fused, m_plain, m_plain / m_fused);
#endif
}

void report_small_ops() {
  const auto opts = torch::TensorOptions().device(torch::kCUDA);
  auto r = torch::randn({128, 48}, opts), v = torch::randn({128, 48}, opts), m = torch::ones({128, 48}, opts);
  const double t_gae = time_ms([&] { rarlhf::gae_scan(r, v, m, 1.0, 0.95, true); }, 50);
  const double t_gae_plain = time_ms([&] { rarlhf::gae_scan(r, v, m, 1.0, 0.95, false); }, 50);
  const double t_w = time_ms([&] { rarlhf::masked_whiten(r, m, true, true); }, 50);
  const double t_w_plain = time_ms([&] { rarlhf::masked_whiten(r, m, true, false); }, 50);
  std::printf("gae_scan [128, 48]: fused %.3f ms | plain loop %.3f ms | %.1fx\n", t_gae, t_gae_plain,
              t_gae_plain / t_gae);
  std::printf("masked_whiten [128, 48]: fused %.3f ms | plain %.3f ms | %.1fx\n", t_w, t_w_plain, t_w_plain / t_w);
}

}  // namespace

int main() {
  if (!torch::cuda::is_available() || !rarlhf::cuda_kernels_built()) {
    std::printf("kernels_gpu_bench: no CUDA device or built without the CUDA kernels; nothing to measure\n");
    return 0;
  }
  report(16 * 16, 50257, torch::kFloat);
  report(8 * 48, 50257, torch::kFloat);
  report(128 * 48, 50257, torch::kFloat);
  report(128 * 48, 50257, torch::kBFloat16);
  report_small_ops();
  return 0;
}
