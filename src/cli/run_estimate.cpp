// The expected time of `rarlhf run`, printed before the first stage: each stage's work is counted from
// its config and the data (src/pipeline/estimate.cpp) and every distinct piece of it is timed here,
// once, on this machine, with the run's own base model, tokenizer, reward model and each stage's
// LoRA / kernel settings, plus the time to read and tokenize each stage's data. Later stages start from policies that do not exist yet; they have the base
// model's architecture, so the base stands in for them.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/data/dataset.h"
#include "rarlhf/data/prompts.h"
#include "rarlhf/eval/report.h"
#include "rarlhf/generate/sampler.h"
#include "rarlhf/kernels/ops.h"
#include "rarlhf/model/lora.h"
#include "rarlhf/pipeline/estimate.h"
#include "rarlhf/reward/reward.h"
#include "rarlhf/train/fused_adam.h"

namespace rarlhf::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_of(const std::function<void()>& f, const c10::Device& device) {
  const auto t0 = Clock::now();
  f();
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A first call warms the caches and allocator; then the median of 1 (slow pieces) to 5 more.
double timed(const std::function<void()>& f, const c10::Device& device) {
  const double first = seconds_of(f, device);
  const int more = first > 0.5 ? 1 : first > 0.05 ? 3 : 5;
  std::vector<double> t;
  for (int i = 0; i < more; ++i) t.push_back(seconds_of(f, device));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// A policy on disk (weights or a PEFT adapter), not just a config.json to initialise from.
bool has_weights(const std::string& dir) {
  return is_adapter_dir(dir) || file_exists(dir + "/model.safetensors") ||
         file_exists(dir + "/model.safetensors.index.json");
}

// `n` token ids of ordinary text (the same sentence again and again).
std::vector<int64_t> sample_ids(const Tokenizer& tok, int64_t n) {
  const std::vector<int64_t> unit = tok.encode("The film was long, and the story was told with care by everyone in it. ");
  std::vector<int64_t> ids;
  while (static_cast<int64_t>(ids.size()) < n) ids.insert(ids.end(), unit.begin(), unit.end());
  ids.resize(static_cast<size_t>(n));
  return ids;
}

// One stage's training setup on this machine: the base policy with the stage's LoRA settings, its
// optimizer, its reward model; times the stage's pieces of work.
class Probe {
 public:
  // init: fresh weights from model.path/config.json (a pipeline that pre-trains), else its weights.
  Probe(Config config, const Tokenizer& tok, const c10::Device& device, bool init)
      : cfg_(std::move(config)), tok_(tok), device_(device) {
    const Config& cfg = cfg_;
    const std::string& base = cfg.model.path;
    load_s_ = seconds_of([&] {
      torch::manual_seed(cfg.run.seed);
      policy_ = init ? init_policy(base, cfg.model.dtype, device) : load_policy(base, cfg.model.dtype, device);
    }, device);
    apply_lora_config(policy_, cfg);
  }

  double seconds(const WorkItem& w) {
    switch (w.kind) {
      case WorkKind::kLoad: return load_s_;
      case WorkKind::kLoadReward: return seconds_of([&] { reward(); }, device_);
      case WorkKind::kGenerate: return time_generate(w);
      case WorkKind::kForward: {
        const at::Tensor ids = batch_ids(w);
        return timed([&] { torch::NoGradGuard g; forward(ids, w.scored, false); }, device_);
      }
      case WorkKind::kTrain: {
        const at::Tensor ids = batch_ids(w);
        return timed([&] { forward(ids, w.scored, true).backward(); }, device_);
      }
      case WorkKind::kStep: {
        if (!optimizer_) {
          std::vector<at::Tensor> params = lm_trainable_parameters(policy_);
          for (const auto& p : policy_.value_head->parameters()) params.push_back(p);
          optimizer_ = std::make_unique<FusedAdamW>(params, torch::optim::AdamWOptions(1e-6).weight_decay(0));
        }
        forward(batch_ids(WorkItem{WorkKind::kTrain, 1, 2, 0, 1, 1}), 1, true).backward();  // gradients to step on
        return timed([&] { optimizer_->step(); }, device_);
      }
      case WorkKind::kScore: {
        const std::string text = tok_.decode(sample_ids(tok_, w.tokens + w.new_tokens));
        const std::vector<std::string> texts(static_cast<size_t>(w.rows), text);
        RewardModel& r = reward();
        return timed([&] { r.score(texts); }, device_);
      }
    }
    return 0;
  }

 private:
  RewardModel& reward() {
    if (!reward_) reward_ = make_reward(cfg_.reward, device_);
    return *reward_;
  }

  double time_generate(const WorkItem& w) {
    GenerateConfig g = cfg_.generate;
    g.max_new_tokens = g.min_new_tokens = w.new_tokens;  // full length: an upper bound when EOS may come early
    const std::vector<std::vector<int64_t>> prompts(static_cast<size_t>(w.rows), sample_ids(tok_, w.tokens));
    torch::NoGradGuard no_grad;
    return timed([&] { generate(policy_.lm, prompts, g, tok_.eos_id(), static_cast<uint64_t>(cfg_.run.seed)); },
                 device_);
  }

  // What a training or scoring pass computes (PPOTrainer's forward_response, SftTrainer's loss): the
  // hidden states of [rows, tokens], the LM head and log-probs on the last `scored` positions, the
  // value head there; a loss that depends on all of it.
  // [rows, tokens] of sample text, made before the clock starts.
  at::Tensor batch_ids(const WorkItem& w) const {
    const std::vector<int64_t> one = sample_ids(tok_, w.tokens);
    return torch::tensor(one, torch::kLong).unsqueeze(0).repeat({w.rows, 1}).to(device_);
  }

  at::Tensor forward(const at::Tensor& ids, int64_t scored, bool train) {
    const int64_t tokens = ids.size(1), s = std::min(scored, tokens - 1);
    policy_.lm->train(train);
    const at::Tensor hidden = policy_.lm->forward_hidden(ids, at::Tensor()).narrow(1, tokens - 1 - s, s);
    const at::Tensor logits = policy_.lm->lm_logits(hidden);
    const at::Tensor lp = token_logprobs(logits, ids.narrow(1, tokens - s, s), cfg_.ppo.custom_kernels);
    const at::Tensor values = policy_.value_head->forward(hidden);
    return values.square().mean() - lp.mean();
  }

  const Config cfg_;
  const Tokenizer& tok_;
  c10::Device device_;
  Policy policy_;
  double load_s_ = 0;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  std::unique_ptr<RewardModel> reward_;
};

// What stage `p` needs from the data files (each stage with its own config: filters may differ).
DataCounts count_data(const PlannedStage& p, const Tokenizer& tok) {
  DataCounts c;
  const Config& cfg = p.cfg;
  const auto seed = static_cast<uint64_t>(cfg.run.seed);
  if (p.stage->kind == StageKind::kTrain && p.stage->subcommand == "sft") {
    const SftWindows w = sft_windows(cfg, tok);
    c.sft_windows = static_cast<int64_t>(w.train.size());
    c.held_out = static_cast<int64_t>(w.eval.size());
  } else if (p.stage->kind == StageKind::kTrain && cfg.ppo.total_iterations == 0) {
    c.prompts = static_cast<int64_t>(
        load_prompts(cfg.data, cfg.data.train_path, tok, cfg.data.train_resample_share, "data.train_resample_share", seed)
            .size());
  } else if (p.stage->kind == StageKind::kEval) {
    c.test_prompts = static_cast<int64_t>(
        load_prompts(cfg.data, cfg.data.test_path, tok, cfg.data.test_resample_share, "data.test_resample_share", seed)
            .size());
    if (!cfg.eval.ppl_path.empty()) {
      int64_t tokens = 0;
      for (const auto& t : perplexity_texts(read_texts(cfg.data, cfg.eval.ppl_path), cfg.eval.ppl_label_filter,
                                            cfg.eval.ppl_max_chars)) {
        const auto n = static_cast<int64_t>(tok.encode(t).size());
        if (n == 0) continue;
        ++c.ppl_texts;
        tokens += n;
      }
      c.ppl_tokens = c.ppl_texts > 0 ? std::max<int64_t>(2, tokens / c.ppl_texts) : 0;
    }
  }
  return c;
}

}  // namespace

namespace {

double estimate_or_throw(const std::vector<PlannedStage>& plan) {
  if (std::none_of(plan.begin(), plan.end(), [](const PlannedStage& p) { return p.runs > 0; })) return std::nan("");
  const Config& cfg = plan.front().cfg;
  const c10::Device device = resolve_device(cfg.run.device);
  const auto t0 = Clock::now();
  std::cout << "run: timing this run's pieces of work on this machine for an estimate ..." << std::endl;
  const auto tok = load_tokenizer(cfg.tokenizer_dir());
  // The base: what the first training stage starts from (later stages' inputs may not exist yet).
  std::string base = cfg.model.path;
  for (const auto& p : plan) {
    if (p.stage->kind != StageKind::kTrain) continue;
    base = p.cfg.model.path;
    break;
  }
  // The adapters each planned training stage's policy carries (r = 0: none): its own fresh ones, else
  // those of the policy it started from. A stage continuing an adapter trains the adapter only.
  std::map<std::string, LoraConfig> adapters_out;
  struct Row {
    std::string stage, units;
    double seconds;
  };
  std::vector<Row> rows;
  double total = 0;
  // One probe per distinct setup (what the timings depend on besides the shapes), shared by stages.
  struct Timings {
    std::unique_ptr<Probe> probe;
    std::map<std::string, double> seconds;
  };
  std::map<std::string, Timings> setups;
  for (const auto& p : plan) {
    if (p.runs == 0 || p.stage->kind == StageKind::kCompare) continue;
    const bool trains = p.stage->kind == StageKind::kTrain;
    // Each child run reads and tokenizes the same data: counting it here times that too.
    DataCounts counts;
    const double read_s = seconds_of([&] { counts = count_data(p, *tok); }, c10::Device(c10::kCPU));
    // A stage whose input is not made yet: the base model, with the adapters its input will carry.
    Config probe_cfg = p.cfg;
    if (trains && !p.stage->from_scratch && !has_weights(p.cfg.model.path)) {
      probe_cfg.model.path = base;
      if (probe_cfg.lora.r == 0 && adapters_out.count(p.from)) probe_cfg.lora = adapters_out[p.from];
    }
    if (trains) adapters_out[p.stage->name] = probe_cfg.lora;
    if (!trains) {
      probe_cfg.model.path = base;
      probe_cfg.lora.r = 0;
    }
    const bool init = !has_weights(probe_cfg.model.path);
    const StageWork work = trains ? training_work(p.stage->name, p.stage->subcommand, probe_cfg, counts)
                                  : eval_work(probe_cfg, p.runs, true, counts);
    const nlohmann::json j = to_json(probe_cfg);
    const std::string setup = nlohmann::json{{"model", j["model"]}, {"lora", j["lora"]}, {"generate", j["generate"]},
                                             {"reward", j["reward"]}, {"kernels", probe_cfg.ppo.custom_kernels}}
                                  .dump();
    Timings& t = setups[setup];
    if (!t.probe) t.probe = std::make_unique<Probe>(probe_cfg, *tok, device, init);
    for (const auto& w : work.items)
      if (w.count > 0 && !t.seconds.count(w.key())) t.seconds[w.key()] = t.probe->seconds(w);
    const double s = work_seconds(work, t.seconds) + read_s * static_cast<double>(p.runs);
    const auto t_s = [&](const WorkItem& w) { return t.seconds.at(w.key()); };
    RARLHF_LOG_DEBUG("estimate: {}: data {:.2f} s; {}", p.stage->name, read_s, [&] {
      std::string t;
      for (const auto& w : work.items)
        if (w.count > 0) t += w.key() + ": " + std::to_string(w.count) + " x " + std::to_string(t_s(w)) + " s; ";
      return t;
    }());
    rows.push_back({p.stage->name, work.units, s});
    total += s;
  }
  const double probe_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::cout << "run: expected about " << format_duration(total) << " (timed in " << format_duration(probe_s)
            << "; plots and checkpoint writes not counted):" << std::endl;
  for (const auto& r : rows) {
    std::cout << "  " << r.stage << std::string(r.stage.size() < 10 ? 10 - r.stage.size() : 1, ' ')
              << format_duration(r.seconds) << "  (" << r.units << ")" << std::endl;
  }
  return total;
}

}  // namespace

double estimate_run(const std::vector<PlannedStage>& plan, bool advisory) {
  if (!advisory) return estimate_or_throw(plan);
  try {
    return estimate_or_throw(plan);
  } catch (const std::exception& e) {  // rarlhf's errors and LibTorch's
    // Advisory only: a stage that cannot start fails with its own error, from the child that runs it.
    std::cout << "run: no time estimate: " << e.what() << std::endl;
    return std::nan("");
  }
}

}  // namespace rarlhf::cli
