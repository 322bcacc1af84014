// Dispatcher for masked_whiten (see ops.h). The mask sum is checked up front (one host sync per
// call, once per PPO iteration): TRL raises on an empty mask and on a single element (Bessel's
// correction would divide by zero); so do we, with the reason.
#include <ATen/TensorOperators.h>
#include <ATen/ops/rsqrt.h>

#include "kernels_internal.h"
#include "rarlhf/kernels/ops.h"

namespace rarlhf {

at::Tensor masked_whiten(const at::Tensor& x, const at::Tensor& mask, bool shift_mean, bool use_custom) {
  TORCH_CHECK(x.defined() && mask.defined(), "masked_whiten: inputs must be defined");
  TORCH_CHECK(x.sizes() == mask.sizes(), "masked_whiten: x ", x.sizes(), " and mask ", mask.sizes(),
              " must have the same shape");
  TORCH_CHECK(x.device() == mask.device(), "masked_whiten: x and mask must be on one device");
  const at::Tensor xf = x.to(at::kFloat).contiguous();
  const at::Tensor mf = mask.to(at::kFloat).contiguous();
  const double n = mf.sum().item<double>();
  TORCH_CHECK(n > 1.0, "masked_whiten: the mask selects ", n,
              " elements; the unbiased variance needs more than 1 (no tokens kept?)");
  if (!use_custom) {  // TRL's formulation in fp32
    const at::Tensor mean = (xf * mf).sum() / n;
    const at::Tensor centered = xf - mean;
    const at::Tensor var = (centered * centered * mf).sum() / n * (n / (n - 1.0));
    at::Tensor out = centered * at::rsqrt(var + 1e-8);
    return shift_mean ? out : out + mean;
  }
#if RARLHF_CUDA_KERNELS
  if (xf.is_cuda()) return kernels_detail::masked_whiten_cuda(xf, mf, shift_mean);
#endif
  return kernels_detail::masked_whiten_cpu(xf, mf, shift_mean);
}

}  // namespace rarlhf
