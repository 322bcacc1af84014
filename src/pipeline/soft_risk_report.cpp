// Schedule table / JSON / plot for `rarlhf schedule`; see include/rarlhf/pipeline/soft_risk_report.h.
#include "rarlhf/pipeline/soft_risk_report.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <sstream>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/process.h"
#include "rarlhf/rl/soft_risk.h"

namespace rarlhf {
namespace fs = std::filesystem;

nlohmann::json soft_risk_schedule_json(int64_t batch_size, int64_t total_iterations, const RiskConfig& risk) {
  RiskConfig on = risk;
  on.enabled = true;
  const std::vector<int64_t> ks = soft_risk_schedule(batch_size, total_iterations, on);
  RiskConfig other = on;
  other.schedule = on.schedule == "paper" ? "legacy" : "paper";
  const std::vector<int64_t> other_ks = soft_risk_schedule(batch_size, total_iterations, other);
  const int64_t k_min = ceil_tolerant(risk.alpha * static_cast<double>(batch_size));
  int64_t reached = -1;
  nlohmann::json alpha_now = nlohmann::json::array();
  for (size_t m = 0; m < ks.size(); ++m) {
    if (reached < 0 && ks[m] == k_min) reached = static_cast<int64_t>(m);
    alpha_now.push_back(static_cast<double>(ks[m]) / static_cast<double>(batch_size));
  }
  return {{"batch_size", batch_size},
          {"iterations", total_iterations},
          {"alpha", risk.alpha},
          {"n", risk.n},
          {"rho", risk.rho},
          {"schedule", risk.schedule},
          {"enabled", risk.enabled},
          {"keep_count", ks},
          {"alpha_now", alpha_now},
          {"warm_start_end", risk.n},
          {"alpha_reached_at", reached},
          {"other_schedule", other.schedule},
          {"other_keep_count", other_ks}};
}

std::string soft_risk_schedule_table(const nlohmann::json& s) {
  std::ostringstream out;
  out << "# soft-risk schedule (" << s["schedule"].get<std::string>() << "): B=" << s["batch_size"].get<int64_t>()
      << " M=" << s["iterations"].get<int64_t>() << " alpha=" << s["alpha"].get<double>()
      << " n=" << s["n"].get<int64_t>() << " rho=" << s["rho"].get<double>()
      << "; alpha reached at m=" << s["alpha_reached_at"].get<int64_t>() << "\n";
  if (!s["enabled"].get<bool>())
    out << "# note: risk.enabled is false, so training keeps the full batch; this is the schedule it would use\n";
  out << "#    m  keep_count  alpha_now\n";
  const auto& ks = s["keep_count"];
  const auto& an = s["alpha_now"];
  char line[64];
  for (size_t m = 0; m < ks.size(); ++m) {
    std::snprintf(line, sizeof(line), "%6zu  %10lld  %9.4f\n", m, static_cast<long long>(ks[m].get<int64_t>()),
                  an[m].get<double>());
    out << line;
  }
  return out.str();
}

void plot_soft_risk_schedule(const nlohmann::json& schedule, const std::string& png_path) {
  const std::string script = find_bundled_script("plot_schedule.py");
  // The schedule goes to the script through a temp JSON file next to the PNG, removed either way.
  const fs::path png = fs::absolute(png_path);
  make_dirs(png.parent_path().string());
  const std::string tmp = png.string() + ".schedule.tmp." + std::to_string(::getpid()) + ".json";
  write_file_atomic(tmp, schedule.dump() + "\n");
  try {
    run_plot_script(script, {"--input", tmp, "--output", png.string()});
  } catch (const IoError& e) {
    std::remove(tmp.c_str());
    throw IoError(png_path + ": no plot: " + e.what());
  }
  std::remove(tmp.c_str());
}

}  // namespace rarlhf
