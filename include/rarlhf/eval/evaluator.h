// `rarlhf eval` as a library call: test prompts -> prompt scores (cached on disk per reward model)
// -> optional tail split -> generations with the paper's settings -> rewards -> the paper's table
// metrics, perplexity on human reference texts, eval.json + generations.jsonl + PNG plots
// (reference/ra-rlhf.md §1.5-1.7). Also the comparison of several finished eval runs.
// The command (src/cli/cmd_eval.cpp) only parses arguments and calls run_eval / compare_eval_runs.
#pragma once
#include <c10/core/Device.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "rarlhf/config/config.h"
#include "rarlhf/eval/report.h"
#include "rarlhf/reward/reward.h"

namespace rarlhf {

// Overrides of the config for one eval run; "" = the default named beside each field.
struct EvalRequest {
  std::string model_dir;     // "" = model.path
  std::string split;         // "" = eval.split (test | tail)
  std::string name;          // "" = run.name
  std::string out_dir;       // "" = run.out_dir + "/eval-" + split
  std::string prompt_cache;  // "" = default_prompt_cache_path(cfg, reward.describe())
};

struct EvalOutcome {
  std::string out_dir;       // where eval.json / generations.jsonl (and the PNGs) were written
  std::string split;
  std::string prompt_cache;  // the prompt-score cache file used
  int64_t test_prompts = 0;  // prompts after eval.num_prompts, before the tail split
  int64_t cached_scores = 0; // prompts whose score was found in the cache
  int64_t scored_now = 0;    // distinct prompt texts scored by the reward model in this run
  double mean_response_tokens = 0;  // generated tokens per response (up to and including EOS)
  std::vector<GenerationRecord> records;
  EvalMetrics metrics;
  nlohmann::json eval_json;  // the eval.json written
  bool plotted = false;      // PNGs written
};

// The prompt-score cache shared by every run under the same parent folder that uses the same
// reward model: <parent of run.out_dir>/prompt_scores-<8 hex of hash(reward_key)>.jsonl, e.g.
// runs/prompt_scores-1a2b3c4d.jsonl for run.out_dir = runs/imdb-rlhf. Entries are keyed by the
// prompt text, so one file serves several datasets; the reward key in the name keeps reward models
// from overwriting each other's file.
std::string default_prompt_cache_path(const Config& cfg, const std::string& reward_key);

// One eval run (see the file comment). `reward` scores both prompts and completions; the prompt
// scores go through the cache (keyed by reward.describe()). Generation is batched by
// generate.batch_size and seeded by run.seed (+ the batch's first index); the eval.num_prompts
// subset is a shuffle_select with run.seed. Perplexity: eval.ppl_path read with data.format,
// filtered by eval.ppl_label_filter, cut to eval.ppl_max_chars, batched by eval.ppl_batch_size
// ("" or no text left = skipped). Throws ConfigError / IoError with one-line messages (no
// data.test_path, bad model dir, empty tail, bad split).
EvalOutcome run_eval(const Config& cfg, const EvalRequest& req, RewardModel& reward, const at::Device& device);

// One row per eval.json: name, n, reward mean, tail reward mean (count), CVaR_0.1, perplexity
// (mean over texts, as HF evaluate), Dist-1/2/3, mean response tokens. "-" where a value is absent.
std::string eval_table(const std::vector<nlohmann::json>& evals);

// Reads <dir>/eval.json of each run (IoError naming the file when missing/invalid), writes
// out_dir/compare.json (the rows) and out_dir/compare.txt (the table), overlays the runs' plots
// into out_dir when `plots`, and returns the table.
std::string compare_eval_runs(const std::vector<std::string>& run_dirs, const std::string& out_dir, bool plots);

}  // namespace rarlhf
