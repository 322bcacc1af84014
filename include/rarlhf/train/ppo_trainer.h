// PPOTrainer: PPO (RLHF) and RA-RLHF (PPO on the soft-risk-selected worst episodes) for a GPT-2
// policy with a value head. train() runs iterations m = start..M-1; each iteration is the numbered
// stages of step() (rollout, score, logprobs, rewards, GAE, risk selection, PPO, KL, log), each one
// call into rl/ or kernels/. Spec: reference/ra-rlhf.md §1.1-1.3.
#pragma once
#include <atomic>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "rarlhf/common/signals.h"
#include "rarlhf/config/config.h"
#include "rarlhf/dist/communicator.h"
#include "rarlhf/model/causal_lm.h"
#include "rarlhf/reward/reward.h"
#include "rarlhf/rl/ppo.h"
#include "rarlhf/text/bpe_tokenizer.h"

namespace torch::optim {
class Adam;
}

namespace rarlhf {

struct TrainPrompt {
  std::string text;            // decoded prompt (what the reward model sees before the response)
  std::vector<int64_t> ids;    // prompt token ids
};

class PPOTrainer {
 public:
  // `policy` is trained; `ref` is frozen (its parameters get requires_grad=false).
  PPOTrainer(Config cfg, std::vector<TrainPrompt> prompts, Policy policy, CausalLm ref,
             std::unique_ptr<RewardModel> reward, std::shared_ptr<const Tokenizer> tokenizer, c10::Device device);
  PPOTrainer(Config cfg, std::vector<TrainPrompt> prompts, Policy policy, CausalLm ref,
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

  // Restores policy, value head, optimiser, beta and the iteration from out_dir/checkpoint.
  // Returns false when there is no checkpoint.
  bool resume();

  // Runs to M = total_iterations(); returns true when finished, false when stopped by a signal
  // (a checkpoint was written in both cases).
  bool train();

  // One iteration m (exposed for tests): returns its metrics record.
  nlohmann::json step(int64_t m);

  int64_t total_iterations() const;
  int64_t iteration() const { return iteration_; }
  double beta() const { return kl_.value(); }
  Policy& policy() { return policy_; }
  // The keep mask [B] of the last step (tests check which episodes RA-RLHF trained on); these are
  // global (all ranks' episodes in global order) in a data-parallel run.
  const at::Tensor& last_keep() const { return last_keep_; }
  const at::Tensor& last_returns() const { return last_returns_; }
  const at::Tensor& last_scores() const { return last_scores_; }
  const std::vector<int64_t>& last_prompt_indices() const { return last_indices_; }

  void save_checkpoint();

 private:
  struct Rollout;
  void save_checkpoint_files();  // rank 0's part of save_checkpoint()
  std::vector<int64_t> batch_indices(int64_t m) const;
  // Forward over [query; response]: fp32 logprobs [B,R], values [B,R], optional entropy [B,R].
  void forward_response(const CausalLm& lm, ValueHead* vhead, const at::Tensor& ids, const at::Tensor& attn,
                        int64_t prompt_len, at::Tensor* logprobs, at::Tensor* values,
                        at::Tensor* entropy);

  Config cfg_;
  std::vector<TrainPrompt> prompts_;
  Policy policy_;
  CausalLm ref_;
  std::unique_ptr<RewardModel> reward_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  c10::Device device_;
  std::unique_ptr<torch::optim::Adam> optimizer_;
  KlController kl_;
  std::shared_ptr<dist::Communicator> comm_;
  std::vector<int64_t> order_;  // seeded permutation of the prompts (one pass = M iterations)
  int64_t iteration_ = 0;
  at::Tensor last_keep_, last_returns_, last_scores_;
  std::vector<int64_t> last_indices_;
};

}  // namespace rarlhf
