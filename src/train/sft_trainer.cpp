// SftTrainer: causal-LM fine-tuning (truncated or packed sequences) with gradient accumulation, a
// linear LR schedule, gradient clipping, dropout, held-out loss, checkpoints and resume, optionally
// data-parallel over ranks. See include/rarlhf/train/sft_trainer.h.
#include "rarlhf/train/sft_trainer.h"

#include <torch/torch.h>

#include <cmath>
#include <cstdio>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/metrics.h"
#include "rarlhf/common/random.h"
#include "rarlhf/io/checkpoint.h"
#include "rarlhf/kernels/ops.h"
#include "rarlhf/model/lora.h"
#include "rarlhf/train/fused_adam.h"
#include "rarlhf/train/run_loop.h"

namespace rarlhf {

std::vector<std::vector<int64_t>> pack_sequences(const std::vector<std::vector<int64_t>>& docs,
                                                 int64_t eos, int64_t seq_length) {
  std::vector<std::vector<int64_t>> out;
  std::vector<int64_t> cur;
  cur.reserve(seq_length);
  auto push = [&](int64_t t) {
    cur.push_back(t);
    if (static_cast<int64_t>(cur.size()) == seq_length) {
      out.push_back(std::move(cur));
      cur = {};
      cur.reserve(seq_length);
    }
  };
  for (const auto& d : docs) {
    for (int64_t t : d) push(t);
    push(eos);
  }
  if (cur.size() >= 2) out.push_back(std::move(cur));  // a last, shorter window (padded later)
  return out;
}

std::vector<std::vector<int64_t>> truncate_sequences(const std::vector<std::vector<int64_t>>& docs,
                                                     int64_t seq_length) {
  std::vector<std::vector<int64_t>> out;
  out.reserve(docs.size());
  for (const auto& d : docs) {
    if (d.size() < 2) continue;
    out.emplace_back(d.begin(), d.begin() + std::min<int64_t>(seq_length, static_cast<int64_t>(d.size())));
  }
  return out;
}

double sft_learning_rate(const SftConfig& sft, int64_t step, int64_t total) {
  const int64_t warmup = sft.warmup_steps;
  if (step < warmup) return sft.learning_rate * static_cast<double>(step) / static_cast<double>(warmup);
  if (sft.lr_schedule == choice::LrSchedule::kConstant) return sft.learning_rate;
  const double left = static_cast<double>(total - step) / static_cast<double>(std::max<int64_t>(1, total - warmup));
  return sft.learning_rate * std::max(0.0, left);
}

namespace {

// Right-padded [B, L] ids and mask for `rows` of `windows`.
std::pair<at::Tensor, at::Tensor> make_batch(const std::vector<std::vector<int64_t>>& windows,
                                             const std::vector<int64_t>& rows,
                                             const c10::Device& device) {
  int64_t L = 0;
  for (int64_t r : rows) L = std::max<int64_t>(L, windows[r].size());
  at::Tensor ids = torch::zeros({static_cast<int64_t>(rows.size()), L}, torch::kLong);
  at::Tensor mask = torch::zeros({static_cast<int64_t>(rows.size()), L}, torch::kLong);
  auto ia = ids.accessor<int64_t, 2>();
  auto ma = mask.accessor<int64_t, 2>();
  for (size_t b = 0; b < rows.size(); ++b) {
    const auto& w = windows[rows[b]];
    for (size_t t = 0; t < w.size(); ++t) {
      ia[b][t] = w[t];
      ma[b][t] = 1;
    }
  }
  return {ids.to(device), mask.to(device)};
}

// Summed next-token NLL and the number of predicted tokens.
std::pair<at::Tensor, at::Tensor> nll_sum(const CausalLm& lm, const at::Tensor& ids, const at::Tensor& mask,
                                          bool custom) {
  const int64_t L = ids.size(1);
  at::Tensor hidden = lm->forward_hidden(ids, mask);                    // [B, L, C]
  at::Tensor logits = lm->lm_logits(hidden.narrow(1, 0, L - 1));        // [B, L-1, V]
  at::Tensor lp = token_logprobs(logits, ids.narrow(1, 1, L - 1), custom);  // [B, L-1]
  at::Tensor m = mask.narrow(1, 1, L - 1).to(at::kFloat);
  return {-(lp * m).sum(), m.sum()};
}


}  // namespace

double mean_nll(const CausalLm& lm, const std::vector<std::vector<int64_t>>& windows, int64_t batch_size,
                const c10::Device& device, bool custom) {
  torch::NoGradGuard no_grad;
  double total = 0, count = 0;
  for (size_t s = 0; s < windows.size(); s += batch_size) {
    std::vector<int64_t> rows;
    for (size_t i = s; i < std::min(windows.size(), s + batch_size); ++i) rows.push_back(i);
    auto [ids, mask] = make_batch(windows, rows, device);
    auto [nll, n] = nll_sum(lm, ids, mask, custom);
    total += nll.item<double>();
    count += n.item<double>();
  }
  return count > 0 ? total / count : std::nan("");
}

SftTrainer::SftTrainer(Config cfg, std::vector<std::vector<int64_t>> train_windows,
                       std::vector<std::vector<int64_t>> eval_windows, Policy policy,
                       c10::Device device, std::string tokenizer_dir)
    : cfg_(std::move(cfg)),
      train_(std::move(train_windows)),
      eval_(std::move(eval_windows)),
      policy_(std::move(policy)),
      device_(device),
      tokenizer_dir_(std::move(tokenizer_dir)),
      comm_(std::make_shared<dist::Communicator>()) {
  if (train_.empty()) throw ConfigError("data.train_path: no training text left after filtering");
  refuse_float16_training(*policy_.lm);
  policy_.lm->set_gradient_checkpointing(cfg_.model.gradient_checkpointing);
  masters_ = std::make_unique<MasterWeights>(lm_trainable_parameters(policy_));
  if (masters_->any()) RARLHF_LOG_INFO("sft: {} weight tensors in bfloat16, stepped as fp32 masters", masters_->count());
  optimizer_ = std::make_unique<FusedAdamW>(
      masters_->optimizer_params(),
      torch::optim::AdamWOptions(cfg_.sft.learning_rate).weight_decay(cfg_.sft.weight_decay));
  const double p = cfg_.sft.dropout;
  policy_.lm->set_dropout(p < 0 ? policy_.lm->config_dropout() : DropoutRates{p, p, p}, "sft.dropout");
  policy_.lm->train();
}

SftTrainer::~SftTrainer() = default;

void SftTrainer::set_communicator(std::shared_ptr<dist::Communicator> comm) {
  if (!comm) throw Error("SftTrainer::set_communicator: null communicator");
  comm_ = std::move(comm);
}

int64_t SftTrainer::steps_per_epoch() const {
  const int64_t per_step = cfg_.sft.batch_size * cfg_.sft.grad_accum;
  return (static_cast<int64_t>(train_.size()) + per_step - 1) / per_step;
}

std::vector<int64_t> SftTrainer::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(train_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int64_t>(i);
  uint64_t s = derive_seed(static_cast<uint64_t>(cfg_.run.seed), 1000 + epoch);
  for (int64_t i = static_cast<int64_t>(order.size()) - 1; i > 0; --i) {
    s = derive_seed(s, i);
    std::swap(order[i], order[s % static_cast<uint64_t>(i + 1)]);
  }
  return order;
}

double SftTrainer::eval_loss() {
  if (eval_.empty()) return std::nan("");
  policy_.lm->eval();  // no dropout, as HF's Trainer evaluates
  const double loss = mean_nll(policy_.lm, eval_, cfg_.sft.batch_size, device_, true);
  policy_.lm->train();
  return loss;
}

void SftTrainer::save_checkpoint() {
  // Rank 0 writes; the others wait until the checkpoint is complete.
  if (comm_->is_main()) {
    write_checkpoint(cfg_.run.out_dir, [this](const std::string& dir) {
      save_policy(policy_, dir + "/policy", tokenizer_dir_);
      save_optimizer(*optimizer_, dir + "/optimizer.pt");
      if (masters_->any()) save_safetensors(dir + "/master_weights.safetensors", masters_->named_masters());
      const nlohmann::json state = {{"step", step_}, {"seed", cfg_.run.seed}, {"windows", train_.size()},
                                    {"batch_size", cfg_.sft.batch_size}, {"grad_accum", cfg_.sft.grad_accum}};
      write_file_atomic(dir + "/trainer_state.json", state.dump(2) + "\n");
    });
  }
  comm_->barrier();
}

bool SftTrainer::resume() {
  const std::string dir = find_checkpoint(cfg_.run.out_dir);
  if (dir.empty()) return false;
  const nlohmann::json state = read_trainer_state(dir);
  expect_same_setting(state, dir, "seed", cfg_.run.seed, "run.seed");
  expect_same_setting(state, dir, "windows", static_cast<int64_t>(train_.size()), "the number of training windows");
  expect_same_setting(state, dir, "batch_size", cfg_.sft.batch_size, "sft.batch_size");
  expect_same_setting(state, dir, "grad_accum", cfg_.sft.grad_accum, "sft.grad_accum");
  const int64_t step = state_int(state, dir, "step", 0, total_steps());
  if (policy_.lm->lora()) {
    load_adapter_checkpoint(policy_, dir + "/policy");
  } else {
    Policy saved = load_policy(dir + "/policy", cfg_.model.dtype, device_);
    copy_parameters(policy_.lm->parameters(), saved.lm->parameters(), dir + "/policy");
  }
  load_master_weights(*masters_, dir);
  load_optimizer(*optimizer_, dir + "/optimizer.pt");
  step_ = step;
  RARLHF_LOG_INFO("sft: resumed from {} at step {}", dir, step_);
  return true;
}

at::Tensor SftTrainer::micro_batch_loss(const std::vector<int64_t>& rows) {
  auto [ids, mask] = make_batch(train_, rows, device_);
  auto [nll, n] = nll_sum(policy_.lm, ids, mask, true);
  return nll / n.clamp_min(1);
}

// Summed NLL of this rank's slice of micro-batch `rows` (sizes differ by at most one window)
// divided by the micro-batch's global token count: the gradients summed over ranks are then the
// single-process token mean's. Returns the micro-batch's global mean loss.
double SftTrainer::distributed_micro_batch(const std::vector<int64_t>& rows, int64_t accum) {
  const int64_t n = static_cast<int64_t>(rows.size()), world = comm_->world_size(), r = comm_->rank();
  const std::vector<int64_t> mine(rows.begin() + n * r / world, rows.begin() + n * (r + 1) / world);
  at::Tensor nll, count;
  if (!mine.empty()) {
    auto [ids, mask] = make_batch(train_, mine, device_);
    std::tie(nll, count) = nll_sum(policy_.lm, ids, mask, true);
  }
  at::Tensor sums = torch::tensor({mine.empty() ? 0.0 : nll.item<double>(), mine.empty() ? 0.0 : count.item<double>()},
                                  torch::TensorOptions().dtype(torch::kDouble).device(device_));
  comm_->all_reduce_sum(sums);
  const double total_nll = sums[0].item<double>(), tokens = std::max(1.0, sums[1].item<double>());
  if (!mine.empty()) (nll / (tokens * static_cast<double>(accum))).backward();
  return total_nll / tokens;
}

// Optimiser step `step` (0-based): sft.grad_accum micro-batches of sft.batch_size windows of the
// epoch's seeded order, their token-mean losses averaged; the summed gradient clipped to
// sft.max_grad_norm, then AdamW at the schedule's learning rate.
SftTrainer::StepResult SftTrainer::optimizer_step(int64_t step, const std::vector<int64_t>& order) {
  const int64_t mb = cfg_.sft.batch_size, accum = cfg_.sft.grad_accum;
  const int64_t begin = (step % steps_per_epoch()) * mb * accum;
  // Dropout masks drawn from a per-step seed: a resumed run draws the ones an uninterrupted run would.
  if (policy_.lm->dropout().any()) torch::manual_seed(derive_seed(static_cast<uint64_t>(cfg_.run.seed), 5000 + step));
  optimizer_->zero_grad();
  double loss_sum = 0;
  int64_t n_micro = 0;
  for (int64_t a = 0; a < accum; ++a) {
    const int64_t s = begin + a * mb;
    if (s >= static_cast<int64_t>(order.size())) break;
    const std::vector<int64_t> rows(order.begin() + s, order.begin() + std::min<int64_t>(order.size(), s + mb));
    if (comm_->distributed()) {
      loss_sum += distributed_micro_batch(rows, accum);
    } else {
      at::Tensor loss = micro_batch_loss(rows);
      (loss / static_cast<double>(accum)).backward();
      loss_sum += loss.item<double>();
    }
    ++n_micro;
  }
  masters_->gradients_to_masters();
  dist::all_reduce_gradients(*comm_, masters_->optimizer_params());
  StepResult r;
  r.loss = loss_sum / std::max<int64_t>(1, n_micro);
  if (!std::isfinite(r.loss)) {
    throw Error("sft step " + std::to_string(step) + ": loss is NaN/inf; stopping (the last "
                "checkpoint is intact). Try a lower sft.learning_rate");
  }
  if (cfg_.sft.max_grad_norm > 0) {
    r.grad_norm = torch::nn::utils::clip_grad_norm_(masters_->optimizer_params(), cfg_.sft.max_grad_norm);
  }
  r.lr = sft_learning_rate(cfg_.sft, step, total_steps());
  static_cast<torch::optim::AdamWOptions&>(optimizer_->param_groups()[0].options()).lr(r.lr);
  optimizer_->step();
  masters_->masters_to_params();
  return r;
}

bool SftTrainer::train() {
  const int64_t total = total_steps(), spe = steps_per_epoch();
  const int64_t eval_every = cfg_.sft.eval_every > 0 ? cfg_.sft.eval_every : spe;
  // Identical replicas: rank 0's trained weights (its fp32 masters, finer than the bf16 weights).
  dist::broadcast_parameters(*comm_, masters_->optimizer_params());
  masters_->masters_to_params();
  std::unique_ptr<MetricsWriter> metrics;
  if (comm_->is_main()) {
    // Records are numbered by steps done ("step": k after k steps, 0 = the initial eval): a run
    // resumed at step k keeps records 0..k.
    metrics = std::make_unique<MetricsWriter>(cfg_.run.out_dir + "/metrics.jsonl", step_ > 0 ? step_ + 1 : 0, "step",
                                              cfg_.logging.tensorboard ? cfg_.run.out_dir : "");
  }
  if (step_ == 0) {
    const double e0 = eval_loss();
    RARLHF_LOG_INFO("sft: {} sequences of <= {} tokens, {} steps; initial eval loss {:.4f}", train_.size(),
                    cfg_.sft.seq_length, total, e0);
    if (metrics) metrics->write({{"step", 0}, {"loss/eval", e0}});
  }
  int64_t cached_epoch = -1;
  std::vector<int64_t> order;
  TrainingLoop loop;
  loop.name = "sft";
  loop.unit = loop.label = "step";
  loop.first = step_;
  loop.total = total;
  loop.run_unit = [&](int64_t step) {
    const int64_t epoch = step / spe;
    if (epoch != cached_epoch) order = epoch_order(epoch), cached_epoch = epoch;
    reset_device_peak(device_);
    const StepResult res = optimizer_step(step, order);
    const double train_loss = res.loss;
    step_ = step + 1;
    nlohmann::json rec = {{"step", step_}, {"epoch", epoch}, {"loss/train", train_loss}, {"lr", res.lr},
                          {"mem/peak_mib", static_cast<double>(device_peak_bytes(device_)) / (1 << 20)}};
    if (cfg_.sft.max_grad_norm > 0) rec["grad_norm"] = res.grad_norm;
    const bool eval = step_ % eval_every == 0 || step_ == total;
    if (eval) rec["loss/eval"] = eval_loss();
    if (metrics) metrics->write(rec);
    char text[96];
    if (eval) {
      std::snprintf(text, sizeof text, "train loss %.4f  eval loss %.4f", train_loss, rec["loss/eval"].get<double>());
    } else {
      std::snprintf(text, sizeof text, "loss %.4f", train_loss);
    }
    return UnitReport{text, eval};
  };
  loop.save_checkpoint = [&] {
    if (metrics) metrics->sync();  // the log is durable up to the checkpoint it goes with
    save_checkpoint();
  };
  loop.save_final = [this] { save_policy(policy_, cfg_.run.out_dir + "/policy", tokenizer_dir_); };
  return run_training_loop(cfg_, *comm_, loop);
}

}  // namespace rarlhf
