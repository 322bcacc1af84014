// CPU twin of masked_whiten in plain LibTorch ops (TRL's masked_mean / masked_var formulas); it is
// not a hot spot on CPU (one call per PPO iteration over B*T elements).
#include <ATen/TensorOperators.h>
#include <ATen/ops/rsqrt.h>

#include "kernels_internal.h"

namespace rarlhf::kernels_detail {

at::Tensor masked_whiten_cpu(const at::Tensor& x, const at::Tensor& mask, bool shift_mean) {
  // Accumulate in double: the sums run over up to B*T elements.
  const at::Tensor xd = x.to(at::kDouble), md = mask.to(at::kDouble);
  const at::Tensor n = md.sum();
  const at::Tensor mean = (xd * md).sum() / n;
  const at::Tensor centered = xd - mean;
  const at::Tensor var = (centered * centered * md).sum() / (n - 1.0);  // unbiased: * n / (n - 1)
  at::Tensor out = centered * at::rsqrt(var + 1e-8);
  if (!shift_mean) out = out + mean;
  return out.to(at::kFloat);
}

}  // namespace rarlhf::kernels_detail
