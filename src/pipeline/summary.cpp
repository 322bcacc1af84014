// The compare stage's summary table: see include/rarlhf/pipeline/summary.h.
#include "rarlhf/pipeline/summary.h"

#include <sstream>

#include "rarlhf/eval/report.h"

namespace rarlhf {

std::string summary_table(const std::vector<SummaryRow>& rows) {
  std::ostringstream md;
  md << "| model | reward (test) | tail reward | CVaR_0.1 | perplexity | Dist-1 | Dist-2 | Dist-3 |\n"
     << "|---|---|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    const nlohmann::json& any = r.test.is_null() ? r.tail : r.test;
    const double tail_reward = r.tail.is_null() ? json_number_at(r.test, {"tail", "reward", "mean"})
                                                : json_number_at(r.tail, {"reward", "mean"});
    md << "| " << r.model << " | " << format_cell(json_number_at(r.test, {"reward", "mean"})) << " | "
       << format_cell(tail_reward) << " | " << format_cell(json_number_at(any, {"cvar", "0.1"})) << " | "
       << format_cell(json_number_at(any, {"perplexity", "mean_per_text"}), 2) << " | "
       << format_cell(json_number_at(any, {"dist", "dist1"})) << " | "
       << format_cell(json_number_at(any, {"dist", "dist2"})) << " | "
       << format_cell(json_number_at(any, {"dist", "dist3"})) << " |\n";
  }
  return md.str();
}

std::string summary_markdown(const std::string& run_name, const std::string& table, bool has_test_split,
                             const std::string& plots_dir) {
  std::ostringstream doc;
  doc << "# " << run_name << "\n\n"
      << "Reward, CVaR_0.1, perplexity (mean per text) and Dist-n from the " << (has_test_split ? "test" : "tail")
      << " split; tail reward from the tail split. Plots: " << plots_dir << "/.\n\n"
      << table;
  return doc.str();
}

}  // namespace rarlhf
