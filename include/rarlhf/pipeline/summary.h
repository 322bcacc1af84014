// The compare stage's summary: one row per model with the paper's columns (reward on the test split,
// tail reward, CVaR_0.1, perplexity, Dist-n), from the eval runs' eval.json files (eval/report.h).
// Written to run.out_dir/summary.md and printed.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rarlhf {

// A model's eval.json from the test split and from the tail split (null = that split was not run).
struct SummaryRow {
  std::string model;
  nlohmann::json test;
  nlohmann::json tail;
};

// Markdown table. Tail reward is the tail split's mean reward, else the test run's tail subset;
// the other columns come from the test split when it was run, else from the tail split. "-" = absent.
std::string summary_table(const std::vector<SummaryRow>& rows);

// summary.md: a title, which split each column comes from, where the plots are, then the table.
std::string summary_markdown(const std::string& run_name, const std::string& table, bool has_test_split,
                             const std::string& plots_dir);

}  // namespace rarlhf
