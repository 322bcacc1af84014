// Torch side of the token_logprobs CUDA twin (compiled only with a CUDA LibTorch): allocates the
// outputs, picks the current stream and device, and calls the raw-pointer kernels in token_logprobs.cu.
#include <ATen/cuda/CUDAContext.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>

#include "cuda_kernels.h"
#include "kernels_internal.h"

namespace rarlhf::kernels_detail {
namespace {

int dtype_code(at::ScalarType st) {
  switch (st) {
    case at::kFloat: return RARLHF_F32;
    case at::kBFloat16: return RARLHF_BF16;
    case at::kHalf: return RARLHF_F16;
    default: TORCH_CHECK(false, "token_logprobs: unsupported logits dtype ", st);
  }
  return -1;
}

void check_cuda(int code, const char* what) {
  TORCH_CHECK(code == 0, what, " failed: ", rarlhf_cuda_error_string(code));
}

}  // namespace

TokenLogprobsOut token_logprobs_fwd_cuda(const RowView& rv, const at::Tensor& targets, bool with_entropy) {
  const c10::cuda::CUDAGuard guard(rv.base.device());
  const auto opts = rv.base.options().dtype(at::kFloat);
  TokenLogprobsOut out;
  out.logprobs = at::empty({rv.rows()}, opts);
  out.lse = at::empty({rv.rows()}, opts);
  if (with_entropy) out.entropy = at::empty({rv.rows()}, opts);
  check_cuda(rarlhf_cuda_token_logprobs_fwd(rv.base.data_ptr(), dtype_code(rv.base.scalar_type()), rv.d0, rv.d1,
                                            rv.s0, rv.s1, rv.vocab, targets.data_ptr<int64_t>(),
                                            out.logprobs.data_ptr<float>(),
                                            with_entropy ? out.entropy.data_ptr<float>() : nullptr,
                                            out.lse.data_ptr<float>(), at::cuda::getCurrentCUDAStream().stream()),
             "token_logprobs CUDA forward");
  return out;
}

at::Tensor token_logprobs_bwd_cuda(const RowView& rv, const at::Tensor& targets, const at::Tensor& lse,
                                   const at::Tensor& entropy, const at::Tensor& grad_lp, const at::Tensor& grad_ent) {
  const c10::cuda::CUDAGuard guard(rv.base.device());
  at::Tensor out = at::empty({rv.rows(), rv.vocab}, rv.base.options());
  check_cuda(rarlhf_cuda_token_logprobs_bwd(
                 rv.base.data_ptr(), dtype_code(rv.base.scalar_type()), rv.d0, rv.d1, rv.s0, rv.s1, rv.vocab,
                 targets.data_ptr<int64_t>(), lse.data_ptr<float>(),
                 entropy.defined() ? entropy.data_ptr<float>() : nullptr,
                 grad_lp.defined() ? grad_lp.data_ptr<float>() : nullptr,
                 grad_ent.defined() ? grad_ent.data_ptr<float>() : nullptr, out.data_ptr(),
                 at::cuda::getCurrentCUDAStream().stream()),
             "token_logprobs CUDA backward");
  return out;
}

}  // namespace rarlhf::kernels_detail
