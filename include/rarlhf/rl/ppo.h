// PPO pieces of the RA-RLHF update (reference/ra-rlhf.md §1.2-1.3, TRL ~0.7 formulas): KL-penalised
// per-token rewards, the risk selection of the lowest-return episodes, the clipped policy + value
// loss with masked means and its statistics, and the adaptive KL controller (Ziegler et al. 2019).
// The trainer (src/train) calls these in its numbered stages; see ops.h for GAE and whitening.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

#include "rarlhf/config/config.h"

namespace rarlhf {

// rewards[b, t] = -beta * kl[b, t] * mask[b, t], plus scores[b] on row b's last token with mask != 0.
// kl_penalty "k1": kl = logprobs - ref_logprobs; "k3": kl = exp(ref - lp) - 1 - (ref - lp) (>= 0).
// scores [B]; logprobs, ref_logprobs, mask [B, R]. Returns fp32 [B, R]. Every row needs a valid token.
at::Tensor per_token_rewards(const at::Tensor& scores, const at::Tensor& logprobs, const at::Tensor& ref_logprobs,
                             const at::Tensor& mask, double beta, const std::string& kl_penalty);

// The per-token KL estimate used above, [B, R] fp32 (unmasked), for logging.
at::Tensor kl_estimate(const at::Tensor& logprobs, const at::Tensor& ref_logprobs, const std::string& kl_penalty);

// Risk selection (§1.2 step 5): q-hat = the k-th smallest return; episodes with return > q-hat are
// dropped, ties at q-hat kept, so keep_count >= k. episode_returns [B] (finite), 1 <= k <= B.
struct RiskSelection {
  at::Tensor keep;     // [B] bool, on the returns' device
  double threshold;    // q-hat
  int64_t keep_count;  // episodes kept (>= k when there are ties)
};
RiskSelection select_lowest_returns(const at::Tensor& episode_returns, int64_t k);

// The ablation control for the above (risk.selection=random): exactly k of the B episodes, drawn
// uniformly without replacement by a splitmix64-driven Fisher-Yates shuffle of `seed` (the same on
// every rank and platform, so data-parallel ranks and resumed runs agree). threshold = the largest
// kept return, for logging. episode_returns [B] (finite), 1 <= k <= B.
RiskSelection select_random_episodes(const at::Tensor& episode_returns, int64_t k, uint64_t seed);

struct PpoLossStats {
  double pg_loss = 0, vf_loss = 0;         // masked means (vf_loss includes TRL's 0.5 factor)
  double clipfrac = 0, vf_clipfrac = 0;    // fraction of kept tokens where the clipped term was active
  double approx_kl = 0;                    // 0.5 * masked mean of (lp - old_lp)^2
  double policy_entropy = 0;               // masked mean of `entropy`; 0 when none was given
  double ratio_mean = 0, ratio_max = 0;    // over kept tokens
};
// Whether to skip a minibatch (no kept token, mean ratio above ppo.ratio_threshold) is the trainer's
// call: it decides from counts and statistics summed over every rank, which one rank's loss lacks.
struct PpoLoss {
  at::Tensor loss;          // pg_loss + vf_coef * vf_loss, scalar; 0 (graph-connected) when the mask is empty
  PpoLossStats stats;       // all 0 when the mask is empty
};
// logprobs, values: current policy / value head, with grad; old_*: from the rollout; all [B, R].
// Policy: max(-A * ratio, -A * clip(ratio, 1 +- clip_range)); value: 0.5 * max((v - G)^2,
// (clip(v, old_v +- clip_range_value) - G)^2); both masked means. entropy [B, R] optional (stats only).
PpoLoss ppo_loss(const at::Tensor& logprobs, const at::Tensor& old_logprobs, const at::Tensor& values,
                 const at::Tensor& old_values, const at::Tensor& advantages, const at::Tensor& returns,
                 const at::Tensor& mask, const PpoConfig& cfg, const at::Tensor& entropy = {});

// KL coefficient beta. Adaptive (cfg.adaptive_kl): e = clip(KL / target - 1, -0.2, 0.2),
// beta *= 1 + e * n_steps / horizon, with n_steps = episodes in the batch (paper: B). Fixed: no-op.
class KlController {
 public:
  explicit KlController(const PpoConfig& cfg);
  void update(double current_kl, int64_t n_steps);
  double value() const { return value_; }
  void set_value(double beta);  // for resume

 private:
  double value_;
  bool adaptive_;
  double target_;
  double horizon_;
};

}  // namespace rarlhf
