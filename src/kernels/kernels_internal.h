// Private to src/kernels: the twins behind the dispatchers in ops.h. The dispatchers check shapes,
// dtypes and devices; the twins trust them. *_cpu in <op>_cpu.cpp, *_cuda in <op>_cuda.cpp (built
// only when LibTorch has CUDA, RARLHF_CUDA_KERNELS=1).
#pragma once
#include <ATen/core/Tensor.h>

#include <utility>

namespace rarlhf::kernels_detail {

// Row-major C = A op B (+ beta C) through oneDNN's sgemm (cpu_linear.cpp); false when the process has
// no oneDNN (C untouched). ta/tb: 'N' or 'T'.
bool onednn_gemm(char ta, char tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                 int64_t ldb, float beta, float* C, int64_t ldc);

// Logits seen as rows of a [d0, d1, V] array with element strides s0, s1 and a contiguous last dim.
// `base` keeps the (possibly copied) tensor alive; rows are never copied when the layout allows.
struct RowView {
  at::Tensor base;
  int64_t d0 = 1, d1 = 1, s0 = 0, s1 = 0, vocab = 0;
  int64_t rows() const { return d0 * d1; }
  int64_t offset(int64_t r) const { return (r / d1) * s0 + (r % d1) * s1; }
};
RowView make_row_view(const at::Tensor& logits);

// Forward: returns {logprobs [N], entropy [N] (undefined unless with_entropy), lse [N]}, fp32.
struct TokenLogprobsOut {
  at::Tensor logprobs, entropy, lse;
};
TokenLogprobsOut token_logprobs_fwd_cpu(const RowView& rv, const at::Tensor& targets, bool with_entropy);
// Backward: grad_logits [N, V] in the logits' dtype. grad_ent / entropy undefined = no entropy term.
at::Tensor token_logprobs_bwd_cpu(const RowView& rv, const at::Tensor& targets, const at::Tensor& lse,
                                  const at::Tensor& entropy, const at::Tensor& grad_lp, const at::Tensor& grad_ent);

// rewards, values, mask: contiguous fp32 [B, T].
std::pair<at::Tensor, at::Tensor> gae_scan_cpu(const at::Tensor& rewards, const at::Tensor& values,
                                               const at::Tensor& mask, double gamma, double lam);
// x, mask: fp32, same shape.
at::Tensor masked_whiten_cpu(const at::Tensor& x, const at::Tensor& mask, bool shift_mean);

#if RARLHF_CUDA_KERNELS
TokenLogprobsOut token_logprobs_fwd_cuda(const RowView& rv, const at::Tensor& targets, bool with_entropy);
at::Tensor token_logprobs_bwd_cuda(const RowView& rv, const at::Tensor& targets, const at::Tensor& lse,
                                   const at::Tensor& entropy, const at::Tensor& grad_lp, const at::Tensor& grad_ent);
std::pair<at::Tensor, at::Tensor> gae_scan_cuda(const at::Tensor& rewards, const at::Tensor& values,
                                                const at::Tensor& mask, double gamma, double lam);
at::Tensor masked_whiten_cuda(const at::Tensor& x, const at::Tensor& mask, bool shift_mean);
#endif

}  // namespace rarlhf::kernels_detail
