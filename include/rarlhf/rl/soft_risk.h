// Soft-risk schedule of RA-RLHF: how many episodes of each batch the PPO update keeps.
// Paper Eq. 8-10 ("paper"): full batch for m <= n, then a linear drop to ceil(alpha*B) reached at
// iteration ceil(rho*M); the reference code's older rule ("legacy") divides by rho*M instead and does
// not reach alpha at rho*M when n > 0 (reference/ra-rlhf.md §1.1). Pure and torch-free.
#pragma once
#include <cstdint>
#include <vector>

#include "rarlhf/config/config.h"

namespace rarlhf {

// k(m): episodes kept at 0-based iteration m of M with batch B. Always in [ceil(alpha*B), B] and
// non-increasing in m. risk.enabled == false -> B (risk-neutral PPO). Throws ConfigError on bad
// settings (B < 1, M < 1, m < 0, alpha outside (0, 1], rho outside (0, 1], n < 0, unknown schedule).
int64_t soft_risk_keep_count(int64_t m, int64_t batch_size, int64_t total_iterations, const RiskConfig& risk);

// k(m) for m = 0..M-1 (what `rarlhf schedule` prints and plots).
std::vector<int64_t> soft_risk_schedule(int64_t batch_size, int64_t total_iterations, const RiskConfig& risk);

// ceil(x) that forgives binary rounding: ceil(0.4 * 128) is 52 even though 0.4 * 128 evaluates to
// 51.2000000000000028...; values within 1e-9 (relative) above an integer round down to it.
int64_t ceil_tolerant(double x);

}  // namespace rarlhf
