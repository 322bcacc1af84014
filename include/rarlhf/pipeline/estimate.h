// The expected time of `rarlhf run`, printed before the first stage starts: each stage's work as a
// list of measurable pieces (a model load, a generate call, a forward pass, a training micro-batch,
// an optimizer step, a reward call) with how often the stage does each, from its config and the data
// counts alone (torch-free, here); the CLI (src/cli/run_estimate.cpp) times each distinct piece once on
// this machine with the run's own model and settings and sums (adding the time to read each stage's
// data). What it leaves out (plots, checkpoint writes, process start-up) is named in the printout.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "rarlhf/config/config.h"
#include "rarlhf/pipeline/stages.h"

namespace rarlhf {

enum class WorkKind {
  kLoad,      // load a policy (a child run loads its policy, and a training run its reference too)
  kLoadReward,  // build the reward model (each child run that scores does once)
  kGenerate,  // sample new_tokens tokens for `rows` prompts of `tokens` tokens (one generate call)
  kForward,   // no-grad forward of [rows, tokens] (logprobs of `scored` positions per row, values)
  kTrain,     // forward + backward of a training micro-batch [rows, tokens], loss on `scored` positions per row
  kStep,      // one optimizer step over the stage's trainable parameters
  kScore,     // one reward-model call on `rows` texts of `tokens` + `new_tokens` tokens
};

struct WorkItem {
  WorkKind kind = WorkKind::kLoad;
  int64_t rows = 0, tokens = 0, new_tokens = 0;
  int64_t scored = 0;  // kForward / kTrain: positions per row whose next-token logits are computed
  double count = 0;    // how many times the stage does it
  // Identifies what is timed: equal keys within one stage's training setup take one measurement.
  std::string key() const;
};

struct StageWork {
  std::string stage;
  StageKind kind = StageKind::kTrain;
  std::vector<WorkItem> items;
  std::string units;  // "30 iterations", "95 optimizer steps", "8 eval runs"
};

// What the stage configs need from the data (read by the caller).
struct DataCounts {
  int64_t sft_windows = 0;    // sft: training sequences (after the held-out split) of the sft stages
  int64_t held_out = 0;       // sft: held-out sequences (the eval loss)
  int64_t prompts = 0;        // train: prompts of data.train_path (one pass = prompts / batch_size)
  int64_t test_prompts = 0;   // eval: prompts of data.test_path
  int64_t ppl_texts = 0;      // eval: reference texts for perplexity (eval.ppl_path, after its filter)
  int64_t ppl_tokens = 0;     // eval: their mean length in tokens (after eval.ppl_max_chars)
};

// The work of one training stage (sft | train subcommand) with its effective config `cfg`.
StageWork training_work(const std::string& stage, const std::string& subcommand, const Config& cfg,
                        const DataCounts& counts);

// The eval stage: `runs` eval runs (a model on a split each) and, when `score_prompts`, the one
// scoring of every test prompt that the runs then share (the prompt-score cache). The tail split's
// size is not known before the prompts are scored: counted as eval.num_prompts (or every test
// prompt), an upper bound.
StageWork eval_work(const Config& cfg, int64_t runs, bool score_prompts, const DataCounts& counts);

// Seconds: sum over items of count x seconds[key()]; a key missing from `seconds` is a logic error
// (throws rarlhf::Error naming it).
double work_seconds(const StageWork& work, const std::map<std::string, double>& seconds);

}  // namespace rarlhf
