// Torch side of the gae_scan CUDA twin (compiled only with a CUDA LibTorch).
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <c10/cuda/CUDAGuard.h>

#include "cuda_kernels.h"
#include "kernels_internal.h"

namespace rarlhf::kernels_detail {

std::pair<at::Tensor, at::Tensor> gae_scan_cuda(const at::Tensor& rewards, const at::Tensor& values,
                                                const at::Tensor& mask, double gamma, double lam) {
  const c10::cuda::CUDAGuard guard(rewards.device());
  at::Tensor adv = at::empty_like(rewards);
  at::Tensor ret = at::empty_like(rewards);
  const int code = rarlhf_cuda_gae_scan(rewards.data_ptr<float>(), values.data_ptr<float>(), mask.data_ptr<float>(),
                                        rewards.size(0), rewards.size(1), static_cast<float>(gamma),
                                        static_cast<float>(lam), adv.data_ptr<float>(), ret.data_ptr<float>(),
                                        at::cuda::getCurrentCUDAStream().stream());
  TORCH_CHECK(code == 0, "gae_scan CUDA kernel failed: ", rarlhf_cuda_error_string(code));
  return {adv, ret};
}

}  // namespace rarlhf::kernels_detail
