// Torch side of the masked_whiten CUDA twin (compiled only with a CUDA LibTorch).
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>

#include "cuda_kernels.h"
#include "kernels_internal.h"

namespace rarlhf::kernels_detail {

at::Tensor masked_whiten_cuda(const at::Tensor& x, const at::Tensor& mask, bool shift_mean) {
  const c10::cuda::CUDAGuard guard(x.device());
  at::Tensor out = at::empty_like(x);
  const int code = rarlhf_cuda_masked_whiten(x.data_ptr<float>(), mask.data_ptr<float>(), x.numel(),
                                             shift_mean ? 1 : 0, out.data_ptr<float>(),
                                             at::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(code == 0, "masked_whiten CUDA kernel failed: ", rarlhf_cuda_error_string(code));
  return out;
}

}  // namespace rarlhf::kernels_detail
