// One eval run on disk and the numbers the paper's tables report. An eval run folder holds
//   generations.jsonl  one row per generation {prompt, response, prompt_score, reward, label}
//   eval.json          {"name", metrics..., extra...}
// which is what scripts/plot_eval.py reads. compute_eval_metrics gives reward, tail reward
// (reference/ra-rlhf.md §1.6 tail definition), CVaR_alpha, Dist-n, the quantile curve and
// perplexity (from per-text NLLs the caller computed with the model under test). Torch-free.
#pragma once
#include <cmath>
#include <initializer_list>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <utility>
#include <vector>

#include "rarlhf/config/config.h"
#include "rarlhf/eval/metrics.h"

namespace rarlhf {

struct GenerationRecord {
  std::string prompt;
  std::string response;
  std::string label;          // the prompt's dataset label ("" = none)
  double prompt_score = NAN;  // reward model on the prompt alone (tail split, quantile plot)
  double reward = NAN;        // reward model on the completion (reward.input)
};

struct EvalMetrics {
  int64_t generations = 0;
  int64_t prompts = 0;               // distinct prompt texts
  Summary reward;                    // paper "Reward"
  Summary prompt_score;
  TailSplit tail;                    // indices into the records
  double tail_quantile = 0;          // > 0 when the tail was chosen by quantile
  Summary tail_reward;               // paper "Tail" (n = 0 when no prompt is in the tail)
  std::vector<std::pair<double, double>> cvar;  // (alpha, CVaR_alpha of the rewards)
  DistN dist;                        // generations pooled per prompt text
  std::vector<double> quantile_curve;  // 100 points, q = 1..100%
  bool has_perplexity = false;
  Perplexity perplexity;
};

// Metrics over `records` with cfg's tail rule (tail_quantile > 0: that share of the distinct
// prompts, each with all its generations; else tail_threshold) and
// cvar_alphas. per_text_nll (optional) gives the perplexity. Throws IoError when a record has a
// non-finite prompt_score/reward, std::invalid_argument when records is empty.
EvalMetrics compute_eval_metrics(const std::vector<GenerationRecord>& records, const EvalConfig& cfg,
                                 const std::vector<TextNll>* per_text_nll = nullptr);

// eval.json content: {"name", "generations", "prompts", "reward": {...}, "prompt_score": {...},
// "tail": {"threshold", "quantile", "count", "reward": {...}}, "cvar": {"0.05": x, ...},
// "dist": {...}, "perplexity": {...} | null, "quantile_curve": [...]}.
nlohmann::json eval_metrics_json(const EvalMetrics& m, const std::string& name);

// Writes dir/generations.jsonl and dir/eval.json (atomically); `extra` (a JSON object, may be
// null) is merged into eval.json, e.g. the resolved config and build info.
void write_eval_run(const std::string& dir, const std::string& name, const std::vector<GenerationRecord>& records,
                    const EvalMetrics& metrics, const nlohmann::json& extra);

// Reads a generations.jsonl back; IoError naming file:line on a bad row.
std::vector<GenerationRecord> read_generations(const std::string& path);

// An eval run folder's eval.json (an object; "name" filled in from the folder when absent). IoError
// with the fix when it is missing or not a JSON object.
nlohmann::json read_eval_run_json(const std::string& run_dir);

// j[a][b]... as a number; NaN when absent or not a number (a split or metric that was not run).
double json_number_at(const nlohmann::json& j, std::initializer_list<const char*> keys);

// A table cell: x with `precision` decimals, "-" when x is not finite.
std::string format_cell(double x, int precision = 3);

// Runs scripts/plot_eval.py over run folders into out_dir (common/process.h: run_plot_script). The
// script is $RARLHF_PLOT_SCRIPT, else found by find_bundled_script. Plots are optional: when
// Python/matplotlib/the script is missing or fails, logs a warning and returns false.
bool plot_eval_runs(const std::vector<std::string>& run_dirs, const std::string& out_dir,
                    double tail_threshold = NAN);

// Runs scripts/plot_training.py over train/sft run folders (their metrics.jsonl) into out_png (and
// the numbers behind it into training_curves_csv(out_png)): the paper's Fig. 3/7 panels, seeds of
// one run grouped into mean +- std bands. IoError when it cannot (no script, no matplotlib).
void draw_training_curves(const std::vector<std::string>& run_dirs, const std::string& out_png,
                          const std::string& title = "", bool quiet = true);
// out_png with .csv for its .png (appended when it has none).
std::string training_curves_csv(const std::string& out_png);
// draw_training_curves, optional like plot_eval_runs: a warning and false when it cannot.
bool plot_training_curves(const std::vector<std::string>& run_dirs, const std::string& out_png);

}  // namespace rarlhf
