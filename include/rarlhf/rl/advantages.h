// Advantages for the PPO update (stages 5-6 of an iteration): GAE over the KL-penalised per-token
// rewards, and their whitening over the kept tokens of every rank's episodes. TRL v0.7
// ppo_trainer.py compute_advantages / masked_whiten.
#pragma once
#include <ATen/core/Tensor.h>

#include <utility>

#include "rarlhf/config/config.h"
#include "rarlhf/dist/communicator.h"

namespace rarlhf {

// GAE(ppo.gamma, ppo.lam) over [B, R] (see gae_scan): {advantages, returns = advantages + values}.
std::pair<at::Tensor, at::Tensor> compute_advantages(const at::Tensor& rewards, const at::Tensor& values,
                                                     const at::Tensor& mask, const PpoConfig& ppo);

// x whitened with the mean and unbiased variance over mask != 0 across all ranks (TRL's
// masked_whiten: var = sum(m (x - mean)^2) / (n - 1)); one rank: masked_whiten itself. x unchanged
// when all ranks together have fewer than two such tokens (the variance is undefined, e.g. one
// response token and k = 1). Every rank must call it (collectives).
at::Tensor whiten_advantages(dist::Communicator& comm, const at::Tensor& x, const at::Tensor& mask,
                             bool use_custom_kernels);

}  // namespace rarlhf
