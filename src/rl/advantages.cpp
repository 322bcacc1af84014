// GAE and the whitening over ranks: see include/rarlhf/rl/advantages.h.
#include "rarlhf/rl/advantages.h"

#include <ATen/ATen.h>

#include <cmath>

#include "rarlhf/common/error.h"
#include "rarlhf/kernels/ops.h"

namespace rarlhf {

std::pair<at::Tensor, at::Tensor> compute_advantages(const at::Tensor& rewards, const at::Tensor& values,
                                                     const at::Tensor& mask, const PpoConfig& ppo) {
  return gae_scan(rewards, values, mask, ppo.gamma, ppo.lam, ppo.custom_kernels);
}

at::Tensor whiten_advantages(dist::Communicator& comm, const at::Tensor& x, const at::Tensor& mask,
                             bool use_custom_kernels) {
  const double tokens = comm.sum(mask.sum().item<double>());
  if (tokens <= 1) return x;
  if (!comm.distributed()) return masked_whiten(x, mask, /*shift_mean=*/true, use_custom_kernels);
  const at::Tensor m = mask.to(at::kDouble), xd = x.to(at::kDouble);
  at::Tensor sum = (xd * m).sum().reshape({1});
  comm.all_reduce_sum(sum);
  const double mean = sum.item<double>() / tokens;
  at::Tensor squares = ((xd - mean).pow(2) * m).sum().reshape({1});
  comm.all_reduce_sum(squares);
  const double var = squares.item<double>() / (tokens - 1);
  return ((x - mean) * (1.0 / std::sqrt(var + 1e-8))).to(x.scalar_type());
}

}  // namespace rarlhf
