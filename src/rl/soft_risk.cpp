// Soft-risk schedule (paper Eq. 8-10 and the legacy rule); see include/rarlhf/rl/soft_risk.h.
// Every ceiling goes through ceil_tolerant so that products like 0.4 * 128 or 0.95 * 200, which are
// integers in exact arithmetic but land a hair above them in binary floating point, do not gain one.
#include "rarlhf/rl/soft_risk.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "rarlhf/common/error.h"

namespace rarlhf {

int64_t ceil_tolerant(double x) {
  const double tol = 1e-9 * std::max(1.0, std::fabs(x));
  return static_cast<int64_t>(std::ceil(x - tol));
}

namespace {

void check_args(int64_t m, int64_t batch_size, int64_t total_iterations, const RiskConfig& risk) {
  auto bad = [](const std::string& field, const std::string& what) {
    throw ConfigError(field + ": " + what);
  };
  if (batch_size < 1) bad("ppo.batch_size", "must be >= 1, got " + std::to_string(batch_size));
  if (total_iterations < 1)
    bad("ppo.total_iterations", "the schedule needs M >= 1, got " + std::to_string(total_iterations) +
                                    "; set it to the number of iterations M");
  if (m < 0) bad("iteration", "must be >= 0, got " + std::to_string(m));
  if (!(risk.alpha > 0.0 && risk.alpha <= 1.0))
    bad("risk.alpha", "must be in (0, 1], got " + std::to_string(risk.alpha));
  if (!(risk.rho > 0.0 && risk.rho <= 1.0)) bad("risk.rho", "must be in (0, 1], got " + std::to_string(risk.rho));
  if (risk.n < 0) bad("risk.n", "must be >= 0, got " + std::to_string(risk.n));
  using choice::RiskSchedule;
  if (risk.schedule != RiskSchedule::kPaper && risk.schedule != RiskSchedule::kLegacy)
    bad("risk.schedule", "unknown schedule \"" + risk.schedule + "\"; use " + RiskSchedule::kPaper + " or " +
                             RiskSchedule::kLegacy);
}

}  // namespace

int64_t soft_risk_keep_count(int64_t m, int64_t batch_size, int64_t total_iterations, const RiskConfig& risk) {
  check_args(m, batch_size, total_iterations, risk);
  const int64_t B = batch_size;
  if (!risk.enabled || m <= risk.n) return B;  // risk-neutral, or warm start (Eq. 8)
  const int64_t k_min = std::min(B, ceil_tolerant(risk.alpha * static_cast<double>(B)));
  const double drop = static_cast<double>(m - risk.n);
  double frac = 0.0;  // the kept fraction before the max(alpha, .) floor
  if (risk.schedule == choice::RiskSchedule::kPaper) {
    const int64_t end = ceil_tolerant(risk.rho * static_cast<double>(total_iterations));  // ceil(rho*M)
    if (m >= end) return k_min;                                                      // Eq. 10
    // Here n < m < end, so end - n >= 2: no division by zero.
    frac = 1.0 - (1.0 - risk.alpha) * drop / static_cast<double>(end - risk.n);      // Eq. 9
  } else {
    frac = 1.0 - (1.0 - risk.alpha) * drop / (risk.rho * static_cast<double>(total_iterations));
  }
  const int64_t k = ceil_tolerant(static_cast<double>(B) * std::max(risk.alpha, frac));
  return std::clamp(k, k_min, B);
}

std::vector<int64_t> soft_risk_schedule(int64_t batch_size, int64_t total_iterations, const RiskConfig& risk) {
  check_args(0, batch_size, total_iterations, risk);
  std::vector<int64_t> ks(static_cast<size_t>(total_iterations));
  for (int64_t m = 0; m < total_iterations; ++m)
    ks[static_cast<size_t>(m)] = soft_risk_keep_count(m, batch_size, total_iterations, risk);
  return ks;
}

}  // namespace rarlhf
