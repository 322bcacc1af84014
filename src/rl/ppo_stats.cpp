// Token-weighted PPO statistics over ranks: see include/rarlhf/rl/ppo_stats.h.
#include "rarlhf/rl/ppo_stats.h"

#include <ATen/ATen.h>

#include <algorithm>

namespace rarlhf {
namespace {

enum Slot { kPg, kVf, kClip, kVfClip, kEntropy, kApproxKl, kRatio, kLoss, kSlots };

}  // namespace

WeightedLossStats::WeightedLossStats() : sums_(at::zeros({kSlots}, at::TensorOptions().dtype(at::kDouble))) {}

WeightedLossStats::WeightedLossStats(const PpoLossStats& s, double loss, double tokens) : WeightedLossStats() {
  double* p = sums_.data_ptr<double>();
  p[kPg] = s.pg_loss * tokens;
  p[kVf] = s.vf_loss * tokens;
  p[kClip] = s.clipfrac * tokens;
  p[kVfClip] = s.vf_clipfrac * tokens;
  p[kEntropy] = s.policy_entropy * tokens;
  p[kApproxKl] = s.approx_kl * tokens;
  p[kRatio] = s.ratio_mean * tokens;
  p[kLoss] = loss * tokens;
}

PpoLossStats WeightedLossStats::mean_stats(double tokens) const {
  const double* p = sums_.data_ptr<double>();
  PpoLossStats s;
  s.pg_loss = p[kPg] / tokens;
  s.vf_loss = p[kVf] / tokens;
  s.clipfrac = p[kClip] / tokens;
  s.vf_clipfrac = p[kVfClip] / tokens;
  s.policy_entropy = p[kEntropy] / tokens;
  s.approx_kl = p[kApproxKl] / tokens;
  s.ratio_mean = p[kRatio] / tokens;
  return s;
}

double WeightedLossStats::mean_loss(double tokens) const { return sums_.data_ptr<double>()[kLoss] / tokens; }

void accumulate(PpoLossStats& a, const PpoLossStats& b) {
  a.pg_loss += b.pg_loss;
  a.vf_loss += b.vf_loss;
  a.clipfrac += b.clipfrac;
  a.vf_clipfrac += b.vf_clipfrac;
  a.approx_kl += b.approx_kl;
  a.policy_entropy += b.policy_entropy;
  a.ratio_mean += b.ratio_mean;
  a.ratio_max = std::max(a.ratio_max, b.ratio_max);
}

PpoLossStats scaled(const PpoLossStats& a, double s) {
  PpoLossStats out = a;
  out.pg_loss *= s;
  out.vf_loss *= s;
  out.clipfrac *= s;
  out.vf_clipfrac *= s;
  out.approx_kl *= s;
  out.policy_entropy *= s;
  out.ratio_mean *= s;
  return out;
}

}  // namespace rarlhf
