/* CUDA twins of the kernels in ops.h: raw pointers and a void* stream (a cudaStream_t), no torch,
 * so nvcc compiles them against any LibTorch. Each returns a cudaError_t as int (0 = success);
 * rarlhf_cuda_error_string turns it into text. Callers (the src/kernels/<op>_cuda.cpp wrappers) check shapes.
 * Logits rows are addressed as [D0, D1, V] with element strides s0, s1 (last dim contiguous).
 * Private to src/kernels: everything else reaches the kernels through ops.h. */
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum RarlhfDtype { RARLHF_F32 = 0, RARLHF_BF16 = 1, RARLHF_F16 = 2 };

/* Forward: per row r = (i0, i1): lse[r] = logsumexp(row), logprobs[r] = row[t] - lse[r],
 * entropy[r] (if non-null) = -sum softmax * log softmax. Outputs are contiguous fp32 [D0 * D1]. */
int rarlhf_cuda_token_logprobs_fwd(const void* logits, int dtype, int64_t d0, int64_t d1, int64_t s0, int64_t s1,
                                   int64_t vocab, const int64_t* targets, float* logprobs, float* entropy, float* lse,
                                   void* stream);

/* Backward: grad_logits (contiguous [D0 * D1, V], logits' dtype) =
 *   grad_lp * (onehot(t) - p) - grad_ent * p * (log p + H), p = exp(x - lse).
 * grad_ent and entropy may be null (no entropy term). */
int rarlhf_cuda_token_logprobs_bwd(const void* logits, int dtype, int64_t d0, int64_t d1, int64_t s0, int64_t s1,
                                   int64_t vocab, const int64_t* targets, const float* lse, const float* entropy,
                                   const float* grad_lp, const float* grad_ent, void* grad_logits, void* stream);

/* GAE over contiguous fp32 [B, T]: see ops.h gae_scan. */
int rarlhf_cuda_gae_scan(const float* rewards, const float* values, const float* mask, int64_t batch, int64_t steps,
                         float gamma, float lam, float* advantages, float* returns, void* stream);

/* Masked whitening over n contiguous fp32 elements: see ops.h masked_whiten. */
int rarlhf_cuda_masked_whiten(const float* x, const float* mask, int64_t n, int shift_mean, float* out, void* stream);

const char* rarlhf_cuda_error_string(int code);

#ifdef __cplusplus
}
#endif
