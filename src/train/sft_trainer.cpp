// SftTrainer: packed causal-LM fine-tuning with gradient accumulation, held-out loss,
// checkpoints and resume, optionally data-parallel over ranks. See include/rarlhf/train/sft_trainer.h.
#include "rarlhf/train/sft_trainer.h"

#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/metrics.h"
#include "rarlhf/kernels/ops.h"
#include "rarlhf/common/signals.h"
#include "rarlhf/train/fused_adam.h"

namespace rarlhf {
namespace fs = std::filesystem;

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

uint64_t mix(uint64_t a, uint64_t b) {
  uint64_t z = a ^ (b * 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
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
  optimizer_ = std::make_unique<FusedAdamW>(
      policy_.lm->parameters(),
      torch::optim::AdamWOptions(cfg_.sft.learning_rate).weight_decay(cfg_.sft.weight_decay));
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
  uint64_t s = mix(static_cast<uint64_t>(cfg_.run.seed), 1000 + epoch);
  for (int64_t i = static_cast<int64_t>(order.size()) - 1; i > 0; --i) {
    s = mix(s, i);
    std::swap(order[i], order[s % static_cast<uint64_t>(i + 1)]);
  }
  return order;
}

double SftTrainer::eval_loss() {
  if (eval_.empty()) return std::nan("");
  return mean_nll(policy_.lm, eval_, cfg_.sft.batch_size, device_, true);
}

void SftTrainer::save_checkpoint() {
  // Rank 0 writes; the others wait until the checkpoint is complete.
  if (comm_->is_main()) save_checkpoint_files();
  comm_->barrier();
}

void SftTrainer::save_checkpoint_files() {
  const std::string dir = cfg_.run.out_dir + "/checkpoint";
  const std::string tmp = dir + ".tmp", old = dir + ".old";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  make_dirs(tmp);
  save_policy(policy_, tmp + "/policy", tokenizer_dir_);
  torch::save(*optimizer_, tmp + "/optimizer.pt");
  nlohmann::json st = {{"step", step_}, {"seed", cfg_.run.seed}, {"windows", train_.size()},
                       {"batch_size", cfg_.sft.batch_size}, {"grad_accum", cfg_.sft.grad_accum}};
  write_file_atomic(tmp + "/trainer_state.json", st.dump(2) + "\n");
  fs::remove_all(old, ec);
  if (fs::exists(dir)) fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old, ec);
}

bool SftTrainer::resume() {
  std::string dir = cfg_.run.out_dir + "/checkpoint";
  if (!fs::exists(dir + "/trainer_state.json")) {
    dir += ".old";
    if (!fs::exists(dir + "/trainer_state.json")) return false;
  }
  auto st = nlohmann::json::parse(read_file(dir + "/trainer_state.json"));
  for (auto [key, now] : {std::pair<const char*, int64_t>{"seed", cfg_.run.seed},
                          {"windows", static_cast<int64_t>(train_.size())},
                          {"batch_size", cfg_.sft.batch_size},
                          {"grad_accum", cfg_.sft.grad_accum}}) {
    if (st.at(key).get<int64_t>() != now) {
      throw ConfigError(dir + ": checkpoint was written with " + key + "=" +
                        std::to_string(st.at(key).get<int64_t>()) + ", now " + std::to_string(now) +
                        "; resume with the same config and data, or use a new run.out_dir");
    }
  }
  Policy saved = load_policy(dir + "/policy", cfg_.model.dtype, device_);
  {
    torch::NoGradGuard no_grad;
    auto dst = policy_.lm->parameters();
    auto src = saved.lm->parameters();
    for (size_t i = 0; i < dst.size(); ++i) dst[i].copy_(src[i]);
  }
  torch::load(*optimizer_, dir + "/optimizer.pt");
  step_ = st.at("step").get<int64_t>();
  RARLHF_LOG_INFO("sft: resumed from {} at step {}", dir, step_);
  return true;
}

at::Tensor SftTrainer::micro_batch_loss(const std::vector<int64_t>& rows) {
  auto [ids, mask] = make_batch(train_, rows, device_);
  auto [nll, n] = nll_sum(policy_.lm, ids, mask, true);
  return nll / n.clamp_min(1);
}

bool SftTrainer::train() {
  const int64_t total = total_steps();
  const int64_t spe = steps_per_epoch();
  const int64_t mb = cfg_.sft.batch_size, accum = cfg_.sft.grad_accum;
  const int64_t eval_every = cfg_.sft.eval_every > 0 ? cfg_.sft.eval_every : spe;
  const bool main_rank = comm_->is_main();
  dist::broadcast_parameters(*comm_, policy_.lm->parameters());  // identical replicas
  std::unique_ptr<MetricsWriter> metrics;
  if (main_rank) metrics = std::make_unique<MetricsWriter>(cfg_.run.out_dir + "/metrics.jsonl", step_, "step");
  const bool tty = main_rank && cfg_.logging.progress && isatty(STDERR_FILENO);
  if (step_ == 0) {
    double e0 = eval_loss();
    RARLHF_LOG_INFO("sft: {} windows of {} tokens, {} steps; initial eval loss {:.4f}", train_.size(),
                    cfg_.sft.seq_length, total, e0);
    if (metrics) metrics->write({{"step", 0}, {"loss/eval", e0}});
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t first = step_;
  int64_t cached_epoch = -1;
  std::vector<int64_t> order;
  while (step_ < total) {
    const int64_t epoch = step_ / spe, in_epoch = step_ % spe;
    if (epoch != cached_epoch) {
      order = epoch_order(epoch);
      cached_epoch = epoch;
    }
    optimizer_->zero_grad();
    double loss_sum = 0;
    int64_t n_micro = 0;
    const int64_t begin = in_epoch * mb * accum;
    for (int64_t a = 0; a < accum; ++a) {
      const int64_t s = begin + a * mb;
      if (s >= static_cast<int64_t>(order.size())) break;
      std::vector<int64_t> rows(order.begin() + s,
                                order.begin() + std::min<int64_t>(order.size(), s + mb));
      if (!comm_->distributed()) {
        at::Tensor loss = micro_batch_loss(rows);
        (loss / static_cast<double>(accum)).backward();
        loss_sum += loss.item<double>();
      } else {
        // This rank's slice of the micro-batch (sizes differ by at most one window).
        const int64_t n = static_cast<int64_t>(rows.size()), W = comm_->world_size(), r = comm_->rank();
        std::vector<int64_t> mine(rows.begin() + n * r / W, rows.begin() + n * (r + 1) / W);
        at::Tensor nll, cnt;
        if (!mine.empty()) {
          auto [ids, mask] = make_batch(train_, mine, device_);
          std::tie(nll, cnt) = nll_sum(policy_.lm, ids, mask, true);
        }
        at::Tensor agg = torch::tensor({mine.empty() ? 0.0 : nll.item<double>(),
                                        mine.empty() ? 0.0 : cnt.item<double>()},
                                       torch::TensorOptions().dtype(torch::kDouble).device(device_));
        comm_->all_reduce_sum(agg);
        const double g_nll = agg[0].item<double>(), g_cnt = std::max(1.0, agg[1].item<double>());
        if (!mine.empty()) (nll / (g_cnt * static_cast<double>(accum))).backward();
        loss_sum += g_nll / g_cnt;
      }
      ++n_micro;
    }
    dist::all_reduce_gradients(*comm_, policy_.lm->parameters());
    const double train_loss = loss_sum / std::max<int64_t>(1, n_micro);
    if (!std::isfinite(train_loss)) {
      throw Error("sft step " + std::to_string(step_) + ": loss is NaN/inf; stopping (the last "
                  "checkpoint is intact). Try a lower sft.learning_rate");
    }
    optimizer_->step();
    ++step_;
    nlohmann::json rec = {{"step", step_}, {"epoch", epoch}, {"loss/train", train_loss}};
    if (step_ % eval_every == 0 || step_ == total) rec["loss/eval"] = eval_loss();
    if (metrics) metrics->write(rec);
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double eta = el / static_cast<double>(step_ - first) * static_cast<double>(total - step_);
    if (tty) {
      std::fprintf(stderr, "\r[sft] step %lld/%lld  loss %.4f  ETA %.0fs   ", static_cast<long long>(step_),
                   static_cast<long long>(total), train_loss, eta);
      std::fflush(stderr);
    } else if (rec.contains("loss/eval")) {
      RARLHF_LOG_INFO("sft: step {}/{} train loss {:.4f} eval loss {:.4f}", step_, total, train_loss,
                      rec["loss/eval"].get<double>());
    }
    bool stop = g_stop_requested.load();
    if (comm_->distributed()) stop = comm_->sum(stop ? 1.0 : 0.0) > 0;  // stop together
    if (stop) {
      if (tty) std::fprintf(stderr, "\n");
      save_checkpoint();
      return false;
    }
    if (cfg_.run.save_every > 0 && step_ % cfg_.run.save_every == 0 && step_ < total) save_checkpoint();
  }
  if (tty) std::fprintf(stderr, "\n");
  save_checkpoint();
  if (main_rank) {
    save_policy(policy_, cfg_.run.out_dir + "/policy", tokenizer_dir_);
    write_file_atomic(cfg_.run.out_dir + "/DONE", "steps " + std::to_string(total) + "\n");
  }
  comm_->barrier();
  return true;
}

}  // namespace rarlhf
