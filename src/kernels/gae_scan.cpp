// Dispatcher for gae_scan (see ops.h). use_custom = false is TRL's formulation: a loop over T of
// whole-column tensor ops, kept as the A/B baseline and as an independent check in the tests.
#include <ATen/TensorOperators.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/zeros.h>

#include <vector>

#include "kernels_internal.h"
#include "rarlhf/kernels/ops.h"

namespace rarlhf {

std::pair<at::Tensor, at::Tensor> gae_scan(const at::Tensor& rewards, const at::Tensor& values, const at::Tensor& mask,
                                           double gamma, double lam, bool use_custom) {
  TORCH_CHECK(rewards.defined() && values.defined() && mask.defined(), "gae_scan: inputs must be defined");
  TORCH_CHECK(rewards.dim() == 2, "gae_scan: rewards must be [B, T], got ", rewards.sizes());
  TORCH_CHECK(values.sizes() == rewards.sizes() && mask.sizes() == rewards.sizes(), "gae_scan: rewards ",
              rewards.sizes(), ", values ", values.sizes(), " and mask ", mask.sizes(), " must have the same shape");
  TORCH_CHECK(values.device() == rewards.device() && mask.device() == rewards.device(),
              "gae_scan: rewards, values and mask must be on one device");
  TORCH_CHECK(gamma >= 0.0 && lam >= 0.0, "gae_scan: gamma and lam must be >= 0");
  const at::Tensor r = rewards.to(at::kFloat).contiguous();
  const at::Tensor v = values.to(at::kFloat).contiguous();
  const at::Tensor m = mask.to(at::kFloat).contiguous();
  if (!use_custom) {
    const at::Tensor rm = r * m, vm = v * m;
    const int64_t steps = r.size(1);
    std::vector<at::Tensor> cols(static_cast<size_t>(steps));
    at::Tensor last = at::zeros({r.size(0)}, r.options());
    for (int64_t t = steps - 1; t >= 0; --t) {
      at::Tensor next_v = t + 1 < steps ? vm.select(1, t + 1) : at::zeros_like(last);
      at::Tensor delta = rm.select(1, t) + gamma * next_v - vm.select(1, t);
      last = delta + gamma * lam * last;
      cols[static_cast<size_t>(t)] = last;
    }
    at::Tensor adv = steps > 0 ? at::stack(cols, 1) : at::zeros_like(r);
    return {adv, adv + vm};
  }
#if RARLHF_CUDA_KERNELS
  if (r.is_cuda()) return kernels_detail::gae_scan_cuda(r, v, m, gamma, lam);
#endif
  return kernels_detail::gae_scan_cpu(r, v, m, gamma, lam);
}

}  // namespace rarlhf
