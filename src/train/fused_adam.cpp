// One-pass Adam/AdamW update on CPU: see include/rarlhf/train/fused_adam.h. The arithmetic follows
// LibTorch's Adam::step / AdamW::step op by op (torch/csrc/api/src/optim/adam.cpp, adamw.cpp in
// 1.13 and 2.x): moments m = b1*m + (1-b1)*g, v = b2*v + (1-b2)*g*g, denom = sqrt(v)/sqrt(bc2) + eps,
// p += -(lr/bc1) * m/denom; Adam adds weight_decay*p to g, AdamW scales p by 1 - lr*weight_decay
// first. Results agree with LibTorch's to float rounding (tests/train/fused_adam_test.cpp).
#include "rarlhf/train/fused_adam.h"

#include <ATen/Parallel.h>
#include <c10/util/irange.h>

#include <cmath>
#include <memory>
#include <sstream>
#include <string>
#include <type_traits>

namespace rarlhf {

namespace {

// Optimizer::state() is keyed by the parameter's TensorImpl: as a string of its address in LibTorch
// 1.x (c10::guts::to_string), as the pointer itself in 2.x.
template <class Map>
typename Map::key_type state_key(const Map&, const at::Tensor& p) {
  if constexpr (std::is_same_v<typename Map::key_type, std::string>) {
    std::ostringstream os;
    os << p.unsafeGetTensorImpl();
    return os.str();
  } else {
    return p.unsafeGetTensorImpl();
  }
}

bool fusable(const at::Tensor& p) {
  const at::Tensor& g = p.grad();
  return p.device().is_cpu() && p.scalar_type() == at::kFloat && p.is_contiguous() && !p.is_sparse() &&
         (!g.defined() || (g.scalar_type() == at::kFloat && g.is_contiguous() && !g.is_sparse() &&
                           g.sizes() == p.sizes()));
}

struct Hyper {
  float beta1, beta2, one_minus_beta1, one_minus_beta2, eps, sqrt_bc2, neg_step_size;
  float l2;           // Adam: g += l2 * p
  float decay_scale;  // AdamW: p *= decay_scale first (1 = none)
};

void update(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, int64_t n,
            const Hyper& h) {
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float pi = p[i];
      if (h.decay_scale != 1.0f) pi = pi * h.decay_scale;
      const float gi = h.l2 != 0.0f ? g[i] + h.l2 * pi : g[i];
      const float mi = m[i] * h.beta1 + h.one_minus_beta1 * gi;
      const float vi = v[i] * h.beta2 + h.one_minus_beta2 * gi * gi;
      m[i] = mi;
      v[i] = vi;
      const float denom = std::sqrt(vi) / h.sqrt_bc2 + h.eps;
      p[i] = pi + h.neg_step_size * (mi / denom);
    }
  });
}

// The shared loop of both optimisers. State is created exactly as LibTorch does (zeros, step 0),
// so a checkpoint written by either implementation loads into the other.
template <class Opt, class Options, class State, bool Decoupled>
bool fused_step(Opt& opt) {
  for (torch::optim::OptimizerParamGroup& group : opt.param_groups()) {
    const auto& o = static_cast<const Options&>(group.options());
    if (o.amsgrad()) return false;
    for (const at::Tensor& p : group.params()) {
      if (p.grad().defined() && !fusable(p)) return false;
    }
  }
  at::NoGradGuard no_grad;
  auto& states = opt.state();
  for (torch::optim::OptimizerParamGroup& group : opt.param_groups()) {
    const auto& o = static_cast<const Options&>(group.options());
    for (at::Tensor& p : group.params()) {
      if (!p.grad().defined()) continue;
      const auto key = state_key(states, p);
      auto it = states.find(key);
      if (it == states.end()) {
        auto s = std::make_unique<State>();
        s->step(0);
        s->exp_avg(at::zeros_like(p, at::MemoryFormat::Preserve));
        s->exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Preserve));
        it = states.emplace(key, std::move(s)).first;
      }
      auto& s = static_cast<State&>(*it->second);
      s.step(s.step() + 1);
      const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
      const double bc1 = 1 - std::pow(beta1, static_cast<double>(s.step()));
      const double bc2 = 1 - std::pow(beta2, static_cast<double>(s.step()));
      Hyper h{};
      h.beta1 = static_cast<float>(beta1);
      h.beta2 = static_cast<float>(beta2);
      h.one_minus_beta1 = static_cast<float>(1 - beta1);
      h.one_minus_beta2 = static_cast<float>(1 - beta2);
      h.eps = static_cast<float>(o.eps());
      h.sqrt_bc2 = static_cast<float>(std::sqrt(bc2));
      h.neg_step_size = static_cast<float>(-(o.lr() / bc1));
      h.l2 = Decoupled ? 0.0f : static_cast<float>(o.weight_decay());
      h.decay_scale = Decoupled && o.weight_decay() != 0 ? static_cast<float>(1 - o.lr() * o.weight_decay()) : 1.0f;
      at::Tensor& m = s.exp_avg();
      at::Tensor& v = s.exp_avg_sq();
      TORCH_CHECK(m.is_contiguous() && v.is_contiguous() && m.scalar_type() == at::kFloat &&
                      v.scalar_type() == at::kFloat && m.numel() == p.numel() && v.numel() == p.numel(),
                  "FusedAdam: optimiser state does not match its parameter (loaded from another model?)");
      update(p.data_ptr<float>(), p.grad().data_ptr<float>(), m.data_ptr<float>(), v.data_ptr<float>(), p.numel(), h);
    }
  }
  return true;
}

}  // namespace

at::Tensor FusedAdam::step(LossClosure closure) {
  at::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  if (!fused_step<FusedAdam, torch::optim::AdamOptions, torch::optim::AdamParamState, false>(*this)) {
    torch::optim::Adam::step(nullptr);
  }
  return loss;
}

at::Tensor FusedAdamW::step(LossClosure closure) {
  at::Tensor loss;
  if (closure) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  if (!fused_step<FusedAdamW, torch::optim::AdamWOptions, torch::optim::AdamWParamState, true>(*this)) {
    torch::optim::AdamW::step(nullptr);
  }
  return loss;
}

void step_with_zero_gradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups()) {
    for (at::Tensor& p : group.params()) {
      if (p.grad().defined()) {
        p.mutable_grad().zero_();
      } else {
        p.mutable_grad() = at::zeros_like(p);
      }
    }
  }
  optimizer.step();
}

}  // namespace rarlhf
