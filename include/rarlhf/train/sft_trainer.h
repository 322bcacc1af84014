// SftTrainer: causal-LM fine-tuning as the paper's SFT runs it (TRL's SFTTrainer on HF's Trainer,
// reference code examples/IMDB/training/sft_auth1.py and examples/Jigsaw/training/sft_auth2.py:
// positive IMDB / non-toxic Jigsaw texts, each truncated to its first 64 tokens (packing=False),
// lr 1e-5 decaying linearly to 0, gradient norm clipped to 1.0, GPT-2's dropout 0.1 on, large
// effective batch via gradient accumulation). Sequences are right-padded per micro-batch and the
// padding masked out of the loss. Resumable like PPOTrainer, dropout masks included (seeded per step).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include "rarlhf/config/config.h"
#include "rarlhf/dist/communicator.h"
#include "rarlhf/model/causal_lm.h"
#include "rarlhf/train/master_weights.h"

namespace torch::optim {
class AdamW;
}

namespace rarlhf {

// Concatenates docs with `eos` after each and cuts the stream into windows of `seq_length`.
std::vector<std::vector<int64_t>> pack_sequences(const std::vector<std::vector<int64_t>>& docs,
                                                 int64_t eos, int64_t seq_length);

// Each doc cut to its first `seq_length` tokens (the tokenizer's truncation=True, max_length); docs
// of fewer than 2 tokens, which predict nothing, are dropped.
std::vector<std::vector<int64_t>> truncate_sequences(const std::vector<std::vector<int64_t>>& docs,
                                                     int64_t seq_length);

// The learning rate of optimizer step `step` (0-based) of `total`: sft.lr_schedule linear is HF's
// get_linear_schedule_with_warmup (lr * step / warmup during warmup, then lr * (total - step) /
// (total - warmup)), constant is lr after the warmup.
double sft_learning_rate(const SftConfig& sft, int64_t step, int64_t total);

// Mean next-token NLL (nats/token) of `lm` on windows, batched; padding excluded.
double mean_nll(const CausalLm& lm, const std::vector<std::vector<int64_t>>& windows, int64_t batch_size,
                const c10::Device& device, bool use_custom_kernels);

class SftTrainer {
 public:
  SftTrainer(Config cfg, std::vector<std::vector<int64_t>> train_windows,
             std::vector<std::vector<int64_t>> eval_windows, Policy policy, c10::Device device,
             std::string tokenizer_dir);
  ~SftTrainer();
  // Data parallelism (call before resume()/train()): each micro-batch of sft.batch_size windows is
  // split over the ranks; each rank's summed NLL is divided by the micro-batch's global token count
  // and the gradients are summed, i.e. the single-process token mean. Rank 0 writes files.
  void set_communicator(std::shared_ptr<dist::Communicator> comm);
  bool resume();        // from run.out_dir/checkpoint; false when there is none
  bool train();         // true when finished, false when stopped by a signal (checkpointed)
  double eval_loss();   // held-out mean NLL
  int64_t steps_per_epoch() const;
  int64_t total_steps() const { return steps_per_epoch() * cfg_.sft.epochs; }
  int64_t step() const { return step_; }
  Policy& policy() { return policy_; }
  void save_checkpoint();

 private:
  at::Tensor micro_batch_loss(const std::vector<int64_t>& rows);
  double distributed_micro_batch(const std::vector<int64_t>& rows, int64_t accum);
  struct StepResult {
    double loss = 0, lr = 0, grad_norm = 0;  // grad_norm: before clipping, as HF logs it
  };
  StepResult optimizer_step(int64_t step, const std::vector<int64_t>& order);
  std::vector<int64_t> epoch_order(int64_t epoch) const;

  Config cfg_;
  std::vector<std::vector<int64_t>> train_, eval_;
  Policy policy_;
  c10::Device device_;
  std::string tokenizer_dir_;
  std::unique_ptr<MasterWeights> masters_;  // fp32 copies of bf16 weights; the optimizer steps them
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::shared_ptr<dist::Communicator> comm_;
  int64_t step_ = 0;
};

}  // namespace rarlhf
