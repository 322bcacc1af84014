// GPT-2 generation throughput at GPT-2-small shape (12 layers, 768 wide, 12 heads, vocab 50257;
// random weights) for B=8 prompts of 64 tokens and 48 new tokens (the IMDB rollout of the paper):
//   BM_Forward            one full forward + LM head over [8, 64]              (tokens/s)
//   BM_GenerateKvCache    rarlhf::generate, KV cache, sampling                 (new tokens/s)
//   BM_GenerateRecompute  the same sampling, re-running the whole sequence per token (no cache)
// scripts/bench_generate.sh runs it next to bench/gpt2_eager.py (eager PyTorch) and prints ratios.
// Threads: RARLHF_BENCH_THREADS (default: all cores). Shape: RARLHF_BENCH_LAYERS overrides n_layer.
// Device: RARLHF_BENCH_DEVICE=cpu (default) | cuda.
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <cstdlib>
#include <thread>

#include "rarlhf/generate/sampler.h"
#include "rarlhf/model/gpt2.h"

namespace {

constexpr int64_t kBatch = 8, kPrompt = 64, kNew = 48;

at::Device bench_device() {
  const char* v = std::getenv("RARLHF_BENCH_DEVICE");
  return at::Device(v && *v ? v : "cpu");
}

void sync() {
  if (bench_device().is_cuda()) torch::cuda::synchronize();
}

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoll(v) : fallback;
}

rarlhf::Gpt2& model() {
  static rarlhf::Gpt2 m = [] {
    at::set_num_threads(static_cast<int>(env_int("RARLHF_BENCH_THREADS", std::thread::hardware_concurrency())));
    torch::manual_seed(0);
    rarlhf::Gpt2Config cfg;  // GPT-2 small defaults
    cfg.n_layer = env_int("RARLHF_BENCH_LAYERS", 12);
    rarlhf::Gpt2 g(cfg);
    g->to(bench_device());
    g->eval();
    return g;
  }();
  return m;
}

std::vector<std::vector<int64_t>> prompts() {
  auto ids = torch::randint(0, 50256, {kBatch, kPrompt}, torch::TensorOptions().dtype(torch::kLong));
  std::vector<std::vector<int64_t>> out;
  for (int64_t b = 0; b < kBatch; ++b) out.emplace_back(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + kPrompt);
  return out;
}

rarlhf::GenerateConfig gen_cfg() {
  rarlhf::GenerateConfig c;
  c.max_new_tokens = c.min_new_tokens = kNew;  // paper: fixed-length responses, top_k 0, top_p 1
  return c;
}

void BM_Forward(benchmark::State& state) {
  auto& m = model();
  torch::NoGradGuard g;
  auto ids = torch::randint(0, 50256, {kBatch, kPrompt}).to(bench_device());
  for (auto _ : state) {
    auto logits = m->lm_logits(m->forward_hidden(ids, {}));
    sync();
    benchmark::DoNotOptimize(logits.data_ptr<float>());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(double(kBatch * kPrompt), benchmark::Counter::kIsIterationInvariantRate);
}

void BM_GenerateKvCache(benchmark::State& state) {
  auto& m = model();
  auto p = prompts();
  uint64_t seed = 1;
  for (auto _ : state) {
    auto res = rarlhf::generate(m, p, gen_cfg(), 50256, seed++);
    sync();
    benchmark::DoNotOptimize(res.response_ids.data_ptr<int64_t>());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(double(kBatch * kNew), benchmark::Counter::kIsIterationInvariantRate);
}

// Baseline without a cache: every step re-runs the whole [B, P + t] sequence; same logits filter and
// inverse-CDF sampling as generate().
void BM_GenerateRecompute(benchmark::State& state) {
  auto& m = model();
  auto p = prompts();
  auto cfg = gen_cfg();
  torch::NoGradGuard g;
  uint64_t seed = 1;
  for (auto _ : state) {
    auto gen = at::detail::createCPUGenerator(seed++);
    std::vector<at::Tensor> cols;
    for (auto& row : p) cols.push_back(torch::tensor(row));
    at::Tensor seq = torch::stack(cols).to(bench_device());  // [B, P]
    for (int64_t t = 0; t < kNew; ++t) {
      auto hidden = m->forward_hidden(seq, {}).select(1, seq.size(1) - 1);  // [B, C]
      auto logits = rarlhf::process_logits(m->lm_logits(hidden), cfg, 50256, t < cfg.min_new_tokens);
      auto cdf = torch::softmax(logits, 1).to(torch::kDouble).cumsum(1);
      auto u = at::rand({kBatch, 1}, gen, torch::TensorOptions().dtype(torch::kDouble)).to(bench_device());
      auto tok = torch::searchsorted(cdf, u * cdf.narrow(1, cdf.size(1) - 1, 1), false, true).clamp_max(50256);
      seq = torch::cat({seq, tok}, 1);
    }
    sync();
    benchmark::DoNotOptimize(seq.data_ptr<int64_t>());
  }
  state.counters["tokens_per_s"] = benchmark::Counter(double(kBatch * kNew), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(BM_Forward)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GenerateKvCache)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_GenerateRecompute)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1)->Repetitions(1);
BENCHMARK_MAIN();
