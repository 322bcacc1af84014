// PPOTrainer: the PPO / RA-RLHF loop. step() is the iteration, one call per stage; the stages
// follow it in this file. Randomness is derived from (run.seed, iteration, purpose)
// (common/random.h), never from hidden global state, so a resumed run replays exactly what an
// uninterrupted one would have done, and N data-parallel ranks (each rolling out its shard,
// episode j sampled from its own stream) replay what one process would.
#include "rarlhf/train/ppo_trainer.h"

#include <torch/torch.h>

#include <chrono>
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/metrics.h"
#include "rarlhf/common/random.h"
#include "rarlhf/generate/sampler.h"
#include "rarlhf/io/checkpoint.h"
#include "rarlhf/kernels/ops.h"
#include "rarlhf/model/lora.h"
#include "rarlhf/rl/advantages.h"
#include "rarlhf/rl/ppo_stats.h"
#include "rarlhf/rl/soft_risk.h"
#include "rarlhf/train/fused_adam.h"
#include "rarlhf/train/run_loop.h"

namespace rarlhf {

namespace {

// The purposes of the random streams of an iteration (derive_seed's second index).
enum Stream : uint64_t { kShuffle = 1, kSample = 2, kMinibatch = 3, kDropout = 900, kRiskSelection = 1000 };

double item(const at::Tensor& t) { return t.defined() ? t.to(at::kDouble).item<double>() : 0.0; }

// Wall time of each stage of an iteration, in order.
// Wall-clock seconds and peak memory (MiB) of each stage of an iteration.
class StageClock {
 public:
  explicit StageClock(c10::Device device) : device_(device) { reset_device_peak(device_); }
  void lap(const char* stage) {
    const auto now = std::chrono::steady_clock::now();
    seconds_.emplace_back(stage, std::chrono::duration<double>(now - last_).count());
    peak_mib_.emplace_back(stage, static_cast<double>(device_peak_bytes(device_)) / (1 << 20));
    reset_device_peak(device_);
    last_ = now;
  }
  std::vector<std::pair<std::string, double>> finish() {
    seconds_.emplace_back("total", std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
    return std::move(seconds_);
  }
  std::vector<std::pair<std::string, double>> peaks() { return std::move(peak_mib_); }

 private:
  c10::Device device_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_ = start_;
  std::vector<std::pair<std::string, double>> seconds_, peak_mib_;
};

struct ResponseForward {
  at::Tensor logprobs, values, entropy;  // [B, R] fp32; values/entropy only when asked for
};

// One forward of `lm` over [prompt; response]: the log-prob of each response token, and the value
// head's estimate on the states that emit them. The LM head runs on the response positions only.
ResponseForward forward_response(const CausalLm& lm, ValueHead* value_head, const at::Tensor& ids,
                                 const at::Tensor& attention_mask, int64_t prompt_len, bool entropy, bool custom) {
  const int64_t r = ids.size(1) - prompt_len;
  const at::Tensor hidden = lm->forward_hidden(ids, attention_mask).narrow(1, prompt_len - 1, r);  // [B, R, C]
  const at::Tensor targets = ids.narrow(1, prompt_len, r);                                          // [B, R]
  const at::Tensor logits = lm->lm_logits(hidden);                                                  // [B, R, V] fp32
  ResponseForward out;
  if (entropy) {
    std::tie(out.logprobs, out.entropy) = token_logprobs_entropy(logits, targets, custom);
  } else {
    out.logprobs = token_logprobs(logits, targets, custom);
  }
  if (value_head) out.values = (*value_head)->forward(hidden);
  return out;
}

}  // namespace

nlohmann::json IterationResult::record() const {
  const int64_t episodes = scores.size(0);
  const at::Tensor kept_scores = scores.index({keep});
  nlohmann::json rec = {
      {"iteration", iteration},
      {"objective/kl", item(sequence_kl.mean())},
      {"objective/kl_kept", kl_kept},
      {"objective/scores", item(scores.mean())},
      {"objective/scores_std", episodes > 1 ? item(scores.std()) : 0.0},
      {"objective/scores_min", item(scores.min())},
      {"objective/rlhf_reward", item((scores - beta * sequence_kl).mean())},
      {"loss/policy_avg", ppo.mean.pg_loss},
      {"loss/value_avg", ppo.mean.vf_loss},
      {"policy/clipfrac_avg", ppo.mean.clipfrac},
      {"policy/entropy_avg", ppo.mean.policy_entropy},
      {"policy/approxkl_avg", ppo.mean.approx_kl},
      {"val/clipfrac_avg", ppo.mean.vf_clipfrac},
      {"val/ratio", ppo.mean.ratio_mean},
      {"ppo/updates", ppo.updates},
      {"ppo/skipped_minibatches", ppo.skipped},
      {"kl/beta", beta},
      {"kl/beta_next", beta_next},
      {"risk/keep_count", keep.sum().item<int64_t>()},
      {"risk/alpha_now", static_cast<double>(k) / static_cast<double>(episodes)},
      {"risk/return_threshold", return_threshold},
      {"risk/cvar_score", item(kept_scores.mean())},
      {"returns/episode_mean", item(returns.mean())},
      {"env/response_length", response_length}};
  if (world_size > 1) rec["dist/world_size"] = world_size;
  for (const auto& [stage, s] : seconds) rec["time/" + stage] = s;
  double peak = 0;
  for (const auto& [stage, mib] : peak_mib) {
    rec["mem/" + stage + "_peak_mib"] = mib;
    peak = std::max(peak, mib);
  }
  if (!peak_mib.empty()) rec["mem/peak_mib"] = peak;
  return rec;
}

PPOTrainer::PPOTrainer(Config cfg, std::vector<Prompt> prompts, Policy policy, CausalLm ref,
                       std::unique_ptr<RewardModel> reward, std::shared_ptr<const Tokenizer> tokenizer,
                       c10::Device device)
    : cfg_(std::move(cfg)),
      prompts_(std::move(prompts)),
      policy_(std::move(policy)),
      ref_(std::move(ref)),
      reward_(std::move(reward)),
      tokenizer_(std::move(tokenizer)),
      device_(device),
      kl_(cfg_.ppo),
      comm_(std::make_shared<dist::Communicator>()) {
  const int64_t n = static_cast<int64_t>(prompts_.size());
  if (n < cfg_.ppo.batch_size) {
    throw ConfigError("data.train_path: " + std::to_string(n) + " prompts, fewer than ppo.batch_size " +
                      std::to_string(cfg_.ppo.batch_size) + "; add prompts or lower ppo.batch_size");
  }
  if (ref_) {
    for (auto& p : ref_->parameters()) p.set_requires_grad(false);
    ref_->eval();
    // A reference of another architecture shares the tokenizer but may have fewer embedding rows
    // (the paper's GPT-2 reference for GPT-J, whose matrix is padded to 50,400): the policy then never
    // samples an id the reference cannot score.
    const int64_t v_ref = ref_->config().vocab_size, v_policy = policy_.lm->config().vocab_size;
    if (v_ref < v_policy) {
      cfg_.generate.vocab_limit = v_ref;
      RARLHF_LOG_INFO("train: the reference has {} token ids, the policy {}: ids {}..{} are not sampled", v_ref,
                      v_policy, v_ref, v_policy - 1);
    }
  } else if (!policy_.lm->lora()) {
    throw Error("PPOTrainer: no reference model (only a LoRA policy may be its own reference)");
  }
  if (const auto& lora = policy_.lm->lora(); lora && lora->settings().dropout > 0 && !cfg_.ppo.dropout) {
    throw ConfigError("lora.dropout: " + std::to_string(lora->settings().dropout) +
                      " applies in training mode only, and train runs the policy in eval mode unless ppo.dropout=true "
                      "(as TRL v0.7 does); set ppo.dropout=true or lora.dropout=0");
  }
  if (cfg_.ppo.dropout) {
    // TRL v0.7 never puts the policy in eval mode: rollouts, the old log-probs and the updates all
    // run with dropout (the value head's 0.1 is TRL ValueHead's summary_dropout_prob default).
    policy_.lm->set_dropout(policy_.lm->config_dropout(), "ppo.dropout");
    policy_.value_head->dropout = 0.1;
  }
  policy_.lm->train(cfg_.ppo.dropout);
  policy_.value_head->train(cfg_.ppo.dropout);
  refuse_float16_training(*policy_.lm);
  policy_.lm->set_gradient_checkpointing(cfg_.model.gradient_checkpointing);
  std::vector<at::Tensor> params = lm_trainable_parameters(policy_);
  for (auto& p : policy_.value_head->parameters()) params.push_back(p);
  masters_ = std::make_unique<MasterWeights>(params);
  if (masters_->any()) RARLHF_LOG_INFO("train: {} weight tensors in bfloat16, stepped as fp32 masters", masters_->count());
  optimizer_ = std::make_unique<FusedAdam>(masters_->optimizer_params(), torch::optim::AdamOptions(cfg_.ppo.learning_rate));
}

PPOTrainer::~PPOTrainer() = default;

void PPOTrainer::set_communicator(std::shared_ptr<dist::Communicator> comm) {
  if (!comm) throw Error("PPOTrainer::set_communicator: null communicator");
  if (cfg_.ppo.batch_size % comm->world_size() != 0) {
    throw ConfigError("ppo.batch_size: " + std::to_string(cfg_.ppo.batch_size) +
                      " episodes cannot be split over " + std::to_string(comm->world_size()) +
                      " ranks; make the global batch a multiple of WORLD_SIZE");
  }
  comm_ = std::move(comm);
}

int64_t PPOTrainer::total_iterations() const {
  if (cfg_.ppo.total_iterations > 0) return cfg_.ppo.total_iterations;
  return static_cast<int64_t>(prompts_.size()) / cfg_.ppo.batch_size;  // one pass (paper)
}

IterationResult PPOTrainer::step(int64_t m) {
  StageClock clock(device_);
  const double beta = kl_.value();
  // ppo.dropout: masks from a per-iteration seed, so a resumed run draws what an uninterrupted one would.
  if (cfg_.ppo.dropout) torch::manual_seed(derive_seed(cfg_.run.seed, m, kDropout));
  // 1. Rollout: sample responses from the current policy (KV cache, the paper's generation settings).
  RolloutBatch batch = rollout(m);
  clock.lap("rollout");
  // 2. Score prompt + response (or the response alone) with the reward model.
  score_responses(batch);
  clock.lap("score");
  // 3. Token log-probs of the policy and the frozen reference, and values, before the update.
  forward_old(batch);
  clock.lap("forward");
  // 4. Per-token rewards: -beta * KL on every response token, the score on the last one.
  batch.rewards = per_token_rewards(batch.scores, batch.logprobs, batch.ref_logprobs, batch.response_mask, beta,
                                    cfg_.ppo.kl_penalty);
  // 5. GAE(gamma, lambda): advantages and returns.
  std::tie(batch.advantages, batch.returns) =
      compute_advantages(batch.rewards, batch.values, batch.response_mask, cfg_.ppo);
  // 6. Soft-risk selection of the episodes to train on (all of them with risk off); whitening.
  const EpisodeSelection selection = select_episodes(batch);
  clock.lap("advantage");
  // 7. PPO epochs over the kept tokens.
  const PpoUpdateStats ppo = ppo_update(batch, selection);
  clock.lap("optimize");
  // 8. Adaptive KL control, and the iteration's metrics.
  IterationResult result = update_kl(batch, selection, beta);
  result.ppo = ppo;
  result.seconds = clock.finish();
  result.peak_mib = clock.peaks();
  return result;
}

// Episode j of iteration m is prompt order_e[(m*B + j) mod N] where order_e is a seeded
// Fisher-Yates permutation for pass e = (m*B + j) / N.
std::vector<int64_t> PPOTrainer::batch_indices(int64_t m) const {
  const int64_t n = static_cast<int64_t>(prompts_.size());
  const int64_t b = cfg_.ppo.batch_size;
  std::vector<int64_t> out;
  out.reserve(b);
  int64_t cached_epoch = -1;
  std::vector<int64_t> perm;
  for (int64_t j = 0; j < b; ++j) {
    const int64_t g = m * b + j, epoch = g / n;
    if (epoch != cached_epoch) {
      perm.resize(n);
      for (int64_t i = 0; i < n; ++i) perm[i] = i;
      uint64_t s = derive_seed(cfg_.run.seed, epoch, kShuffle);
      for (int64_t i = n - 1; i > 0; --i) {
        s = derive_seed(s, i, kShuffle);
        std::swap(perm[i], perm[s % static_cast<uint64_t>(i + 1)]);
      }
      cached_epoch = epoch;
    }
    out.push_back(perm[g % n]);
  }
  return out;
}

RolloutBatch PPOTrainer::rollout(int64_t m) {
  RolloutBatch batch;
  batch.iteration = m;
  batch.prompts = batch_indices(m);
  batch.shard = dist::shard_of(static_cast<int64_t>(batch.prompts.size()), comm_->rank(), comm_->world_size());
  std::vector<std::vector<int64_t>> queries;
  // Episode g of the global batch draws from stream (seed, m, g): the same samples on any number of ranks.
  std::vector<uint64_t> row_seeds;
  const uint64_t iteration_seed = derive_seed(cfg_.run.seed, m, kSample);
  for (int64_t g = batch.shard.begin; g < batch.shard.end; ++g) {
    queries.push_back(prompts_[batch.prompts[g]].ids);
    row_seeds.push_back(derive_seed(iteration_seed, g, kSample));
  }
  GenerationResult gen;
  {
    torch::NoGradGuard no_grad;
    gen = generate(policy_.lm, queries, cfg_.generate, tokenizer_->eos_id(), row_seeds);
  }
  batch.prompt_len = gen.query_ids.size(1);
  batch.ids = torch::cat({gen.query_ids, gen.response_ids}, 1).to(device_);
  batch.attention_mask =
      torch::cat({gen.query_mask.to(at::kLong), gen.response_mask.to(at::kLong)}, 1).to(device_);
  batch.response_mask = gen.response_mask.to(device_).to(at::kFloat);
  batch.response_text_ids = response_tokens(gen, /*with_stop=*/false);
  return batch;
}

void PPOTrainer::score_responses(RolloutBatch& batch) {
  std::vector<std::string> texts;
  for (int64_t j = 0; j < batch.shard.size(); ++j) {
    const std::string response = tokenizer_->decode(batch.response_text_ids[j]);
    const Prompt& prompt = prompts_[batch.prompts[batch.shard.begin + j]];
    texts.push_back(cfg_.reward.input == choice::RewardInput::kResponse ? response : prompt.text + response);
  }
  const std::vector<double> scores = reward_->score(texts);
  if (scores.size() != texts.size()) {
    throw Error("reward model returned " + std::to_string(scores.size()) + " scores for " +
                std::to_string(texts.size()) + " texts");
  }
  for (size_t j = 0; j < scores.size(); ++j) {
    if (!std::isfinite(scores[j])) {
      throw Error("iteration " + std::to_string(batch.iteration) + ": the reward model (" + reward_->describe() +
                  ") returned " + std::to_string(scores[j]) + " for episode " + std::to_string(j) +
                  "; stopping (the last checkpoint is intact)");
    }
  }
  batch.scores = torch::tensor(scores, torch::kDouble).to(at::kFloat).to(device_);
}

void PPOTrainer::forward_old(RolloutBatch& batch) {
  torch::NoGradGuard no_grad;
  const int64_t episodes = batch.shard.size(), chunk = cfg_.ppo.mini_batch_size;
  const bool custom = cfg_.ppo.custom_kernels;
  std::vector<at::Tensor> logprobs, values, ref_logprobs;
  for (int64_t s = 0; s < episodes; s += chunk) {
    const int64_t len = std::min(chunk, episodes - s);
    const at::Tensor ids = batch.ids.narrow(0, s, len), attn = batch.attention_mask.narrow(0, s, len);
    ResponseForward policy = forward_response(policy_.lm, &policy_.value_head, ids, attn, batch.prompt_len, false, custom);
    ResponseForward ref;
    if (ref_) {
      ref = forward_response(ref_, nullptr, ids, attn, batch.prompt_len, false, custom);
    } else {
      ScopedAdapters as_reference(*policy_.lm, ref_adapters_);
      ref = forward_response(policy_.lm, nullptr, ids, attn, batch.prompt_len, false, custom);
    }
    logprobs.push_back(policy.logprobs);
    values.push_back(policy.values);
    ref_logprobs.push_back(ref.logprobs);
  }
  batch.logprobs = torch::cat(logprobs, 0) * batch.response_mask;
  batch.values = torch::cat(values, 0) * batch.response_mask;
  batch.ref_logprobs = torch::cat(ref_logprobs, 0) * batch.response_mask;
}

// Keeps the k(m) episodes with the lowest KL-penalised return at the first response action (the
// paper's soft-risk schedule, Eq. 8-10); global: q-hat is the k-th smallest return over every
// rank's episodes. Whitening then runs over the kept episodes' tokens only.
EpisodeSelection PPOTrainer::select_episodes(RolloutBatch& batch) {
  const int64_t m = batch.iteration, episodes = static_cast<int64_t>(batch.prompts.size());
  EpisodeSelection sel;
  sel.episode_returns = comm_->all_gather(batch.returns.select(1, 0).contiguous());
  sel.k = cfg_.risk.enabled ? soft_risk_keep_count(m, episodes, total_iterations(), cfg_.risk) : episodes;
  // risk.selection=random keeps the same k(m) episodes drawn at random: the control that separates
  // "trains on the worst episodes" from "takes its steps on fewer episodes".
  sel.chosen = cfg_.risk.selection == choice::RiskSelection::kRandom
                   ? select_random_episodes(sel.episode_returns, sel.k, derive_seed(cfg_.run.seed, m, kRiskSelection))
                   : select_lowest_returns(sel.episode_returns, sel.k);
  const at::Tensor keep = sel.chosen.keep.to(device_).to(at::kFloat).narrow(0, batch.shard.begin, batch.shard.size());
  sel.train_mask = batch.response_mask * keep.unsqueeze(1);
  if (cfg_.ppo.whiten_advantages) {
    batch.advantages = whiten_advantages(*comm_, batch.advantages, sel.train_mask, cfg_.ppo.custom_kernels);
  }
  return sel;
}

// ppo.ppo_epochs passes over the global batch in minibatches of ppo.mini_batch_size episodes, in a
// seeded order per epoch. Every rank knows every minibatch's global kept-token count up front, so
// one collective per minibatch (gradients and statistics together) is all the update needs.
PpoUpdateStats PPOTrainer::ppo_update(const RolloutBatch& batch, const EpisodeSelection& selection) {
  const int64_t episodes = static_cast<int64_t>(batch.prompts.size()), mbs = cfg_.ppo.mini_batch_size;
  const at::Tensor row_tokens = comm_->all_gather(selection.train_mask.sum(1).to(at::kDouble).to(at::kCPU));
  PpoUpdateStats stats;
  for (int64_t epoch = 0; epoch < cfg_.ppo.ppo_epochs; ++epoch) {
    at::Generator g = at::detail::createCPUGenerator(derive_seed(cfg_.run.seed, batch.iteration, kMinibatch + epoch));
    const at::Tensor order = torch::randperm(episodes, g, torch::TensorOptions().dtype(at::kLong));
    for (int64_t s = 0; s < episodes; s += mbs) {
      const at::Tensor rows = order.narrow(0, s, std::min(mbs, episodes - s));
      const at::Tensor tokens = row_tokens.index({rows});
      if (tokens.sum().item<double>() <= 0) continue;  // every episode of this minibatch was dropped
      ppo_minibatch(batch, selection, rows.index({tokens > 0}), row_tokens, tokens.sum().item<double>(), stats);
    }
  }
  stats.mean = scaled(stats.mean, 1.0 / static_cast<double>(std::max<int64_t>(1, stats.updates + stats.skipped)));
  return stats;
}

// `rows`: the minibatch's episodes (global indices) that have a kept token; each rank trains on its
// own, its loss weighted by its share of the minibatch's kept tokens, and the gradients are
// summed: the gradient of the single-process masked mean. Skip decisions use the global
// statistics, so the ranks agree.
bool PPOTrainer::ppo_minibatch(const RolloutBatch& batch, const EpisodeSelection& selection, const at::Tensor& rows,
                               const at::Tensor& row_tokens, double minibatch_tokens, PpoUpdateStats& stats) {
  const dist::Shard& shard = batch.shard;
  const at::Tensor mine_global = rows.index({(rows >= shard.begin).logical_and(rows < shard.end)});
  optimizer_->zero_grad();
  WeightedLossStats sums;
  if (mine_global.numel() > 0) {
    const at::Tensor r = (mine_global - shard.begin).to(device_);
    const at::Tensor mask = selection.train_mask.index({r});
    const double my_tokens = row_tokens.index({mine_global}).sum().item<double>();
    ResponseForward now = forward_response(policy_.lm, &policy_.value_head, batch.ids.index({r}),
                                           batch.attention_mask.index({r}), batch.prompt_len, true,
                                           cfg_.ppo.custom_kernels);
    PpoLoss out = ppo_loss(now.logprobs, batch.logprobs.index({r}), now.values, batch.values.index({r}),
                           batch.advantages.index({r}), batch.returns.index({r}), mask, cfg_.ppo, now.entropy);
    (comm_->distributed() ? out.loss * (my_tokens / minibatch_tokens) : out.loss).backward();
    sums = WeightedLossStats(out.stats, item(out.loss), my_tokens);
  }
  masters_->gradients_to_masters();
  auto& params = optimizer_->param_groups()[0].params();
  dist::all_reduce_gradients(*comm_, params, &sums.sums());
  const PpoLossStats mean = sums.mean_stats(minibatch_tokens);
  if (cfg_.ppo.ratio_threshold > 0 && mean.ratio_mean > cfg_.ppo.ratio_threshold) {
    // TRL v0.7 (trl/trainer/ppo_trainer.py, loss()): "average ratio of batch exceeds threshold,
    // skipping batch" multiplies the loss by 0 and still steps the optimiser: zero gradients, so
    // Adam's moments decay, its step count advances and the momentum still moves the weights.
    // Its statistics still count, with the zeroed losses, as TRL records them.
    step_with_zero_gradients(*optimizer_);
    masters_->masters_to_params();
    ++stats.skipped;
    PpoLossStats zeroed = mean;
    zeroed.pg_loss = zeroed.vf_loss = 0;
    accumulate(stats.mean, zeroed);
    return false;
  }
  if (!std::isfinite(sums.mean_loss(minibatch_tokens))) {
    throw Error("iteration " + std::to_string(batch.iteration) +
                ": PPO loss is NaN/inf; stopping (the last checkpoint is intact). Try a lower "
                "ppo.learning_rate or model.dtype=float32");
  }
  if (cfg_.ppo.max_grad_norm > 0) torch::nn::utils::clip_grad_norm_(params, cfg_.ppo.max_grad_norm);
  optimizer_->step();
  masters_->masters_to_params();
  ++stats.updates;
  accumulate(stats.mean, mean);
  return true;
}

// The paper (Eq. 12) adapts beta with the KL averaged over the kept episodes; the reference code
// dilutes it with the dropped rows counted as zero. Every rank's sequence KLs are gathered, so all
// ranks update beta identically.
IterationResult PPOTrainer::update_kl(const RolloutBatch& batch, const EpisodeSelection& selection, double beta) {
  IterationResult r;
  r.iteration = batch.iteration;
  r.prompt_indices = batch.prompts;
  r.sequence_kl = comm_->all_gather(((batch.logprobs - batch.ref_logprobs) * batch.response_mask).sum(1).contiguous());
  const at::Tensor keep = selection.chosen.keep.to(r.sequence_kl.device()).to(at::kFloat);
  r.kl_kept = item((r.sequence_kl * keep).sum() / keep.sum().clamp_min(1));
  const int64_t episodes = static_cast<int64_t>(batch.prompts.size());
  kl_.update(r.kl_kept, episodes);
  const double kl_all = item(r.sequence_kl.mean());
  if (kl_all < -1.0) {
    RARLHF_LOG_WARN("iteration {}: mean KL {:.3f} < -1: the policy samples tokens the reference finds "
                    "likelier than it does; check generation settings (top_k=0, top_p=1, temperature=1)",
                    batch.iteration, kl_all);
  }
  r.sequence_kl = r.sequence_kl.to(at::kCPU);
  r.scores = comm_->all_gather(batch.scores).to(at::kCPU);
  r.returns = selection.episode_returns.to(at::kCPU);
  r.keep = selection.chosen.keep.to(at::kCPU);
  r.beta = beta;
  r.beta_next = kl_.value();
  r.response_length = comm_->sum(batch.response_mask.sum().item<double>()) / static_cast<double>(episodes);
  r.k = selection.k;
  r.return_threshold = selection.chosen.threshold;
  r.world_size = comm_->world_size();
  return r;
}

void PPOTrainer::save_checkpoint() {
  // Replicas are identical: rank 0 writes; the others wait so that no rank exits (or reads the
  // checkpoint on a later resume) before it is complete.
  if (comm_->is_main()) {
    write_checkpoint(cfg_.run.out_dir, [this](const std::string& dir) { save_checkpoint_files(dir); });
    RARLHF_LOG_INFO("checkpoint: {}/checkpoint (iteration {})", cfg_.run.out_dir, iteration_);
  }
  comm_->barrier();
}

void PPOTrainer::save_checkpoint_files(const std::string& dir) {
  save_policy(policy_, dir + "/policy", cfg_.tokenizer_dir());
  save_optimizer(*optimizer_, dir + "/optimizer.pt");
  if (masters_->any()) save_safetensors(dir + "/master_weights.safetensors", masters_->named_masters());
  const nlohmann::json state = {
      {"iteration", iteration_},
      {"beta", kl_.value()},
      {"seed", cfg_.run.seed},
      {"batch_size", cfg_.ppo.batch_size},
      {"total_iterations", total_iterations()},
      {"num_prompts", prompts_.size()},
      // All sampling/shuffling streams are derived from (seed, iteration): no RNG state to store.
      {"rng", "derived from run.seed and the iteration"}};
  write_file_atomic(dir + "/trainer_state.json", state.dump(2) + "\n");
}

bool PPOTrainer::resume() {
  const std::string dir = find_checkpoint(cfg_.run.out_dir);
  if (dir.empty()) return false;
  const nlohmann::json state = read_trainer_state(dir);
  expect_same_setting(state, dir, "seed", cfg_.run.seed, "run.seed");
  expect_same_setting(state, dir, "batch_size", cfg_.ppo.batch_size, "ppo.batch_size");
  expect_same_setting(state, dir, "num_prompts", static_cast<int64_t>(prompts_.size()), "the number of prompts");
  const int64_t iteration = state_int(state, dir, "iteration", 0, total_iterations());
  const double beta = state_double(state, dir, "beta");
  if (policy_.lm->lora()) {
    load_adapter_checkpoint(policy_, dir + "/policy");
  } else {
    Policy saved = load_policy(dir + "/policy", cfg_.model.dtype, device_);
    copy_parameters(policy_.lm->parameters(), saved.lm->parameters(), dir + "/policy");
    copy_parameters(policy_.value_head->parameters(), saved.value_head->parameters(), dir + "/policy (value head)");
  }
  load_master_weights(*masters_, dir);
  load_optimizer(*optimizer_, dir + "/optimizer.pt");
  kl_.set_value(beta);
  iteration_ = iteration;
  RARLHF_LOG_INFO("resumed from {} at iteration {} (beta {:.4f})", dir, iteration_, kl_.value());
  return true;
}

bool PPOTrainer::train() {
  // Identical replicas from here on: rank 0's weights (a fresh value head is random per process).
  // (The masters: a resumed bf16 run's fp32 masters are finer than the weights they round to.)
  dist::broadcast_parameters(*comm_, masters_->optimizer_params());
  masters_->masters_to_params();
  std::unique_ptr<MetricsWriter> metrics;
  if (comm_->is_main()) {
    metrics = std::make_unique<MetricsWriter>(cfg_.run.out_dir + "/metrics.jsonl", iteration_, "iteration",
                                              cfg_.logging.tensorboard ? cfg_.run.out_dir : "");
  }
  RARLHF_LOG_INFO("train: {} iterations of {} episodes ({}), risk {}", total_iterations(), cfg_.ppo.batch_size,
                  cfg_.risk.enabled ? "RA-RLHF" : "RLHF", cfg_.risk.enabled ? "on" : "off");
  TrainingLoop loop;
  loop.name = "train";
  loop.unit = "iteration";
  loop.label = "it";
  loop.first = iteration_;
  loop.total = total_iterations();
  loop.run_unit = [&](int64_t m) {
    const nlohmann::json rec = step(m).record();
    if (metrics) metrics->write(rec);
    iteration_ = m + 1;
    char text[160];
    std::snprintf(text, sizeof text, "score %.3f  kl %.3f  beta %.4f  keep %lld", rec["objective/scores"].get<double>(),
                  rec["objective/kl"].get<double>(), rec["kl/beta"].get<double>(),
                  static_cast<long long>(rec["risk/keep_count"].get<int64_t>()));
    return UnitReport{text, true};
  };
  loop.save_checkpoint = [&] {
    if (metrics) metrics->sync();  // the log is durable up to the checkpoint it goes with
    save_checkpoint();
  };
  loop.save_final = [this] { save_policy(policy_, cfg_.run.out_dir + "/policy", cfg_.tokenizer_dir()); };
  return run_training_loop(cfg_, *comm_, loop);
}

}  // namespace rarlhf
