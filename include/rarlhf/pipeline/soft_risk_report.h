// What `rarlhf schedule` prints and plots before a run: the soft-risk schedule k(m) a config gives,
// for every iteration, as a table or JSON, and a PNG like the paper's risk-schedule figure drawn by
// scripts/plot_schedule.py (common/process.h). The schedule itself is rl/soft_risk.h. Torch-free.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "rarlhf/config/config.h"

namespace rarlhf {

// {"batch_size", "iterations", "alpha", "n", "rho", "schedule", "enabled", "keep_count": [k(0..M-1)],
//  "alpha_now": [k/B], "warm_start_end": n, "alpha_reached_at": first m with k = ceil(alpha B) (or -1),
//  "other_schedule": name, "other_keep_count": [...] (the other rule, for comparison)}.
// The schedule is computed as if risk.enabled were true (the trainer keeps B when it is false).
nlohmann::json soft_risk_schedule_json(int64_t batch_size, int64_t total_iterations, const RiskConfig& risk);

// Fixed-width table: "m  keep_count  alpha_now", one line per iteration, after a header comment.
std::string soft_risk_schedule_table(const nlohmann::json& schedule);

// Writes a PNG of the schedule by running scripts/plot_schedule.py (found by find_bundled_script,
// run by run_plot_script); IoError naming png_path and the fix when the script, Python or
// matplotlib is missing or the plot fails.
void plot_soft_risk_schedule(const nlohmann::json& schedule, const std::string& png_path);

}  // namespace rarlhf
