// PPO pieces: see include/rarlhf/rl/ppo.h. Formulas follow the RA-RLHF reference code's TRL ~0.7
// (compute_rewards, loss, AdaptiveKLController) and the paper §4; no code was taken from either.
// Statistics are gathered into one tensor and copied to the host once per call.
#include "rarlhf/rl/ppo.h"

#include <ATen/TensorOperators.h>
#include <ATen/ops/arange.h>
#include <ATen/ops/clamp.h>
#include <ATen/ops/exp.h>
#include <ATen/ops/isfinite.h>
#include <ATen/ops/maximum.h>
#include <ATen/ops/sort.h>
#include <ATen/ops/stack.h>
#include <ATen/ops/where.h>
#include <ATen/ops/zeros.h>
#include <ATen/ops/zeros_like.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "rarlhf/common/error.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/random.h"

namespace rarlhf {

at::Tensor kl_estimate(const at::Tensor& logprobs, const at::Tensor& ref_logprobs, const std::string& kl_penalty) {
  TORCH_CHECK(logprobs.sizes() == ref_logprobs.sizes(), "kl_estimate: logprobs ", logprobs.sizes(),
              " and ref_logprobs ", ref_logprobs.sizes(), " differ");
  const at::Tensor lp = logprobs.to(at::kFloat), ref = ref_logprobs.to(at::kFloat);
  if (kl_penalty == choice::KlPenalty::kK1) return lp - ref;
  if (kl_penalty == choice::KlPenalty::kK3) {  // Schulman's unbiased, non-negative estimator
    const at::Tensor d = ref - lp;
    return at::exp(d) - 1.0 - d;
  }
  throw ConfigError("ppo.kl_penalty: unknown estimator \"" + kl_penalty + "\"; use " + choice::KlPenalty::kK1 +
                    " or " + choice::KlPenalty::kK3);
}

at::Tensor per_token_rewards(const at::Tensor& scores, const at::Tensor& logprobs, const at::Tensor& ref_logprobs,
                             const at::Tensor& mask, double beta, const std::string& kl_penalty) {
  TORCH_CHECK(logprobs.dim() == 2, "per_token_rewards: logprobs must be [B, R], got ", logprobs.sizes());
  TORCH_CHECK(mask.sizes() == logprobs.sizes(), "per_token_rewards: mask ", mask.sizes(), " != logprobs ",
              logprobs.sizes());
  TORCH_CHECK(scores.dim() == 1 && scores.size(0) == logprobs.size(0), "per_token_rewards: scores must be [B] with B = ",
              logprobs.size(0), ", got ", scores.sizes());
  const at::Tensor m = mask.to(at::kFloat);
  at::Tensor rewards = -beta * kl_estimate(logprobs, ref_logprobs, kl_penalty) * m;  // [B, R]
  // Last valid token per row: the largest t with mask != 0.
  const at::Tensor pos = at::arange(m.size(1), m.options().dtype(at::kLong)).unsqueeze(0);  // [1, R]
  const at::Tensor valid = m != 0;
  const at::Tensor last = at::where(valid, pos, at::zeros_like(pos) - 1).amax(1);         // [B]
  TORCH_CHECK(last.min().item<int64_t>() >= 0, "per_token_rewards: a row of the mask has no valid token");
  rewards.scatter_add_(1, last.unsqueeze(1), scores.to(at::kFloat).unsqueeze(1));
  return rewards;
}

RiskSelection select_lowest_returns(const at::Tensor& episode_returns, int64_t k) {
  TORCH_CHECK(episode_returns.dim() == 1 && episode_returns.size(0) >= 1,
              "select_lowest_returns: returns must be a non-empty [B], got ", episode_returns.sizes());
  const int64_t batch = episode_returns.size(0);
  TORCH_CHECK(k >= 1 && k <= batch, "select_lowest_returns: k must be in [1, ", batch, "], got ", k);
  const at::Tensor r = episode_returns.to(at::kDouble);
  TORCH_CHECK(at::isfinite(r).all().item<bool>(), "select_lowest_returns: returns contain NaN or inf");
  const at::Tensor sorted = std::get<0>(at::sort(r));
  RiskSelection sel;
  sel.threshold = sorted[k - 1].item<double>();
  sel.keep = r <= sel.threshold;  // ties at q-hat kept
  sel.keep_count = sel.keep.sum().item<int64_t>();
  return sel;
}

RiskSelection select_random_episodes(const at::Tensor& episode_returns, int64_t k, uint64_t seed) {
  TORCH_CHECK(episode_returns.dim() == 1 && episode_returns.size(0) >= 1,
              "select_random_episodes: returns must be a non-empty [B], got ", episode_returns.sizes());
  const int64_t batch = episode_returns.size(0);
  TORCH_CHECK(k >= 1 && k <= batch, "select_random_episodes: k must be in [1, ", batch, "], got ", k);
  const at::Tensor r = episode_returns.to(at::kDouble).to(at::kCPU).contiguous();
  TORCH_CHECK(at::isfinite(r).all().item<bool>(), "select_random_episodes: returns contain NaN or inf");
  std::vector<int64_t> order(static_cast<size_t>(batch));
  for (int64_t i = 0; i < batch; ++i) order[static_cast<size_t>(i)] = i;
  SplitMix64 rng{seed};
  shuffle_in_place(order, rng);
  at::Tensor keep = at::zeros({batch}, at::TensorOptions().dtype(at::kBool));
  bool* kp = keep.data_ptr<bool>();
  const double* rv = r.data_ptr<double>();
  RiskSelection sel;
  sel.threshold = -std::numeric_limits<double>::infinity();
  for (int64_t i = 0; i < k; ++i) {
    const int64_t e = order[static_cast<size_t>(i)];
    kp[e] = true;
    sel.threshold = std::max(sel.threshold, rv[e]);
  }
  sel.keep = keep.to(episode_returns.device());
  sel.keep_count = k;
  return sel;
}

PpoLoss ppo_loss(const at::Tensor& logprobs, const at::Tensor& old_logprobs, const at::Tensor& values,
                 const at::Tensor& old_values, const at::Tensor& advantages, const at::Tensor& returns,
                 const at::Tensor& mask, const PpoConfig& cfg, const at::Tensor& entropy) {
  const auto shape = logprobs.sizes();
  for (const at::Tensor* t : {&old_logprobs, &values, &old_values, &advantages, &returns, &mask})
    TORCH_CHECK(t->sizes() == shape, "ppo_loss: all inputs must be shaped like logprobs ", shape, ", got ",
                t->sizes());
  TORCH_CHECK(!entropy.defined() || entropy.sizes() == shape, "ppo_loss: entropy must be shaped like logprobs");
  const at::Tensor m = mask.to(at::kFloat);
  const at::Tensor n = m.sum();
  PpoLoss out;
  if (n.item<double>() <= 0.0) {  // every episode of this minibatch was dropped by the risk selection
    out.loss = (logprobs.sum() + values.sum()) * 0.0;
    return out;
  }
  auto mmean = [&](const at::Tensor& x) { return (x * m).sum() / n; };
  const at::Tensor lp = logprobs.to(at::kFloat), old_lp = old_logprobs.to(at::kFloat).detach();
  const at::Tensor v = values.to(at::kFloat), old_v = old_values.to(at::kFloat).detach();
  const at::Tensor adv = advantages.to(at::kFloat).detach(), ret = returns.to(at::kFloat).detach();

  const at::Tensor v_clipped = at::clamp(v, old_v - cfg.clip_range_value, old_v + cfg.clip_range_value);
  const at::Tensor vf1 = (v - ret) * (v - ret), vf2 = (v_clipped - ret) * (v_clipped - ret);
  const at::Tensor vf_loss = 0.5 * mmean(at::maximum(vf1, vf2));

  const at::Tensor log_ratio = lp - old_lp;
  const at::Tensor ratio = at::exp(log_ratio);
  const at::Tensor pg1 = -adv * ratio;
  const at::Tensor pg2 = -adv * at::clamp(ratio, 1.0 - cfg.clip_range, 1.0 + cfg.clip_range);
  const at::Tensor pg_loss = mmean(at::maximum(pg1, pg2));
  out.loss = pg_loss + cfg.vf_coef * vf_loss;

  const at::Tensor rd = ratio.detach();
  const at::Tensor ent_mean = entropy.defined() ? mmean(entropy.detach().to(at::kFloat)) : at::zeros_like(n);
  const at::Tensor stats = at::stack({pg_loss.detach(), vf_loss.detach(), mmean((pg2 > pg1).to(at::kFloat)).detach(),
                                      mmean((vf2 > vf1).to(at::kFloat)).detach(),
                                      0.5 * mmean(log_ratio.detach() * log_ratio.detach()), ent_mean, mmean(rd),
                                      at::where(m != 0, rd, at::zeros_like(rd)).max()})
                               .to(at::kDouble)
                               .cpu();
  const double* s = stats.data_ptr<double>();
  out.stats = {s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]};
  return out;
}

KlController::KlController(const PpoConfig& cfg)
    : value_(cfg.init_kl_coef), adaptive_(cfg.adaptive_kl), target_(cfg.kl_target), horizon_(cfg.kl_horizon) {
  if (!(cfg.init_kl_coef >= 0.0)) throw ConfigError("ppo.init_kl_coef: must be >= 0");
  if (adaptive_ && !(target_ > 0.0)) throw ConfigError("ppo.kl_target: must be > 0 for the adaptive controller");
  if (adaptive_ && !(horizon_ > 0.0)) throw ConfigError("ppo.kl_horizon: must be > 0 for the adaptive controller");
}

void KlController::update(double current_kl, int64_t n_steps) {
  if (!adaptive_) return;
  if (!std::isfinite(current_kl)) {  // a NaN KL would poison beta for the rest of the run
    RARLHF_LOG_WARN("KL controller: non-finite KL {}; beta left at {}", current_kl, value_);
    return;
  }
  const double e = std::clamp(current_kl / target_ - 1.0, -0.2, 0.2);
  value_ *= 1.0 + e * static_cast<double>(n_steps) / horizon_;
}

void KlController::set_value(double beta) {
  if (!(beta >= 0.0) || !std::isfinite(beta))
    throw ConfigError("KL coefficient: resume value must be a finite number >= 0, got " + std::to_string(beta));
  value_ = beta;
}

}  // namespace rarlhf
