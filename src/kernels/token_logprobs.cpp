// Dispatcher + autograd for token_logprobs / token_logprobs_entropy (see ops.h). The custom autograd
// Function saves the logits (a reference, not a copy) and the per-row lse (+ entropy); its backward
// calls the fused twin, so neither direction allocates a [N, V] fp32 temporary beyond grad_logits.
#include <ATen/TensorOperators.h>
#include <ATen/ops/gather.h>
#include <ATen/ops/log_softmax.h>
#include <ATen/ops/zeros.h>
#include <torch/csrc/autograd/custom_function.h>

#include "kernels_internal.h"
#include "rarlhf/kernels/ops.h"

namespace rarlhf {
namespace kernels_detail {

RowView make_row_view(const at::Tensor& logits) {
  RowView rv;
  rv.base = (logits.stride(-1) == 1 && logits.dim() <= 3) ? logits : logits.contiguous();
  rv.vocab = rv.base.size(-1);
  if (rv.base.dim() == 3) {
    rv.d0 = rv.base.size(0), rv.d1 = rv.base.size(1), rv.s0 = rv.base.stride(0), rv.s1 = rv.base.stride(1);
  } else if (rv.base.dim() == 2) {
    rv.d0 = 1, rv.d1 = rv.base.size(0), rv.s0 = 0, rv.s1 = rv.base.stride(0);
  } else if (rv.base.dim() == 1) {
    rv.d0 = 1, rv.d1 = 1, rv.s0 = 0, rv.s1 = rv.vocab;
  } else {  // > 3 dims: contiguous, seen as [1, N, V]
    rv.d0 = 1, rv.d1 = rv.base.numel() / rv.vocab, rv.s0 = 0, rv.s1 = rv.vocab;
  }
  return rv;
}

}  // namespace kernels_detail

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;
namespace kd = kernels_detail;

kd::TokenLogprobsOut fwd_dispatch(const kd::RowView& rv, const at::Tensor& targets, bool with_entropy) {
#if RARLHF_CUDA_KERNELS
  if (rv.base.is_cuda()) return kd::token_logprobs_fwd_cuda(rv, targets, with_entropy);
#endif
  return kd::token_logprobs_fwd_cpu(rv, targets, with_entropy);
}

at::Tensor bwd_dispatch(const kd::RowView& rv, const at::Tensor& targets, const at::Tensor& lse,
                        const at::Tensor& entropy, const at::Tensor& g_lp, const at::Tensor& g_ent) {
#if RARLHF_CUDA_KERNELS
  if (rv.base.is_cuda()) return kd::token_logprobs_bwd_cuda(rv, targets, lse, entropy, g_lp, g_ent);
#endif
  return kd::token_logprobs_bwd_cpu(rv, targets, lse, entropy, g_lp, g_ent);
}

struct TokenLogprobsFn : public torch::autograd::Function<TokenLogprobsFn> {
  // targets: flat contiguous int64 [N]. Returns {logprobs} or {logprobs, entropy}, shaped like out_shape.
  static variable_list forward(AutogradContext* ctx, const at::Tensor& logits, const at::Tensor& targets,
                               bool with_entropy) {
    const kd::RowView rv = kd::make_row_view(logits);
    kd::TokenLogprobsOut out = fwd_dispatch(rv, targets, with_entropy);
    const auto shape = logits.sizes().slice(0, logits.dim() - 1);
    at::Tensor lp = out.logprobs.view(shape);
    ctx->saved_data["with_entropy"] = with_entropy;
    if (!with_entropy) {
      ctx->save_for_backward({logits, targets, out.lse});
      return {lp};
    }
    ctx->save_for_backward({logits, targets, out.lse, out.entropy});
    return {lp, out.entropy.view(shape)};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const bool with_entropy = ctx->saved_data["with_entropy"].toBool();
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& logits = saved[0];
    const at::Tensor& targets = saved[1];
    const at::Tensor& lse = saved[2];
    at::Tensor entropy = with_entropy ? saved[3] : at::Tensor();
    auto flat = [](const at::Tensor& g) {
      return g.defined() ? g.to(at::kFloat).reshape({-1}).contiguous() : at::Tensor();
    };
    at::Tensor g_lp = flat(grads[0]);
    at::Tensor g_ent = with_entropy && grads.size() > 1 ? flat(grads[1]) : at::Tensor();
    if (!g_lp.defined() && !g_ent.defined()) return {at::Tensor(), at::Tensor(), at::Tensor()};
    if (!g_ent.defined()) entropy = at::Tensor();
    const kd::RowView rv = kd::make_row_view(logits);
    at::Tensor grad = bwd_dispatch(rv, targets, lse, entropy, g_lp, g_ent).view(logits.sizes());
    return {grad, at::Tensor(), at::Tensor()};
  }
};

void check_inputs(const at::Tensor& logits, const at::Tensor& targets) {
  TORCH_CHECK(logits.defined() && targets.defined(), "token_logprobs: logits and targets must be defined");
  TORCH_CHECK(logits.dim() >= 1 && logits.size(-1) >= 1, "token_logprobs: logits must be [..., V] with V >= 1");
  const auto st = logits.scalar_type();
  TORCH_CHECK(st == at::kFloat || st == at::kBFloat16 || st == at::kHalf,
              "token_logprobs: logits must be float32, bfloat16 or float16, got ", st);
  TORCH_CHECK(targets.scalar_type() == at::kLong, "token_logprobs: targets must be int64, got ",
              targets.scalar_type());
  TORCH_CHECK(targets.sizes() == logits.sizes().slice(0, logits.dim() - 1),
              "token_logprobs: targets ", targets.sizes(), " must be logits ", logits.sizes(), " without the last dim");
  TORCH_CHECK(targets.device() == logits.device(), "token_logprobs: targets on ", targets.device(),
              " but logits on ", logits.device());
}

variable_list run(const at::Tensor& logits, const at::Tensor& targets, bool with_entropy, bool use_custom) {
  check_inputs(logits, targets);
  if (!use_custom) {  // plain LibTorch: the A/B baseline and the test reference
    const at::Tensor lsm = at::log_softmax(logits.to(at::kFloat), -1);  // [..., V]
    at::Tensor lp = at::gather(lsm, -1, targets.unsqueeze(-1)).squeeze(-1);
    if (!with_entropy) return {lp};
    return {lp, -(lsm.exp() * lsm).sum(-1)};
  }
  at::Tensor flat_targets = targets.reshape({-1}).contiguous();
  if (!logits.is_cuda() && flat_targets.numel() > 0) {
    // The CPU twin indexes rows by target: refuse out-of-range ids here (the CUDA twin writes NaN).
    const int64_t lo = flat_targets.min().item<int64_t>(), hi = flat_targets.max().item<int64_t>();
    TORCH_CHECK(lo >= 0 && hi < logits.size(-1), "token_logprobs: target ids must be in [0, ", logits.size(-1),
                "), got [", lo, ", ", hi, "]");
  }
  return TokenLogprobsFn::apply(logits, flat_targets, with_entropy);
}

}  // namespace

at::Tensor token_logprobs(const at::Tensor& logits, const at::Tensor& targets, bool use_custom) {
  return run(logits, targets, false, use_custom)[0];
}

std::pair<at::Tensor, at::Tensor> token_logprobs_entropy(const at::Tensor& logits, const at::Tensor& targets,
                                                         bool use_custom) {
  variable_list out = run(logits, targets, true, use_custom);
  return {out[0], out[1]};
}

bool cuda_kernels_built() { return RARLHF_CUDA_KERNELS != 0; }

}  // namespace rarlhf
