// `rarlhf run`'s time estimate: the work counted for each stage kind against counts worked by hand
// from the trainers' loops, the soft-risk discount of the PPO epochs against the schedule, and the
// sum. The printout is checked on the demo-ci pipeline (demo_ci_test.cpp).
#include "rarlhf/pipeline/estimate.h"

#include <gtest/gtest.h>

#include "rarlhf/common/error.h"
#include "rarlhf/rl/soft_risk.h"

namespace rarlhf {
namespace {

const WorkItem* find(const StageWork& w, WorkKind kind, int64_t rows = -1) {
  for (const auto& i : w.items)
    if (i.kind == kind && (rows < 0 || i.rows == rows)) return &i;
  return nullptr;
}

TEST(RunEstimate, SftCountsMicroBatchesStepsAndHeldOutPasses) {
  Config cfg;
  cfg.sft.batch_size = 8;
  cfg.sft.grad_accum = 2;
  cfg.sft.epochs = 3;
  cfg.sft.seq_length = 32;
  DataCounts c;
  c.sft_windows = 100;
  c.held_out = 10;
  const StageWork w = training_work("sft", "sft", cfg, c);
  // 100 windows: ceil(100/8) = 13 micro-batches and ceil(100/16) = 7 steps per epoch, 3 epochs.
  ASSERT_NE(find(w, WorkKind::kTrain), nullptr);
  EXPECT_EQ(find(w, WorkKind::kTrain)->count, 39);
  EXPECT_EQ(find(w, WorkKind::kTrain)->rows, 8);
  EXPECT_EQ(find(w, WorkKind::kTrain)->tokens, 32);
  EXPECT_EQ(find(w, WorkKind::kStep)->count, 21);
  // Held-out loss before step 1 and after each epoch (7, 14, 21): 4 passes of ceil(10/8) = 2 batches.
  EXPECT_EQ(find(w, WorkKind::kForward)->count, 8);
  EXPECT_EQ(find(w, WorkKind::kLoad)->count, 1);
  EXPECT_EQ(w.units, "21 optimizer steps");
  // eval_every 5 over 21 steps: before, at 5, 10, 15, 20 and at 21: 6 passes.
  cfg.sft.eval_every = 5;
  EXPECT_EQ(find(training_work("sft", "sft", cfg, c), WorkKind::kForward)->count, 12);
}

// PPO: iterations of 32 episodes, 2 epochs of 2 minibatches of 16.
Config ppo_config(int64_t iterations) {
  Config cfg;
  cfg.ppo.batch_size = 32;
  cfg.ppo.mini_batch_size = 16;
  cfg.ppo.ppo_epochs = 2;
  cfg.ppo.total_iterations = iterations;
  return cfg;
}

TEST(RunEstimate, PpoCountsEveryStageOfAnIteration) {
  Config cfg = ppo_config(8);
  cfg.data.prompt_tokens = 8;
  cfg.generate.max_new_tokens = 10;
  cfg.risk.enabled = false;
  const StageWork w = training_work("rlhf", "train", cfg, {});
  EXPECT_EQ(w.units, "8 iterations");
  // The whole batch sampled at once, once per iteration: 8 prompt tokens -> 10 new.
  const WorkItem* g = find(w, WorkKind::kGenerate);
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->count, 8);
  EXPECT_EQ(g->rows, 32);
  EXPECT_EQ(g->tokens, 8);
  EXPECT_EQ(g->new_tokens, 10);
  EXPECT_EQ(find(w, WorkKind::kScore)->count, 8);
  // Policy and reference forwards over 2 chunks of 16 episodes x 18 tokens, LM head on the 10 new.
  const WorkItem* f = find(w, WorkKind::kForward);
  EXPECT_EQ(f->count, 2 * 2 * 8);
  EXPECT_EQ(f->tokens, 18);
  EXPECT_EQ(f->scored, 10);
  // 2 epochs x 2 minibatches x 8 iterations, every episode kept.
  EXPECT_EQ(find(w, WorkKind::kTrain)->count, 32);
  EXPECT_EQ(find(w, WorkKind::kStep)->count, 32);
  EXPECT_EQ(find(w, WorkKind::kLoad)->count, 2);  // policy + reference
  cfg.lora.r = 8;                                    // the policy is its own reference
  EXPECT_EQ(find(training_work("rlhf", "train", cfg, {}), WorkKind::kLoad)->count, 1);
  // total_iterations 0: one pass over the prompts, 100 / 32 = 3 iterations.
  cfg.ppo.total_iterations = 0;
  DataCounts c;
  c.prompts = 100;
  EXPECT_EQ(find(training_work("rlhf", "train", cfg, c), WorkKind::kGenerate)->count, 3);
}

TEST(RunEstimate, SoftRiskDiscountsThePpoEpochsByTheKeptShare) {
  Config cfg = ppo_config(10);
  cfg.risk.enabled = true;
  cfg.risk.alpha = 0.4;
  cfg.risk.n = 2;
  cfg.risk.rho = 0.8;
  const StageWork w = training_work("ra_rlhf", "train", cfg, {});
  double kept = 0;
  for (int64_t k : soft_risk_schedule(32, 10, cfg.risk)) kept += static_cast<double>(k) / 32.0;
  EXPECT_DOUBLE_EQ(find(w, WorkKind::kTrain)->count, 2 * 2 * kept);
  // Fewer than every episode, at least alpha of them; the optimizer still steps every minibatch.
  EXPECT_LT(find(w, WorkKind::kTrain)->count, 40);
  EXPECT_GE(find(w, WorkKind::kTrain)->count, 40 * 0.4);
  EXPECT_EQ(find(w, WorkKind::kStep)->count, 40);
}

TEST(RunEstimate, EvalCountsGenerateBatchesPerRunAndThePromptScoringOnce) {
  Config cfg;
  cfg.eval.num_prompts = 100;
  cfg.generate.batch_size = 32;
  cfg.generate.max_new_tokens = 16;
  cfg.data.prompt_tokens = 8;
  cfg.eval.ppl_path = "ref.jsonl";
  cfg.eval.ppl_batch_size = 16;
  DataCounts c;
  c.test_prompts = 200;
  c.ppl_texts = 40;
  c.ppl_tokens = 30;
  const StageWork w = eval_work(cfg, 8, true, c);
  EXPECT_EQ(w.units, "8 eval runs");
  // 100 prompts in batches of 32: 3 full batches and one of 4, in each of 8 runs.
  EXPECT_EQ(find(w, WorkKind::kGenerate, 32)->count, 24);
  EXPECT_EQ(find(w, WorkKind::kGenerate, 4)->count, 8);
  EXPECT_EQ(find(w, WorkKind::kScore, 32)->count, 24);
  // The 200 test prompts scored once for the cache the runs share.
  EXPECT_EQ(find(w, WorkKind::kScore, 200)->count, 1);
  EXPECT_EQ(find(w, WorkKind::kScore, 200)->new_tokens, 0);
  // Perplexity: ceil(40/16) = 3 batches per run.
  EXPECT_EQ(find(w, WorkKind::kForward)->count, 24);
  EXPECT_EQ(find(w, WorkKind::kLoad)->count, 8);
  EXPECT_EQ(find(eval_work(cfg, 8, false, c), WorkKind::kScore, 200), nullptr);
  // More prompts asked for than the test set has: all 200, samples_per_prompt 2 -> 400 = 12 x 32 + 16.
  cfg.eval.num_prompts = 0;
  cfg.eval.samples_per_prompt = 2;
  const StageWork all = eval_work(cfg, 1, false, c);
  EXPECT_EQ(find(all, WorkKind::kGenerate, 32)->count, 12);
  EXPECT_EQ(find(all, WorkKind::kGenerate, 16)->count, 1);
}

TEST(RunEstimate, SecondsSumCountTimesTimingAndAMissingTimingIsAnError) {
  StageWork w{"x", StageKind::kTrain, {}, ""};
  WorkItem a;
  a.kind = WorkKind::kTrain;
  a.rows = 2;
  a.count = 3;
  WorkItem b;
  b.kind = WorkKind::kStep;
  b.count = 4;
  w.items = {a, b};
  EXPECT_DOUBLE_EQ(work_seconds(w, {{a.key(), 0.5}, {b.key(), 0.25}}), 2.5);
  EXPECT_NE(a.key(), b.key());
  EXPECT_THROW(work_seconds(w, {{a.key(), 0.5}}), Error);
}

}  // namespace
}  // namespace rarlhf
