// PPOTrainer: PPO (RLHF) and RA-RLHF (PPO on the soft-risk-selected worst episodes) for any causal
// LM with a value head. train() runs iterations m = start..M-1; each iteration is step(), the
// stages of the paper's Algorithm 1 as one call each: rollout, score, old log-probs/values,
// per-token rewards, GAE, risk selection + whitening, PPO epochs, KL control, metrics.
// Spec: the RA-RLHF paper (Sun et al., NeurIPS 2024) §4 and Algorithm 1; TRL v0.7 ppo_trainer.py.
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "rarlhf/config/config.h"
#include "rarlhf/data/prompts.h"
#include "rarlhf/dist/communicator.h"
#include "rarlhf/model/causal_lm.h"
#include "rarlhf/model/lora.h"
#include "rarlhf/reward/reward.h"
#include "rarlhf/rl/ppo.h"
#include "rarlhf/text/bpe_tokenizer.h"
#include "rarlhf/train/master_weights.h"

namespace torch::optim {
class Adam;
}

namespace rarlhf {

// One iteration's episodes, filled in by the stages of PPOTrainer::step() in order. B is this
// rank's number of episodes, P the (left-padded) prompt length, R the response length; tensors
// live on the training device, [B, R] ones are fp32 and 0 off the response tokens.
struct RolloutBatch {
  int64_t iteration = 0;
  std::vector<int64_t> prompts;  // the prompt of every episode of the global batch, in order
  dist::Shard shard;             // this rank's episodes: [shard.begin, shard.end) of the global batch
  // rollout()
  at::Tensor ids;              // [B, P+R] prompt then response tokens
  at::Tensor attention_mask;   // [B, P+R] long, 1 = real token (0: left padding, after the stop token)
  at::Tensor response_mask;    // [B, R] 1 on response tokens (the stop token included)
  int64_t prompt_len = 0;      // P
  std::vector<std::vector<int64_t>> response_text_ids;  // per episode, what the response text decodes
  // score_responses()
  at::Tensor scores;           // [B] reward-model scores
  // forward_old(): the policy and the frozen reference before the update, no grad
  at::Tensor logprobs, ref_logprobs, values;  // [B, R]
  // per_token_rewards() and compute_advantages()
  at::Tensor rewards, advantages, returns;    // [B, R]
};

// Which episodes an iteration trains on (stage 6), global over ranks.
struct EpisodeSelection {
  int64_t k = 0;                   // soft-risk batch size k(m); B_global with risk off
  RiskSelection chosen;            // keep [B_global] bool, q-hat, keep count (ties at q-hat kept)
  at::Tensor episode_returns;      // [B_global] return at the first response action (what is ranked)
  at::Tensor train_mask;           // [B, R] response_mask of this rank's kept episodes
};

// What the PPO epochs did (stage 7): means over the optimiser steps taken of the token-weighted
// minibatch statistics (TRL's *_avg records).
struct PpoUpdateStats {
  int64_t updates = 0, skipped = 0;  // skipped: minibatches over ppo.ratio_threshold (zero-loss step)
  PpoLossStats mean;                 // over updates and skipped (losses 0) minibatches, as TRL; ratio_max unused
};

// One iteration's outcome; record() is its metrics.jsonl line (TRL's key names where TRL has one).
struct IterationResult {
  int64_t iteration = 0;
  // Global over ranks, in global episode order, on the CPU.
  std::vector<int64_t> prompt_indices;  // [B_global] the prompts of the batch
  at::Tensor scores;                    // [B_global] fp32
  at::Tensor returns;                   // [B_global] return at the first response action
  at::Tensor keep;                      // [B_global] bool: the episodes PPO trained on
  at::Tensor sequence_kl;               // [B_global] sum over the response of logprob - ref logprob
  double beta = 0, beta_next = 0;       // KL coefficient used this iteration, and after its update
  double kl_kept = 0;                   // mean sequence KL over the kept episodes (what beta adapts to)
  double response_length = 0;           // mean response tokens per episode
  int64_t k = 0, world_size = 1;
  double return_threshold = 0;          // q-hat
  PpoUpdateStats ppo;
  std::vector<std::pair<std::string, double>> seconds;  // per stage, in order, then "total"
  // Per stage, in order: peak MiB while it ran (CUDA allocator peak on a GPU, else the process's peak
  // resident set, VmHWM, reset at each stage start).
  std::vector<std::pair<std::string, double>> peak_mib;

  nlohmann::json record() const;
};

class PPOTrainer {
 public:
  // `policy` is trained; `ref` is frozen (its parameters get requires_grad=false).
  PPOTrainer(Config cfg, std::vector<Prompt> prompts, Policy policy, CausalLm ref,
             std::unique_ptr<RewardModel> reward, std::shared_ptr<const Tokenizer> tokenizer, c10::Device device);
  PPOTrainer(Config cfg, std::vector<Prompt> prompts, Policy policy, CausalLm ref,
             std::unique_ptr<RewardModel> reward, BpeTokenizer tokenizer, c10::Device device)
      : PPOTrainer(std::move(cfg), std::move(prompts), std::move(policy), std::move(ref), std::move(reward),
                   std::make_shared<const BpeTokenizer>(std::move(tokenizer)), device) {}
  ~PPOTrainer();

  // Data parallelism (call before resume()/train()): this rank generates, scores and trains on
  // its contiguous shard of each global batch of ppo.batch_size episodes (which must divide by the
  // world size); risk selection, whitening, KL control and metrics are global, gradients summed
  // over ranks with each rank's loss weighted by its share of the kept tokens. Only rank 0 writes
  // metrics and checkpoints. Without a call the trainer is a world of one.
  void set_communicator(std::shared_ptr<dist::Communicator> comm);

  // A LoRA policy constructed with ref = nullptr is its own KL reference: the same base weights run
  // with `adapters` (a frozen copy of the adapters it started from; nullptr = none, the plain base)
  // instead of the adapters being trained. One copy of the base in memory.
  void set_reference_adapters(std::shared_ptr<LoraAdaptersImpl> adapters) { ref_adapters_ = std::move(adapters); }

  // Restores policy, value head, optimiser, beta and the iteration from out_dir/checkpoint.
  // Returns false when there is no checkpoint.
  bool resume();

  // Runs to M = total_iterations(); returns true when finished, false when stopped by a signal
  // (a checkpoint was written in both cases).
  bool train();

  // Iteration m: the paper's Algorithm 1, one line per stage.
  IterationResult step(int64_t m);

  int64_t total_iterations() const;
  int64_t iteration() const { return iteration_; }
  double beta() const { return kl_.value(); }
  Policy& policy() { return policy_; }

  void save_checkpoint();

 private:
  // The stages of step(), in order.
  RolloutBatch rollout(int64_t m);
  void score_responses(RolloutBatch& batch);
  void forward_old(RolloutBatch& batch);
  EpisodeSelection select_episodes(RolloutBatch& batch);
  PpoUpdateStats ppo_update(const RolloutBatch& batch, const EpisodeSelection& selection);
  IterationResult update_kl(const RolloutBatch& batch, const EpisodeSelection& selection, double beta);

  // One PPO minibatch (its rows of the global batch; row_tokens [B_global] the kept tokens per
  // episode): forward, loss, gradients summed over ranks. Returns false when its mean ratio was over
  // ppo.ratio_threshold (zero gradients, the optimiser stepped all the same); adds its statistics to `stats`.
  bool ppo_minibatch(const RolloutBatch& batch, const EpisodeSelection& selection, const at::Tensor& rows,
                     const at::Tensor& row_tokens, double minibatch_tokens, PpoUpdateStats& stats);
  std::vector<int64_t> batch_indices(int64_t m) const;
  void save_checkpoint_files(const std::string& dir);  // rank 0's part of save_checkpoint()

  Config cfg_;
  std::vector<Prompt> prompts_;
  Policy policy_;
  CausalLm ref_;                                     // nullptr: the policy's base (LoRA)
  std::shared_ptr<LoraAdaptersImpl> ref_adapters_;  // the adapters the base runs with as the reference
  std::unique_ptr<RewardModel> reward_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  c10::Device device_;
  std::unique_ptr<MasterWeights> masters_;  // fp32 copies of bf16 weights; the optimizer steps them
  std::unique_ptr<torch::optim::Adam> optimizer_;
  KlController kl_;
  std::shared_ptr<dist::Communicator> comm_;
  int64_t iteration_ = 0;
};

}  // namespace rarlhf
