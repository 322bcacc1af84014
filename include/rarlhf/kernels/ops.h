// Device-agnostic dispatchers for the RL hot spots. Each op checks shapes once, then runs the CUDA
// twin for CUDA tensors (when built with RARLHF_CUDA_KERNELS) or the CPU twin otherwise.
// use_custom = false runs the plain LibTorch formulation instead (same results; for A/B runs and
// as the reference in tests). All outputs are fp32, whatever the input precision.
#pragma once
#include <ATen/core/Tensor.h>

#include <utility>

namespace rarlhf {

// log softmax(logits)[target] per row, without materialising the [..., V] log-softmax.
// logits [..., V] fp32/bf16/fp16 (last dim contiguous; leading dims may be strided, e.g. a
// [B, T, V] slice), targets [...] int64 in [0, V) -> fp32 [...]. Differentiable w.r.t. logits:
// the forward saves only the per-row logsumexp; the backward recomputes softmax row by row and
// writes grad_logits = g * (onehot - softmax) in the logits' dtype.
at::Tensor token_logprobs(const at::Tensor& logits, const at::Tensor& targets, bool use_custom = true);

// As token_logprobs, plus the entropy of each row's softmax, H = -sum p log p (also differentiable).
// Returns {logprobs [...], entropy [...]}, both fp32.
std::pair<at::Tensor, at::Tensor> token_logprobs_entropy(const at::Tensor& logits, const at::Tensor& targets,
                                                         bool use_custom = true);

// Generalised advantage estimation over [B, T] (TRL's compute_advantages): rewards and values are
// multiplied by the mask first, so nothing beyond a row's last valid token contributes and the
// bootstrap value after it is 0; delta_t = r_t + gamma * v_{t+1} - v_t, A_t = delta_t + gamma*lam*A_{t+1}.
// Returns {advantages [B, T], returns = advantages + masked values [B, T]}. Not differentiable.
std::pair<at::Tensor, at::Tensor> gae_scan(const at::Tensor& rewards, const at::Tensor& values, const at::Tensor& mask,
                                           double gamma, double lam, bool use_custom = true);

// (x - mean) * rsqrt(var + 1e-8) with mean and unbiased variance taken over mask != 0 (TRL's
// masked_whiten / masked_var); + mean back when !shift_mean. Applied to every element. x and mask
// have the same shape; needs a mask sum > 1. Not differentiable.
at::Tensor masked_whiten(const at::Tensor& x, const at::Tensor& mask, bool shift_mean = true, bool use_custom = true);

// fp32 y = x @ w (+ bias) on the CPU for inference (sampling, scoring): register-tiled AVX-512 or
// AVX2+FMA kernels that read the weights in place, in the layouts Hugging Face checkpoints use.
// x [..., K]; w [K, N] (GPT-2's Conv1D) or, with w_transposed, [N, K] (the tied LM head, nn.Linear);
// bias [N] or undefined -> [..., N]. Each output is one fixed-order sum (bias first, then k = 0, 1, ...),
// so results do not depend on the thread count; they differ from BLAS by rounding only. Not
// differentiable: callers check cpu_linear_applies (float32 CPU tensors, no autograd graph wanted).
// kBest = cpu_linear_isa(): the widest the CPU has, or what RARLHF_CPU_LINEAR says (off | avx2 |
// avx512; off = BLAS via at::mm, an unknown or unsupported value is a ConfigError when first used).
enum class CpuLinearIsa { kBest, kAvx512, kAvx2, kReference };
CpuLinearIsa cpu_linear_isa();
const char* cpu_linear_isa_name(CpuLinearIsa isa);  // "avx512" | "avx2" | "off" | "best"
bool cpu_linear_applies(const at::Tensor& x, const at::Tensor& w);
at::Tensor cpu_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, bool w_transposed,
                      CpuLinearIsa isa = CpuLinearIsa::kBest);

// How many distinct threads one at::parallel_for over 64 items runs on inside this library (at most
// at::get_num_threads()). 1 with several threads set means the kernels were built without OpenMP
// against an OpenMP LibTorch, where at::parallel_for silently runs serially (a diagnostic and a test).
int cpu_kernel_threads();

// True when this build has the CUDA twins linked in.
bool cuda_kernels_built();

}  // namespace rarlhf
