// The work of each stage of `rarlhf run`, counted from its config: see include/rarlhf/pipeline/estimate.h.
// The counts follow the trainers' loops: SftTrainer::train (src/train/sft_trainer.cpp), PPOTrainer::step
// (src/train/ppo_trainer.cpp) and run_eval (src/eval/evaluator.cpp).
#include "rarlhf/pipeline/estimate.h"

#include <algorithm>
#include <cstdio>

#include "rarlhf/common/error.h"
#include "rarlhf/rl/soft_risk.h"

namespace rarlhf {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return b > 0 ? (a + b - 1) / b : 0; }

WorkItem item(WorkKind kind, int64_t rows, int64_t tokens, double count, int64_t scored = 0, int64_t new_tokens = 0) {
  WorkItem w;
  w.kind = kind;
  w.rows = rows;
  w.tokens = tokens;
  w.scored = scored;
  w.new_tokens = new_tokens;
  w.count = count;
  return w;
}

StageWork sft_work(const std::string& stage, const Config& cfg, const DataCounts& counts) {
  const SftConfig& s = cfg.sft;
  const int64_t micro = ceil_div(counts.sft_windows, s.batch_size);
  const int64_t steps = ceil_div(counts.sft_windows, s.batch_size * s.grad_accum);
  // The held-out loss: before the first step, every eval_every steps (default: each epoch's steps)
  // and after the last (SftTrainer::train).
  const int64_t total_steps = steps * s.epochs, every = s.eval_every > 0 ? s.eval_every : std::max<int64_t>(1, steps);
  const int64_t evals = 1 + total_steps / every + (total_steps % every ? 1 : 0);
  StageWork w{stage, StageKind::kTrain, {}, std::to_string(total_steps) + " optimizer steps"};
  w.items.push_back(item(WorkKind::kLoad, 0, 0, 1));
  // Sequences are padded per micro-batch up to seq_length at most: the full length is an upper bound.
  w.items.push_back(item(WorkKind::kTrain, s.batch_size, s.seq_length, double(micro * s.epochs), s.seq_length));
  w.items.push_back(item(WorkKind::kStep, 0, 0, double(total_steps)));
  if (counts.held_out > 0) {
    w.items.push_back(item(WorkKind::kForward, s.batch_size, s.seq_length,
                           double(evals * ceil_div(counts.held_out, s.batch_size)), s.seq_length));
  }
  return w;
}

StageWork ppo_work(const std::string& stage, const Config& cfg, const DataCounts& counts) {
  const PpoConfig& p = cfg.ppo;
  const int64_t iters = p.total_iterations > 0 ? p.total_iterations : counts.prompts / p.batch_size;
  const int64_t prompt = cfg.data.prompt_tokens, fresh = cfg.generate.max_new_tokens, len = prompt + fresh;
  const int64_t minibatches = ceil_div(p.batch_size, p.mini_batch_size);
  // Each minibatch of the permutation trains on its kept episodes only (PPOTrainer::ppo_update): the
  // expected work is the kept share k(m) / B of a full minibatch.
  double kept_share = 0;
  for (int64_t m = 0; m < iters; ++m) {
    const int64_t k = cfg.risk.enabled ? soft_risk_keep_count(m, p.batch_size, iters, cfg.risk) : p.batch_size;
    kept_share += static_cast<double>(k) / static_cast<double>(p.batch_size);
  }
  StageWork w{stage, StageKind::kTrain, {}, std::to_string(iters) + " iterations"};
  // The policy, and a second model for the reference unless the policy is its own (LoRA).
  w.items.push_back(item(WorkKind::kLoad, 0, 0, cfg.lora.r > 0 && cfg.model.ref_path.empty() ? 1 : 2));
  w.items.push_back(item(WorkKind::kLoadReward, 0, 0, 1));
  w.items.push_back(item(WorkKind::kGenerate, p.batch_size, prompt, double(iters), 0, fresh));  // whole batch
  w.items.push_back(item(WorkKind::kScore, p.batch_size, prompt, double(iters), 0, fresh));
  // Old logprobs + values, and the reference's logprobs, in mini-batch chunks (forward_old).
  w.items.push_back(item(WorkKind::kForward, p.mini_batch_size, len, 2.0 * iters * minibatches, fresh));
  w.items.push_back(item(WorkKind::kTrain, p.mini_batch_size, len, double(p.ppo_epochs * minibatches) * kept_share, fresh));
  w.items.push_back(item(WorkKind::kStep, 0, 0, double(p.ppo_epochs * minibatches * iters)));
  return w;
}

}  // namespace

std::string WorkItem::key() const {
  static const char* kNames[] = {"load", "load_reward", "generate", "forward", "train", "step", "score"};
  char buf[96];
  std::snprintf(buf, sizeof buf, "%s rows=%lld tokens=%lld new=%lld scored=%lld", kNames[static_cast<int>(kind)],
                static_cast<long long>(rows), static_cast<long long>(tokens), static_cast<long long>(new_tokens),
                static_cast<long long>(scored));
  return buf;
}

StageWork training_work(const std::string& stage, const std::string& subcommand, const Config& cfg,
                        const DataCounts& counts) {
  if (subcommand == "sft") return sft_work(stage, cfg, counts);
  if (subcommand == "train") return ppo_work(stage, cfg, counts);
  throw Error("training_work: stage '" + stage + "' runs '" + subcommand + "', not sft or train");
}

StageWork eval_work(const Config& cfg, int64_t runs, bool score_prompts, const DataCounts& counts) {
  const int64_t n = cfg.eval.num_prompts > 0 ? std::min(cfg.eval.num_prompts, counts.test_prompts) : counts.test_prompts;
  const int64_t gens = n * std::max<int64_t>(1, cfg.eval.samples_per_prompt);
  const int64_t bs = std::max<int64_t>(1, cfg.generate.batch_size), full = gens / bs, rest = gens % bs;
  const int64_t prompt = cfg.data.prompt_tokens, fresh = cfg.generate.max_new_tokens;
  const double r = static_cast<double>(runs);
  StageWork w{"eval", StageKind::kEval, {}, std::to_string(runs) + " eval runs"};
  w.items.push_back(item(WorkKind::kLoad, 0, 0, r));
  w.items.push_back(item(WorkKind::kLoadReward, 0, 0, r));
  if (score_prompts && counts.test_prompts > 0) {  // in reward.batch_size chunks inside the reward model
    w.items.push_back(item(WorkKind::kScore, counts.test_prompts, prompt, 1));
  }
  // Generation in generate.batch_size chunks, each scored on its own (run_eval).
  if (full > 0) {
    w.items.push_back(item(WorkKind::kGenerate, bs, prompt, r * double(full), 0, fresh));
    w.items.push_back(item(WorkKind::kScore, bs, prompt, r * double(full), 0, fresh));
  }
  if (rest > 0) {
    w.items.push_back(item(WorkKind::kGenerate, rest, prompt, r, 0, fresh));
    w.items.push_back(item(WorkKind::kScore, rest, prompt, r, 0, fresh));
  }
  if (!cfg.eval.ppl_path.empty() && counts.ppl_texts > 0) {
    const int64_t pb = std::max<int64_t>(1, cfg.eval.ppl_batch_size);
    w.items.push_back(item(WorkKind::kForward, pb, counts.ppl_tokens, r * double(ceil_div(counts.ppl_texts, pb)),
                           counts.ppl_tokens));
  }
  return w;
}

double work_seconds(const StageWork& work, const std::map<std::string, double>& seconds) {
  double total = 0;
  for (const auto& w : work.items) {
    if (w.count <= 0) continue;
    const auto it = seconds.find(w.key());
    if (it == seconds.end()) throw Error("work_seconds: stage '" + work.stage + "': no timing for '" + w.key() + "'");
    total += w.count * it->second;
  }
  return total;
}

}  // namespace rarlhf
