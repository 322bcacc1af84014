// PPO minibatch statistics over ranks. Each rank trains on its own rows of a global minibatch, so its
// masked means cover only its tokens; weighted by its token count and summed over ranks (in the
// same collective as the gradients) and divided by the minibatch's kept tokens, they are the masked
// means one process would have computed over the whole minibatch.
#pragma once
#include <ATen/core/Tensor.h>

#include "rarlhf/rl/ppo.h"

namespace rarlhf {

class WeightedLossStats {
 public:
  WeightedLossStats();  // zeros: a rank with no row in the minibatch
  // `stats` and `loss` of a masked mean over `tokens` tokens.
  WeightedLossStats(const PpoLossStats& stats, double loss, double tokens);
  // The [8] double buffer to sum over ranks in place (dist::all_reduce_gradients' `extra`).
  at::Tensor& sums() { return sums_; }
  // After the sum: the minibatch's means, with `tokens` its kept tokens over all ranks.
  PpoLossStats mean_stats(double tokens) const;
  double mean_loss(double tokens) const;

 private:
  at::Tensor sums_;  // pg, vf, clipfrac, vf_clipfrac, entropy, approx_kl, ratio, loss; each x tokens
};

// Field-wise a += b (ratio_max: the max), and a * s: averaging statistics over optimiser steps.
void accumulate(PpoLossStats& a, const PpoLossStats& b);
PpoLossStats scaled(const PpoLossStats& a, double s);

}  // namespace rarlhf
