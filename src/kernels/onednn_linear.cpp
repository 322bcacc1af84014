// A differentiable fp32 CPU linear layer whose three products (forward, input and weight gradients)
// run on oneDNN's sgemm where the process has it. Why: training's products otherwise go through
// LibTorch's BLAS (OpenBLAS on Debian), which runs the shapes of a PPO minibatch at about half of what
// oneDNN's JIT kernels reach on the same cores (bench/kernels_bench, linear/*/512/*). Gradients are the
// textbook ones (dx = dy W, dW = dy^T x or x^T dy, db = sum dy), taken only for inputs that need them
// (a frozen base under LoRA computes no dW).
#include <ATen/ops/empty.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>

#include "kernels_internal.h"
#include "rarlhf/kernels/ops.h"

namespace rarlhf {
namespace {

namespace kd = kernels_detail;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// y [M, N] = x [M, K] @ (w_t ? w[N, K]^T : w[K, N]), C written (beta 0) or accumulated onto (beta 1).
void gemm_xw(const at::Tensor& x, const at::Tensor& w, bool w_t, at::Tensor& y, float beta) {
  const int64_t M = x.size(0), K = x.size(1), N = y.size(1);
  kd::onednn_gemm('N', w_t ? 'T' : 'N', M, N, K, x.data_ptr<float>(), K, w.data_ptr<float>(), w_t ? K : N, beta,
                  y.data_ptr<float>(), N);
}

struct OnednnLinearFn : public torch::autograd::Function<OnednnLinearFn> {
  static variable_list forward(AutogradContext* ctx, const at::Tensor& x_in, const at::Tensor& w_in,
                               const at::Tensor& b, bool w_t) {
    const at::Tensor x = x_in.reshape({-1, x_in.size(-1)}).contiguous();
    const at::Tensor w = w_in.contiguous();
    const int64_t N = w_t ? w.size(0) : w.size(1);
    at::Tensor y = at::empty({x.size(0), N}, x.options());
    float beta = 0.0f;
    const bool has_b = b.numel() > 0;
    if (has_b) {
      y.copy_(b.reshape({1, N}).expand({x.size(0), N}));
      beta = 1.0f;
    }
    gemm_xw(x, w, w_t, y, beta);
    ctx->save_for_backward({x, w});
    ctx->saved_data["w_t"] = w_t;
    ctx->saved_data["has_b"] = has_b;
    auto sizes = x_in.sizes().vec();
    sizes.back() = N;
    return {y.view(sizes)};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor& x = saved[0];
    const at::Tensor& w = saved[1];
    const bool w_t = ctx->saved_data["w_t"].toBool();
    const int64_t M = x.size(0), K = x.size(1), N = w_t ? w.size(0) : w.size(1);
    const at::Tensor dy = grads[0].reshape({M, N}).contiguous();
    at::Tensor dx, dw, db;
    if (ctx->needs_input_grad(0)) {
      dx = at::empty({M, K}, x.options());
      // dx = dy [M, N] @ (w_t ? w [N, K] : w[K, N]^T)
      kd::onednn_gemm('N', w_t ? 'N' : 'T', M, K, N, dy.data_ptr<float>(), N, w.data_ptr<float>(), w_t ? K : N, 0.0f,
                      dx.data_ptr<float>(), K);
    }
    if (ctx->needs_input_grad(1)) {
      if (w_t) {  // dW [N, K] = dy^T x
        dw = at::empty({N, K}, x.options());
        kd::onednn_gemm('T', 'N', N, K, M, dy.data_ptr<float>(), N, x.data_ptr<float>(), K, 0.0f,
                        dw.data_ptr<float>(), K);
      } else {  // dW [K, N] = x^T dy
        dw = at::empty({K, N}, x.options());
        kd::onednn_gemm('T', 'N', K, N, M, x.data_ptr<float>(), K, dy.data_ptr<float>(), N, 0.0f,
                        dw.data_ptr<float>(), N);
      }
    }
    if (ctx->saved_data["has_b"].toBool() && ctx->needs_input_grad(2)) db = dy.sum(0);
    if (dx.defined()) {
      auto sizes = grads[0].sizes().vec();
      sizes.back() = K;
      dx = dx.view(sizes);
    }
    return {dx, dw, db, at::Tensor()};
  }
};

}  // namespace

bool onednn_linear_applies(const at::Tensor& x, const at::Tensor& w) {
  if (!cpu_linear_uses_onednn()) return false;
  if (!x.defined() || !w.defined() || !x.device().is_cpu() || !w.device().is_cpu()) return false;
  if (x.scalar_type() != at::kFloat || w.scalar_type() != at::kFloat || w.dim() != 2 || x.dim() < 1) return false;
  return x.numel() / std::max<int64_t>(x.size(-1), 1) >= 32;  // rows: small products stay on ATen
}

at::Tensor onednn_linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, bool w_transposed) {
  TORCH_CHECK(onednn_linear_applies(x, w), "onednn_linear: needs float32 CPU tensors, >= 32 rows and oneDNN");
  const int64_t K = w_transposed ? w.size(1) : w.size(0);
  TORCH_CHECK(x.size(-1) == K, "onednn_linear: x is [..., ", x.size(-1), "] but w is ", w.sizes());
  // No bias: an empty tensor (LibTorch 1.13's Function::apply cannot take an undefined input).
  return OnednnLinearFn::apply(x, w, b.defined() ? b : at::empty({0}, x.options()), w_transposed)[0];
}

}  // namespace rarlhf
