// Device-agnostic dispatchers for the RL hot spots. Each op checks shapes once, then runs the CUDA
// twin for CUDA tensors (when built with RARLHF_CUDA_KERNELS) or the CPU twin otherwise.
// use_custom = false runs the plain LibTorch formulation instead (same results; for A/B runs and
// as the reference in tests). All outputs are fp32, whatever the input precision.
#pragma once
#include <ATen/core/Tensor.h>

#include <initializer_list>
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
// With isa = kBest and at least 32 x rows (prefill, scoring), cpu_linear calls oneDNN's sgemm where the
// process has it (Debian's LibTorch links libdnnl; RARLHF_ONEDNN=0 turns it off): faster there, and
// its results did not vary with the thread count on the shapes measured. True when that path is on.
bool cpu_linear_uses_onednn();

// Differentiable y = x @ w^T (w_transposed, w [N, K]) or x @ w (w [K, N]) (+ b), fp32 CPU, all three
// products on oneDNN's sgemm (training; kernels/onednn_linear.cpp). onednn_linear_applies: oneDNN
// present (cpu_linear_uses_onednn), float32 CPU tensors, at least 32 rows of x.
bool onednn_linear_applies(const at::Tensor& x, const at::Tensor& w);
at::Tensor onednn_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, bool w_transposed);

// softmax(q k^T * scale + mask) v for few query rows (a decoding step), fp32 on the CPU, with no
// [.., S, D] temporaries: q [B, H, T, D], k/v [B, Hkv, S, D] (H a multiple of Hkv; query head h reads
// K/V head h / (H / Hkv), as transformers' repeat_kv), allowed undefined (all visible) or bool
// [B|1, 1, T, S] (false = masked: the score becomes the lowest float, as masked_fill does) -> [B, H, T, D]
// (a transposed view of a [B, T, H, D] tensor). Last dims may be strided. One fixed-order sum per
// output: thread-count independent. cpu_attention_applies: float32 CPU 4-D tensors, no autograd
// graph wanted, AVX2+FMA present and RARLHF_CPU_LINEAR not off.
bool cpu_attention_applies(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);
at::Tensor cpu_attention(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& allowed,
                         double scale);

// Fused fp32 CPU inference kernels for the decoder blocks (kernels/cpu_fused.cpp); each returns a new
// tensor and computes every element in a fixed order (thread-count independent), equal to the ATen
// formulation in model/blocks.cpp up to rounding. cpu_fused_applies: every tensor float32 on the CPU,
// none needing a gradient, AVX2+FMA present and RARLHF_CPU_LINEAR not off.
bool cpu_fused_applies(std::initializer_list<const at::Tensor*> tensors);
// w * (x * rsqrt(mean(x^2, -1) + eps)), x [..., C], w [C] (Llama's RMSNorm).
at::Tensor cpu_rms_norm(const at::Tensor& x, const at::Tensor& w, double eps);
// silu(g) * u, elementwise (SwiGLU).
at::Tensor cpu_silu_mul(const at::Tensor& g, const at::Tensor& u);
// GELU, tanh form (GPT-2's gelu_new, at::gelu(x, "tanh")), elementwise.
at::Tensor cpu_gelu_tanh(const at::Tensor& x);
// Rotary embedding of the first R dims of x [B, H, T, D]: x * cos + turned * sin with cos/sin
// [B|1, 1, T, R]; turned = (-x[R/2:R], x[:R/2]) (rotate-half) or (-x1, x0, -x3, x2, ...) (interleaved);
// dims >= R pass through. Returns [B, H, T, D] (a permuted view of a [B, T, H, D] tensor).
at::Tensor cpu_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t R, bool interleaved);

// How many distinct threads one at::parallel_for over 64 items runs on inside this library (at most
// at::get_num_threads()). 1 with several threads set means the kernels were built without OpenMP
// against an OpenMP LibTorch, where at::parallel_for silently runs serially (a diagnostic and a test).
int cpu_kernel_threads();

// True when this build has the CUDA twins linked in.
bool cuda_kernels_built();

}  // namespace rarlhf
