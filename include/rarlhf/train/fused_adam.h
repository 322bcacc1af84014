// Adam and AdamW whose step() updates each CPU fp32 parameter in one pass over (param, grad,
// exp_avg, exp_avg_sq) instead of LibTorch's six elementwise ops. The tied 50257 x C embedding
// makes the optimiser a large share of a small model's PPO update on CPU (bench/ppo_iteration_bench).
// Same algorithm, state and checkpoint format as torch::optim::Adam/AdamW (torch::save/load work
// unchanged); parameters that are not contiguous CPU fp32 dense tensors, and amsgrad, take the
// LibTorch path.
#pragma once
#include <torch/optim/adam.h>
#include <torch/optim/adamw.h>

namespace rarlhf {

class FusedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;
  at::Tensor step(LossClosure closure = nullptr) override;
};

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  at::Tensor step(LossClosure closure = nullptr) override;
};

// One optimiser step on all-zero gradients, every parameter of every group: what TRL v0.7 does with a
// minibatch whose loss it multiplied by 0 (ppo.ratio_threshold). Adam's moments decay, its step
// count advances, and the momentum left from earlier steps still moves the weights.
void step_with_zero_gradients(torch::optim::Optimizer& optimizer);

}  // namespace rarlhf
