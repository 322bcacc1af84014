// PPOTrainer: the PPO / RA-RLHF loop. Each iteration is the numbered stages in step(); every
// stage is one call into generate/, reward/, kernels/ or rl/. Randomness is derived from
// (run.seed, iteration, purpose), never from hidden global state, so a resumed run replays exactly
// what an uninterrupted one would have done, and N data-parallel ranks (each rolling out its shard,
// episode j sampled from its own stream) replay what one process would. Spec: ra-rlhf.md §1.1-1.3.
#include "rarlhf/train/ppo_trainer.h"

#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/metrics.h"
#include "rarlhf/generate/sampler.h"
#include "rarlhf/kernels/ops.h"
#include "rarlhf/rl/soft_risk.h"
#include "rarlhf/train/fused_adam.h"

namespace rarlhf {
namespace fs = std::filesystem;

namespace {

// splitmix64 over (seed, a, b): independent, reproducible streams per iteration and purpose.
uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b) {
  uint64_t z = seed ^ (a * 0x9E3779B97F4A7C15ULL) ^ (b * 0xC2B2AE3D27D4EB4FULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

enum Stream : uint64_t { kShuffle = 1, kSample = 2, kMinibatch = 3 };

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double item(const at::Tensor& t) { return t.defined() ? t.to(at::kDouble).item<double>() : 0.0; }

std::string fmt_duration(double s) {
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof buf, "%dh%02dm", int(s / 3600), int(std::fmod(s, 3600) / 60));
  } else {
    std::snprintf(buf, sizeof buf, "%dm%02ds", int(s / 60), int(std::fmod(s, 60)));
  }
  return buf;
}

// x whitened with the mean and unbiased variance over mask != 0 across all ranks (masked_whiten's
// formula, TRL's masked_var: var = sum(m (x - mean)^2) / (n - 1)). One rank: masked_whiten itself.
at::Tensor global_masked_whiten(dist::Communicator& comm, const at::Tensor& x, const at::Tensor& mask,
                                bool custom) {
  if (!comm.distributed()) return masked_whiten(x, mask, true, custom);
  at::Tensor m = mask.to(at::kDouble), xd = x.to(at::kDouble);
  at::Tensor s = torch::stack({m.sum(), (xd * m).sum()});  // [2]: n, sum x
  comm.all_reduce_sum(s);
  const double n = s[0].item<double>();
  if (n <= 1) throw Error("advantage whitening needs more than one kept token over all ranks");
  const double mean = s[1].item<double>() / n;
  at::Tensor ss = ((xd - mean).pow(2) * m).sum().reshape({1});
  comm.all_reduce_sum(ss);
  const double var = ss.item<double>() / (n - 1);
  return ((x - mean) * (1.0 / std::sqrt(var + 1e-8))).to(x.scalar_type());
}

}  // namespace

PPOTrainer::PPOTrainer(Config cfg, std::vector<TrainPrompt> prompts, Policy policy, CausalLm ref,
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
  for (auto& p : ref_->parameters()) p.set_requires_grad(false);
  ref_->eval();
  std::vector<at::Tensor> params = policy_.lm->parameters();
  for (auto& p : policy_.value_head->parameters()) params.push_back(p);
  optimizer_ = std::make_unique<FusedAdam>(
      params, torch::optim::AdamOptions(cfg_.ppo.learning_rate));
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
    int64_t g = m * b + j;
    int64_t epoch = g / n;
    if (epoch != cached_epoch) {
      perm.resize(n);
      for (int64_t i = 0; i < n; ++i) perm[i] = i;
      uint64_t s = mix_seed(cfg_.run.seed, epoch, kShuffle);
      for (int64_t i = n - 1; i > 0; --i) {
        s = mix_seed(s, i, kShuffle);
        std::swap(perm[i], perm[s % static_cast<uint64_t>(i + 1)]);
      }
      cached_epoch = epoch;
    }
    out.push_back(perm[g % n]);
  }
  return out;
}

void PPOTrainer::forward_response(const CausalLm& lm, ValueHead* vhead, const at::Tensor& ids,
                                  const at::Tensor& attn, int64_t prompt_len, at::Tensor* logprobs,
                                  at::Tensor* values, at::Tensor* entropy) {
  const int64_t r = ids.size(1) - prompt_len;
  at::Tensor hidden = lm->forward_hidden(ids, attn);          // [B, P+R, C]
  at::Tensor h = hidden.narrow(1, prompt_len - 1, r);         // [B, R, C]: states that emit response tokens
  at::Tensor targets = ids.narrow(1, prompt_len, r);          // [B, R]
  at::Tensor logits = lm->lm_logits(h);                       // [B, R, V] fp32, response positions only
  const bool custom = cfg_.ppo.custom_kernels;
  if (entropy) {
    auto le = token_logprobs_entropy(logits, targets, custom);
    *logprobs = le.first;
    *entropy = le.second;
  } else {
    *logprobs = token_logprobs(logits, targets, custom);
  }
  if (values) *values = (*vhead)->forward(h);                 // [B, R] fp32
}

nlohmann::json PPOTrainer::step(int64_t m) {
  using clock = std::chrono::steady_clock;
  const auto t_start = clock::now();
  const PpoConfig& pc = cfg_.ppo;
  const int64_t M = total_iterations();
  // This rank's episodes: global indices [shard.begin, shard.end) of the batch; B is the local count.
  const std::vector<int64_t> global_idx = batch_indices(m);
  const int64_t B_global = static_cast<int64_t>(global_idx.size());
  const dist::Shard shard = dist::shard_of(B_global, comm_->rank(), comm_->world_size());
  const std::vector<int64_t> idx(global_idx.begin() + shard.begin, global_idx.begin() + shard.end);
  const int64_t B = static_cast<int64_t>(idx.size());
  const double beta = kl_.value();
  nlohmann::json rec;
  rec["iteration"] = m;

  // 1. Rollout: sample responses from the current policy (KV cache, paper generation settings).
  auto t0 = clock::now();
  std::vector<std::vector<int64_t>> queries;
  queries.reserve(B);
  for (int64_t i : idx) queries.push_back(prompts_[i].ids);
  // Episode g of the global batch draws from stream (seed, m, g): the same samples on any number of ranks.
  std::vector<uint64_t> row_seeds;
  row_seeds.reserve(B);
  const uint64_t iter_seed = mix_seed(cfg_.run.seed, m, kSample);
  for (int64_t j = 0; j < B; ++j) row_seeds.push_back(mix_seed(iter_seed, shard.begin + j, kSample));
  GenerationResult gen;
  {
    torch::NoGradGuard no_grad;
    gen = generate(policy_.lm, queries, cfg_.generate, tokenizer_->eos_id(), row_seeds);
  }
  rec["time/rollout"] = seconds_since(t0);

  // 2. Score prompt+response (or the response alone) with the reward model.
  t0 = clock::now();
  at::Tensor resp_cpu = gen.response_ids.to(at::kCPU);
  at::Tensor rmask_cpu = gen.response_mask.to(at::kCPU).to(at::kLong);
  std::vector<std::string> texts;
  texts.reserve(B);
  double total_len = 0;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> ids;
    auto row = resp_cpu[b];
    auto mrow = rmask_cpu[b];
    for (int64_t t = 0; t < row.size(0); ++t) {
      if (mrow[t].item<int64_t>() == 0) break;
      int64_t id = row[t].item<int64_t>();
      if (id == tokenizer_->eos_id()) break;  // the EOS token itself is not text
      ids.push_back(id);
    }
    total_len += static_cast<double>(mrow.sum().item<int64_t>());
    std::string resp = tokenizer_->decode(ids);
    texts.push_back(cfg_.reward.input == "response" ? resp : prompts_[idx[b]].text + resp);
  }
  std::vector<double> score_vec = reward_->score(texts);
  if (static_cast<int64_t>(score_vec.size()) != B) {
    throw Error("reward model returned " + std::to_string(score_vec.size()) + " scores for " +
                std::to_string(B) + " texts");
  }
  for (int64_t b = 0; b < B; ++b) {
    if (!std::isfinite(score_vec[b])) {
      throw Error("iteration " + std::to_string(m) + ": the reward model (" + reward_->describe() +
                  ") returned " + std::to_string(score_vec[b]) + " for episode " + std::to_string(b) +
                  "; stopping (the last checkpoint is intact)");
    }
  }
  at::Tensor scores = torch::tensor(score_vec, torch::kDouble).to(at::kFloat).to(device_);  // [B]
  rec["time/score"] = seconds_since(t0);

  // 3. Token logprobs of the policy and the frozen reference, and values (no grad).
  t0 = clock::now();
  const int64_t P = gen.query_ids.size(1);
  at::Tensor ids = torch::cat({gen.query_ids, gen.response_ids}, 1).to(device_);          // [B, P+R]
  at::Tensor attn = torch::cat({gen.query_mask.to(at::kLong), gen.response_mask.to(at::kLong)}, 1)
                        .to(device_);                                                   // [B, P+R]
  at::Tensor mask = gen.response_mask.to(device_).to(at::kFloat);                       // [B, R]
  const int64_t chunk = pc.mini_batch_size;
  std::vector<at::Tensor> lp_parts, v_parts, ref_parts;
  {
    torch::NoGradGuard no_grad;
    for (int64_t s = 0; s < B; s += chunk) {
      int64_t len = std::min(chunk, B - s);
      at::Tensor lp, v, rlp;
      forward_response(policy_.lm, &policy_.value_head, ids.narrow(0, s, len), attn.narrow(0, s, len),
                       P, &lp, &v, nullptr);
      forward_response(ref_, nullptr, ids.narrow(0, s, len), attn.narrow(0, s, len), P, &rlp,
                       nullptr, nullptr);
      lp_parts.push_back(lp);
      v_parts.push_back(v);
      ref_parts.push_back(rlp);
    }
  }
  at::Tensor old_logprobs = torch::cat(lp_parts, 0) * mask;  // [B, R]
  at::Tensor old_values = torch::cat(v_parts, 0) * mask;     // [B, R]
  at::Tensor ref_logprobs = torch::cat(ref_parts, 0) * mask; // [B, R]
  rec["time/forward"] = seconds_since(t0);
  t0 = clock::now();

  // 4. Per-token rewards: -beta * KL on every response token, the score on the last one.
  at::Tensor rewards = per_token_rewards(scores, old_logprobs, ref_logprobs, mask, beta, pc.kl_penalty);

  // 5. GAE(gamma, lambda) -> advantages, returns.
  auto gae = gae_scan(rewards, old_values, mask, pc.gamma, pc.lam, pc.custom_kernels);
  at::Tensor advantages = gae.first, returns = gae.second;

  // 6. Soft-risk selection: keep the k(m) episodes with the lowest KL-penalised return at the
  //    first response action (reference/ra-rlhf.md §1.2); risk off keeps the whole batch.
  //    The selection is global: q-hat is the k-th smallest return over every rank's episodes.
  at::Tensor episode_returns = comm_->all_gather(returns.select(1, 0).contiguous());  // [B_global]
  const int64_t k = cfg_.risk.enabled ? soft_risk_keep_count(m, B_global, M, cfg_.risk) : B_global;
  // risk.selection=random keeps the same k(m) episodes drawn at random: the control that separates
  // "trains on the worst episodes" from "takes its steps on fewer episodes". Seeded by (seed, m).
  RiskSelection sel = cfg_.risk.selection == "random"
                          ? select_random_episodes(episode_returns, k,
                                                   static_cast<uint64_t>(cfg_.run.seed) * 1000003ULL +
                                                       static_cast<uint64_t>(m))
                          : select_lowest_returns(episode_returns, k);
  at::Tensor keep_global_f = sel.keep.to(device_).to(at::kFloat);       // [B_global]
  at::Tensor keep_f = keep_global_f.narrow(0, shard.begin, B);           // [B] this rank's episodes
  at::Tensor train_mask = mask * keep_f.unsqueeze(1);                    // [B, R]
  // Whitening runs after the mask change, so it covers the kept episodes' tokens only. With a
  // single kept token (e.g. one response token and k = 1) the variance is undefined: skip it.
  const double kept_tokens = comm_->sum(train_mask.sum().item<double>());
  if (pc.whiten_advantages && kept_tokens > 1) {
    advantages = global_masked_whiten(*comm_, advantages, train_mask, pc.custom_kernels);
  }
  at::Tensor scores_global = comm_->all_gather(scores);                  // [B_global]
  last_keep_ = sel.keep.to(at::kCPU);
  last_returns_ = episode_returns.to(at::kCPU);
  last_scores_ = scores_global.to(at::kCPU);
  last_indices_ = global_idx;

  // 7. PPO: epochs x minibatches, clipped policy + value loss over kept tokens. Rows with no
  //    kept token are left out of the forward: they add nothing to a masked mean. A minibatch is
  //    global: each rank trains on its own rows of it, its loss weighted by its share of the
  //    minibatch's kept tokens, and the gradients are summed, which is the gradient of the
  //    single-process masked mean. Skip decisions use the global statistics, so ranks agree.
  rec["time/advantage"] = seconds_since(t0);  // stages 4-6: rewards, GAE, selection, whitening
  t0 = clock::now();
  policy_.lm->train();
  int64_t n_updates = 0, n_skipped = 0;
  double sum_pg = 0, sum_vf = 0, sum_cf = 0, sum_vcf = 0, sum_ent = 0, sum_akl = 0, sum_ratio = 0;
  const int64_t mbs = pc.mini_batch_size;
  at::Tensor row_has_tokens = (train_mask.sum(1) > 0).to(at::kCPU);
  at::Tensor row_tokens = train_mask.sum(1).to(at::kDouble).to(at::kCPU);  // [B] kept tokens per row
  // Every rank knows every minibatch's global kept-token count up front: one collective per
  // minibatch (gradients + statistics together) is all the update needs.
  at::Tensor row_tokens_global = comm_->all_gather(row_tokens);            // [B_global]
  for (int64_t epoch = 0; epoch < pc.ppo_epochs; ++epoch) {
    at::Generator g = at::detail::createCPUGenerator(mix_seed(cfg_.run.seed, m, kMinibatch + epoch));
    at::Tensor perm = torch::randperm(B_global, g, torch::TensorOptions().dtype(at::kLong));
    for (int64_t s = 0; s < B_global; s += mbs) {
      at::Tensor rows_g = perm.narrow(0, s, std::min(mbs, B_global - s));
      const double n_tok = row_tokens_global.index({rows_g}).sum().item<double>();
      if (n_tok <= 0) continue;  // every episode of this minibatch was dropped (on every rank)
      at::Tensor rows = rows_g.index({(rows_g >= shard.begin).logical_and(rows_g < shard.end)}) - shard.begin;
      rows = rows.index({row_has_tokens.index({rows})});
      const double local_tokens = rows.numel() ? row_tokens.index({rows}).sum().item<double>() : 0.0;
      optimizer_->zero_grad();
      PpoLoss out;
      if (rows.numel() > 0) {
        at::Tensor r = rows.to(device_);
        at::Tensor lp, v, ent;
        forward_response(policy_.lm, &policy_.value_head, ids.index({r}), attn.index({r}), P, &lp, &v,
                         &ent);
        out = ppo_loss(lp, old_logprobs.index({r}), v, old_values.index({r}), advantages.index({r}),
                       returns.index({r}), train_mask.index({r}), pc, ent);
        // This rank's share of the minibatch's masked mean (one rank: exactly the loss).
        (comm_->distributed() ? out.loss * (local_tokens / n_tok) : out.loss).backward();
      }
      // Token-weighted statistics, summed over ranks with the gradients:
      // [pg, vf, clipfrac, vf_clipfrac, entropy, approx_kl, ratio, loss] * tokens.
      const PpoLossStats& st = out.stats;
      const double lw = local_tokens;
      const double loss_local = rows.numel() > 0 ? item(out.loss) : 0.0;
      at::Tensor agg = torch::tensor({st.pg_loss * lw, st.vf_loss * lw, st.clipfrac * lw, st.vf_clipfrac * lw,
                                      st.policy_entropy * lw, st.approx_kl * lw, st.ratio_mean * lw,
                                      loss_local * lw},
                                     torch::kDouble);
      dist::all_reduce_gradients(*comm_, optimizer_->param_groups()[0].params(), &agg);
      const double* a = agg.data_ptr<double>();
      PpoLossStats gst{a[0] / n_tok, a[1] / n_tok, a[2] / n_tok, a[3] / n_tok, a[5] / n_tok, a[4] / n_tok,
                       a[6] / n_tok, 0.0};
      if (pc.ratio_threshold > 0 && gst.ratio_mean > pc.ratio_threshold) {
        ++n_skipped;  // TRL: "average ratio exceeds threshold, skipping batch" (no optimiser step)
        continue;
      }
      if (!std::isfinite(a[7] / n_tok)) {
        throw Error("iteration " + std::to_string(m) +
                    ": PPO loss is NaN/inf; stopping (the last checkpoint is intact). Try a lower "
                    "ppo.learning_rate or model.dtype=float32");
      }
      if (pc.max_grad_norm > 0) {
        torch::nn::utils::clip_grad_norm_(optimizer_->param_groups()[0].params(), pc.max_grad_norm);
      }
      optimizer_->step();
      ++n_updates;
      sum_pg += gst.pg_loss;
      sum_vf += gst.vf_loss;
      sum_cf += gst.clipfrac;
      sum_vcf += gst.vf_clipfrac;
      sum_ent += gst.policy_entropy;
      sum_akl += gst.approx_kl;
      sum_ratio += gst.ratio_mean;
    }
  }
  policy_.lm->eval();
  rec["time/optimize"] = seconds_since(t0);

  // 8. KL controller: the paper (Eq. 12) adapts beta with the KL averaged over the kept
  //    episodes; the reference code dilutes it with the dropped rows counted as zero.
  //    Global: every rank's sequence KLs are gathered, so all ranks update beta identically.
  at::Tensor kl_ep = comm_->all_gather(((old_logprobs - ref_logprobs) * mask).sum(1).contiguous());  // [B_global]
  const double kl_all = item(kl_ep.mean());
  const double kl_kept = item((kl_ep * keep_global_f).sum() / keep_global_f.sum().clamp_min(1));
  kl_.update(kl_kept, B_global);
  if (kl_all < -1.0) {
    RARLHF_LOG_WARN("iteration {}: mean KL {:.3f} < -1: the policy samples tokens the reference finds "
                    "likelier than it does; check generation settings (top_k=0, top_p=1, temperature=1)",
                    m, kl_all);
  }

  const double nu = std::max<int64_t>(1, n_updates);
  at::Tensor kept_scores = scores_global.index({sel.keep.to(device_)});
  total_len = comm_->sum(total_len);
  rec["objective/kl"] = kl_all;
  rec["objective/kl_kept"] = kl_kept;
  rec["objective/scores"] = item(scores_global.mean());
  rec["objective/scores_std"] = B_global > 1 ? item(scores_global.std()) : 0.0;
  rec["objective/scores_min"] = item(scores_global.min());
  rec["objective/rlhf_reward"] = item((scores_global - beta * kl_ep).mean());
  rec["loss/policy_avg"] = sum_pg / nu;
  rec["loss/value_avg"] = sum_vf / nu;
  rec["policy/clipfrac_avg"] = sum_cf / nu;
  rec["policy/entropy_avg"] = sum_ent / nu;
  rec["policy/approxkl_avg"] = sum_akl / nu;
  rec["val/clipfrac_avg"] = sum_vcf / nu;
  rec["val/ratio"] = sum_ratio / nu;
  rec["ppo/updates"] = n_updates;
  rec["ppo/skipped_minibatches"] = n_skipped;
  rec["kl/beta"] = beta;
  rec["kl/beta_next"] = kl_.value();
  rec["risk/keep_count"] = sel.keep_count;
  rec["risk/alpha_now"] = static_cast<double>(k) / static_cast<double>(B_global);
  rec["risk/return_threshold"] = sel.threshold;
  rec["risk/cvar_score"] = item(kept_scores.mean());
  rec["returns/episode_mean"] = item(episode_returns.mean());
  rec["env/response_length"] = total_len / static_cast<double>(B_global);
  if (comm_->distributed()) rec["dist/world_size"] = comm_->world_size();
  rec["time/total"] = seconds_since(t_start);
  return rec;
}

void PPOTrainer::save_checkpoint() {
  // Replicas are identical: rank 0 writes; the others wait so that no rank exits (or reads the
  // checkpoint on a later resume) before it is complete.
  if (!comm_->is_main()) {
    comm_->barrier();
    return;
  }
  save_checkpoint_files();
  comm_->barrier();
}

void PPOTrainer::save_checkpoint_files() {
  const std::string dir = cfg_.run.out_dir + "/checkpoint";
  const std::string tmp = dir + ".tmp";
  const std::string old = dir + ".old";
  fs::remove_all(tmp);
  make_dirs(tmp);
  save_policy(policy_, tmp + "/policy", cfg_.tokenizer_dir());
  torch::save(*optimizer_, tmp + "/optimizer.pt");
  nlohmann::json state = {
      {"iteration", iteration_},
      {"beta", kl_.value()},
      {"seed", cfg_.run.seed},
      {"batch_size", cfg_.ppo.batch_size},
      {"total_iterations", total_iterations()},
      {"num_prompts", prompts_.size()},
      // All sampling/shuffling streams are derived from (seed, iteration): no RNG state to store.
      {"rng", "derived from run.seed and the iteration"}};
  write_file_atomic(tmp + "/trainer_state.json", state.dump(2) + "\n");
  // Swap into place: a crash at any point leaves either checkpoint/ or checkpoint.old/ complete.
  std::error_code ec;
  fs::remove_all(old, ec);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old, ec);
  RARLHF_LOG_INFO("checkpoint: {} (iteration {})", dir, iteration_);
}

bool PPOTrainer::resume() {
  std::string dir = cfg_.run.out_dir + "/checkpoint";
  if (!fs::exists(dir + "/trainer_state.json")) {
    if (fs::exists(cfg_.run.out_dir + "/checkpoint.old/trainer_state.json")) {
      dir = cfg_.run.out_dir + "/checkpoint.old";  // interrupted between the two renames
    } else {
      return false;
    }
  }
  nlohmann::json st = nlohmann::json::parse(read_file(dir + "/trainer_state.json"));
  auto expect_same = [&](const char* key, int64_t now, const char* field) {
    if (st.at(key).get<int64_t>() != now) {
      throw ConfigError(dir + ": checkpoint was written with " + field + "=" +
                        std::to_string(st.at(key).get<int64_t>()) + " but the config says " +
                        std::to_string(now) + "; resume with the same config or a new run.out_dir");
    }
  };
  expect_same("seed", cfg_.run.seed, "run.seed");
  expect_same("batch_size", cfg_.ppo.batch_size, "ppo.batch_size");
  expect_same("num_prompts", static_cast<int64_t>(prompts_.size()), "the number of prompts");
  Policy saved = load_policy(dir + "/policy", cfg_.model.dtype, device_);
  {
    torch::NoGradGuard no_grad;
    auto dst = policy_.lm->parameters();
    auto src = saved.lm->parameters();
    for (size_t i = 0; i < dst.size(); ++i) dst[i].copy_(src[i]);
    auto vd = policy_.value_head->parameters();
    auto vs = saved.value_head->parameters();
    for (size_t i = 0; i < vd.size(); ++i) vd[i].copy_(vs[i]);
  }
  torch::load(*optimizer_, dir + "/optimizer.pt");
  kl_.set_value(st.at("beta").get<double>());
  iteration_ = st.at("iteration").get<int64_t>();
  RARLHF_LOG_INFO("resumed from {} at iteration {} (beta {:.4f})", dir, iteration_, kl_.value());
  return true;
}

bool PPOTrainer::train() {
  const int64_t M = total_iterations();
  const bool main_rank = comm_->is_main();
  // Identical replicas from here on: rank 0's weights (a fresh value head is random per process).
  {
    std::vector<at::Tensor> params = policy_.lm->parameters();
    for (auto& p : policy_.value_head->parameters()) params.push_back(p);
    dist::broadcast_parameters(*comm_, params);
  }
  std::unique_ptr<MetricsWriter> metrics;
  if (main_rank) {
    metrics = std::make_unique<MetricsWriter>(cfg_.run.out_dir + "/metrics.jsonl", iteration_, "iteration");
  }
  const bool tty = main_rank && cfg_.logging.progress && isatty(STDERR_FILENO);
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t first = iteration_;
  RARLHF_LOG_INFO("train: {} iterations of {} episodes ({}), risk {}", M, cfg_.ppo.batch_size,
                  cfg_.risk.enabled ? "RA-RLHF" : "RLHF", cfg_.risk.enabled ? "on" : "off");
  for (int64_t m = iteration_; m < M; ++m) {
    nlohmann::json rec = step(m);
    if (metrics) metrics->write(rec);
    iteration_ = m + 1;
    const double elapsed = seconds_since(t0);
    const double eta = elapsed / static_cast<double>(iteration_ - first) * static_cast<double>(M - iteration_);
    char line[256];
    std::snprintf(line, sizeof line, "it %lld/%lld  score %.3f  kl %.3f  beta %.4f  keep %lld  ETA %s",
                  static_cast<long long>(iteration_), static_cast<long long>(M),
                  rec["objective/scores"].get<double>(), rec["objective/kl"].get<double>(),
                  rec["kl/beta"].get<double>(), static_cast<long long>(rec["risk/keep_count"].get<int64_t>()),
                  fmt_duration(eta).c_str());
    if (tty) {
      std::fprintf(stderr, "\r[train] %s   ", line);
      std::fflush(stderr);
    } else {
      RARLHF_LOG_INFO("train: {}", line);
    }
    // A signal may reach only some ranks (or reach them in different iterations): stop together.
    bool stop = g_stop_requested.load();
    if (comm_->distributed()) stop = comm_->sum(stop ? 1.0 : 0.0) > 0;
    if (stop) {
      if (tty) std::fprintf(stderr, "\n");
      RARLHF_LOG_WARN("train: stop requested; checkpointing at iteration {} and exiting", iteration_);
      save_checkpoint();
      return false;
    }
    if (cfg_.run.save_every > 0 && iteration_ % cfg_.run.save_every == 0 && iteration_ < M) {
      save_checkpoint();
    }
  }
  if (tty) std::fprintf(stderr, "\n");
  save_checkpoint();
  if (main_rank) {
    save_policy(policy_, cfg_.run.out_dir + "/policy", cfg_.tokenizer_dir());
    write_file_atomic(cfg_.run.out_dir + "/DONE", "iterations " + std::to_string(M) + "\n");
  }
  comm_->barrier();
  return true;
}

}  // namespace rarlhf
