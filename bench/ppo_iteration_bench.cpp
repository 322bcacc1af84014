// One PPO (RA-RLHF) iteration on CPU, by stage: PPOTrainer::step() on a random-init tiny GPT-2 with the
// real vocabulary (V = 50257: the LM head, the token log-probs and their backward are where the time
// goes), with ppo.custom_kernels on and off, timed alternately so that machine noise hits both alike.
// bench/ppo_eager.py runs the same iteration in eager PyTorch; scripts/bench_ppo.sh runs both and prints
// the ratios. Prints one JSON object (medians per stage, seconds) on stdout.
//   ppo_iteration_bench --tokenizer DIR [--iters N] [--warmup W]
// DIR holds GPT-2's vocab.json + merges.txt (the reward decodes responses to text, as in training).
// Env: RARLHF_BENCH_THREADS (default all cores); shape/workload overrides RARLHF_BENCH_LAYERS (2),
// RARLHF_BENCH_EMBD (128), RARLHF_BENCH_HEADS (4), RARLHF_BENCH_BATCH (16), RARLHF_BENCH_MINI_BATCH (8),
// RARLHF_BENCH_PROMPT (16), RARLHF_BENCH_NEW (16), RARLHF_BENCH_ALPHA (1.0: every episode kept, the same
// work as a PPO step without risk selection; 0.4 trains on the 40% lowest-return episodes only);
// RARLHF_BENCH_MODES (both | custom | plain: which of ppo.custom_kernels on / off to run);
// RARLHF_BENCH_PROFILE=PREFIX runs one more iteration per mode under the LibTorch profiler
// (PREFIX.{custom,plain}.trace.json).
// Also reports the cost of one optimiser update (zero_grad + Adam step) over the policy's parameters.
#include <ATen/Parallel.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "rarlhf/model/gpt2.h"
#include "rarlhf/common/error.h"
#include "rarlhf/train/fused_adam.h"
#include "rarlhf/train/ppo_trainer.h"

// The legacy chrome-trace profiler (RARLHF_BENCH_PROFILE); newer LibTorch releases may drop the header.
#if __has_include(<torch/csrc/autograd/profiler_legacy.h>)
#include <torch/csrc/autograd/profiler_legacy.h>
#define RARLHF_BENCH_HAVE_PROFILER 1
#endif

namespace {

using rarlhf::BpeTokenizer;

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoll(v) : fallback;
}

double env_double(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atof(v) : fallback;
}

// The toy reward (costs ~nothing): occurrences of kTarget in the decoded response. ppo_eager.py
// counts the same byte string in the same decoding.
constexpr const char* kTarget = " the";

class CountReward : public rarlhf::RewardModel {
 public:
  std::vector<double> score(const std::vector<std::string>& texts) override {
    std::vector<double> out;
    out.reserve(texts.size());
    const std::string target = kTarget;
    for (const auto& t : texts) {
      double n = 0;
      for (size_t p = t.find(target); p != std::string::npos; p = t.find(target, p + target.size())) n += 1;
      out.push_back(n);
    }
    return out;
  }
  std::string describe() const override { return std::string("count('") + kTarget + "')"; }
};

struct Workload {
  int64_t layers, embd, heads, batch, mini_batch, prompt, new_tokens;
  double alpha;
};

rarlhf::Config bench_config(const Workload& w, bool custom) {
  rarlhf::Config c;
  c.run.out_dir = (std::filesystem::temp_directory_path() / "rarlhf_ppo_bench").string();  // step() writes nothing
  c.run.seed = 1;
  // Paper hyperparameters (ra-rlhf.md Table 5/6, configs/imdb.json) except the batch shape.
  c.ppo.batch_size = w.batch;
  c.ppo.mini_batch_size = w.mini_batch;
  c.ppo.ppo_epochs = 4;
  c.ppo.total_iterations = 100;
  c.ppo.learning_rate = 1.41e-5;
  c.ppo.init_kl_coef = 0.2;
  c.ppo.custom_kernels = custom;
  // Risk on, at the end of the schedule from iteration 1 on (n = 0, ceil(rho * M) = 1): every timed
  // iteration keeps k = ceil(alpha * B) episodes (iteration 0, the warm-up, keeps the whole batch).
  c.risk.enabled = true;
  c.risk.alpha = w.alpha;
  c.risk.n = 0;
  c.risk.rho = 0.01;
  c.generate.max_new_tokens = w.new_tokens;
  c.generate.min_new_tokens = w.new_tokens;  // fixed length, top_k 0, top_p 1 (paper)
  c.reward.input = "response";
  c.logging.progress = false;
  rarlhf::validate(c);
  return c;
}

std::unique_ptr<rarlhf::PPOTrainer> make_trainer(const Workload& w, bool custom, const BpeTokenizer& tok) {
  rarlhf::Gpt2Config gc;  // GPT-2 defaults: vocab 50257, 1024 positions, gelu_new
  gc.n_layer = w.layers;
  gc.n_embd = w.embd;
  gc.n_head = w.heads;
  torch::manual_seed(0);  // the same weights and prompts for both trainers
  rarlhf::Policy policy;
  policy.lm = rarlhf::Gpt2(gc);
  policy.value_head = rarlhf::ValueHead(w.embd);
  rarlhf::CausalLm ref = rarlhf::clone_lm(policy.lm);
  policy.lm->eval();
  // Random prompts of exactly w.prompt tokens (no EOS inside): no left padding, like ppo_eager.py.
  std::vector<rarlhf::Prompt> prompts;
  at::Tensor ids = torch::randint(0, gc.vocab_size - 1, {w.batch * 4, w.prompt}, torch::kLong);
  for (int64_t i = 0; i < ids.size(0); ++i) {
    std::vector<int64_t> row(ids[i].data_ptr<int64_t>(), ids[i].data_ptr<int64_t>() + w.prompt);
    prompts.push_back({tok.decode(row), row});
  }
  return std::make_unique<rarlhf::PPOTrainer>(bench_config(w, custom), std::move(prompts), std::move(policy),
                                              std::move(ref), std::make_unique<CountReward>(), tok,
                                              torch::kCPU);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Stage times of one step() record; "advantage" = total minus the four timed stages (per-token
// rewards, GAE, risk selection, whitening, KL controller and the metrics record), the same span
// bench/ppo_eager.py times (step() also records time/advantage for stages 4-6 alone).
std::map<std::string, double> stages(const nlohmann::json& rec) {
  std::map<std::string, double> s;
  for (const char* k : {"rollout", "score", "forward", "optimize", "total"}) s[k] = rec.at(std::string("time/") + k);
  s["advantage"] = s["total"] - s["rollout"] - s["score"] - s["forward"] - s["optimize"];
  return s;
}

// Seconds of one optimiser update (zero_grad + Adam step) over a copy of the policy's parameters
// (LM + value head): the per-minibatch cost that does not shrink with the minibatch. Median of 5.
// Opt = rarlhf::FusedAdam (what PPOTrainer uses) or torch::optim::Adam (LibTorch's, for comparison).
template <class Opt>
double optimizer_update_seconds(rarlhf::Policy& p) {
  std::vector<at::Tensor> params;
  for (auto* m : {static_cast<torch::nn::Module*>(p.lm.get()), static_cast<torch::nn::Module*>(p.value_head.get())}) {
    for (const auto& t : m->parameters()) params.push_back(t.detach().clone().set_requires_grad(true));
  }
  Opt opt(params, torch::optim::AdamOptions(1.41e-5));
  auto fill_grads = [&] {
    torch::NoGradGuard ng;
    for (auto& t : params) t.mutable_grad() = torch::randn_like(t) * 1e-3;
  };
  fill_grads();
  opt.step();  // allocates the moment buffers
  std::vector<double> secs;
  for (int i = 0; i < 5; ++i) {
    fill_grads();
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    opt.step();
    secs.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return median(secs);
}

int run(int argc, char** argv) {
  std::string tok_dir;
  int64_t iters = 5, warmup = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw rarlhf::ConfigError(a + ": needs a value");
      return argv[++i];
    };
    auto next_int = [&]() -> int64_t {
      const std::string v = next();
      char* end = nullptr;
      const long long n = std::strtoll(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0') throw rarlhf::ConfigError(a + ": '" + v + "' is not an integer");
      return n;
    };
    if (a == "--tokenizer") {
      tok_dir = next();
    } else if (a == "--iters") {
      iters = next_int();
    } else if (a == "--warmup") {
      warmup = next_int();
    } else {
      throw rarlhf::ConfigError("unknown argument " + a +
                                "; usage: ppo_iteration_bench --tokenizer DIR [--iters N] [--warmup W]");
    }
  }
  if (tok_dir.empty()) throw rarlhf::ConfigError("--tokenizer DIR (GPT-2 vocab.json + merges.txt) is required");
  if (iters < 1 || warmup < 0) throw rarlhf::ConfigError("--iters must be >= 1 and --warmup >= 0");
  const int threads = static_cast<int>(env_int("RARLHF_BENCH_THREADS", std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  const Workload w{env_int("RARLHF_BENCH_LAYERS", 2),     env_int("RARLHF_BENCH_EMBD", 128),
                   env_int("RARLHF_BENCH_HEADS", 4),      env_int("RARLHF_BENCH_BATCH", 16),
                   env_int("RARLHF_BENCH_MINI_BATCH", 8), env_int("RARLHF_BENCH_PROMPT", 16),
                   env_int("RARLHF_BENCH_NEW", 16),       env_double("RARLHF_BENCH_ALPHA", 1.0)};
  const BpeTokenizer tok = BpeTokenizer::from_dir(tok_dir);

  // One trainer per mode, identical weights and prompts; their iterations alternate (custom, plain, ...).
  const char* modes_env = std::getenv("RARLHF_BENCH_MODES");
  const std::string which = modes_env && *modes_env ? modes_env : "both";
  if (which != "both" && which != "custom" && which != "plain") {
    throw rarlhf::ConfigError("RARLHF_BENCH_MODES is '" + which + "'; use both, custom or plain");
  }
  std::vector<bool> modes;
  if (which != "plain") modes.push_back(true);
  if (which != "custom") modes.push_back(false);
  std::vector<std::unique_ptr<rarlhf::PPOTrainer>> trainers;
  for (const bool custom : modes) trainers.push_back(make_trainer(w, custom, tok));
  const size_t n_modes = modes.size();
  std::vector<std::map<std::string, std::vector<double>>> times(n_modes);
  std::vector<int64_t> keep(n_modes, 0);
  int64_t updates = 0;
  for (int64_t m = 0; m < warmup + iters; ++m) {
    for (size_t i = 0; i < n_modes; ++i) {
      const nlohmann::json rec = trainers[i]->step(m).record();
      keep[i] = rec.at("risk/keep_count").get<int64_t>();
      updates = rec.at("ppo/updates").get<int64_t>();
      if (m < warmup) continue;
      for (const auto& [k, v] : stages(rec)) times[i][k].push_back(v);
    }
  }
  // Optional: one more iteration per mode under the LibTorch profiler (chrome trace per mode).
  nlohmann::json profiled;
  if (const char* prefix = std::getenv("RARLHF_BENCH_PROFILE"); prefix && *prefix) {
    for (size_t i = 0; i < n_modes; ++i) {
      const std::string path = std::string(prefix) + (modes[i] ? ".custom" : ".plain") + ".trace.json";
      nlohmann::json rec;
#ifdef RARLHF_BENCH_HAVE_PROFILER
      {
        torch::autograd::profiler::RecordProfile guard(path);
        rec = trainers[i]->step(warmup + iters).record();
      }
#else
      throw rarlhf::ConfigError("RARLHF_BENCH_PROFILE: this LibTorch has no legacy profiler; unset it");
#endif
      profiled[modes[i] ? "custom" : "plain"] = {{"trace", path}, {"stages_s", stages(rec)}};
    }
  }
  nlohmann::json out = {{"impl", "rarlhf C++ (PPOTrainer::step)"},
                        {"torch", TORCH_VERSION},
                        {"threads", at::get_num_threads()},
                        {"iters", iters},
                        {"warmup", warmup},
                        {"n_layer", w.layers},
                        {"n_embd", w.embd},
                        {"n_head", w.heads},
                        {"vocab", 50257},
                        {"batch", w.batch},
                        {"mini_batch", w.mini_batch},
                        {"prompt", w.prompt},
                        {"new_tokens", w.new_tokens},
                        {"ppo_epochs", 4},
                        {"alpha", w.alpha},
                        {"keep", keep[0]},
                        {"updates", updates},
                        {"optimizer_update_s", optimizer_update_seconds<rarlhf::FusedAdam>(trainers[0]->policy())},
                        {"optimizer_update_libtorch_s", optimizer_update_seconds<torch::optim::Adam>(trainers[0]->policy())}};
  for (size_t i = 0; i < n_modes; ++i) {
    nlohmann::json med, all;
    for (const auto& [k, v] : times[i]) {
      med[k] = median(v);
      all[k] = v;
    }
    out[modes[i] ? "custom" : "plain"] = {{"median_s", med}, {"samples_s", all}, {"keep", keep[i]}};
  }
  if (!profiled.is_null()) out["profile"] = profiled;
  std::cout << out.dump() << std::endl;
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ppo_iteration_bench: error: %s\n", e.what());
    return 1;
  }
}
