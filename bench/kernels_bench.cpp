// CPU benchmarks of the custom kernels against their plain-LibTorch formulations, measured in the
// same run: token_logprobs forward+backward (fused vs log_softmax + gather, GPT-2's V = 50257) and
// gae_scan (fused row loop vs TRL's T-step tensor loop). scripts/bench_kernels.sh prints the ratios.
// Threads: RARLHF_BENCH_THREADS, default all cores (LibTorch starts with 1 here, DESIGN §5).
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <thread>

#include "rarlhf/kernels/ops.h"

namespace {

// Forward + backward of sum(logprobs * w), the shape of the PPO policy-gradient term.
void token_logprobs_fwd_bwd(benchmark::State& state, bool custom) {
  const int64_t rows = state.range(0), vocab = state.range(1);
  torch::manual_seed(0);
  auto logits = (torch::randn({rows, vocab}) * 3).requires_grad_(true);
  auto targets = torch::randint(vocab, {rows}, torch::kLong);
  auto w = torch::randn({rows});
  for (auto _ : state) {
    auto lp = rarlhf::token_logprobs(logits, targets, custom);
    (lp * w).sum().backward();
    benchmark::DoNotOptimize(logits.grad().data_ptr<float>());
    logits.mutable_grad() = torch::Tensor();  // fresh gradient buffer each step, as in training
  }
  state.SetBytesProcessed(state.iterations() * rows * vocab * static_cast<int64_t>(sizeof(float)));
}

void token_logprobs_fwd(benchmark::State& state, bool custom) {
  const int64_t rows = state.range(0), vocab = state.range(1);
  torch::manual_seed(0);
  auto logits = torch::randn({rows, vocab}) * 3;
  auto targets = torch::randint(vocab, {rows}, torch::kLong);
  torch::NoGradGuard no_grad;
  for (auto _ : state) benchmark::DoNotOptimize(rarlhf::token_logprobs(logits, targets, custom).data_ptr<float>());
  state.SetBytesProcessed(state.iterations() * rows * vocab * static_cast<int64_t>(sizeof(float)));
}

void gae(benchmark::State& state, bool custom) {
  const int64_t batch = state.range(0), steps = state.range(1);
  torch::manual_seed(0);
  auto r = torch::randn({batch, steps}), v = torch::randn({batch, steps}), m = torch::ones({batch, steps});
  for (auto _ : state) benchmark::DoNotOptimize(rarlhf::gae_scan(r, v, m, 1.0, 0.95, custom).first.data_ptr<float>());
}

// [B*T = 16*16, V], [8*48, V]: PPO minibatches of the CPU demo and of IMDB-length responses.
#define LOGPROB_SHAPES Args({16 * 16, 50257})->Args({8 * 48, 50257})->Unit(benchmark::kMillisecond)
// One GPT-2 weight product, y = x @ w (+ b): cpu_linear (isa) against BLAS (at::addmm / at::mm, the call
// eager PyTorch makes) for a decoding step (M = 8 rows) and a prefill (M = 512). Args: M, K, N, transposed.
void linear(benchmark::State& state, rarlhf::CpuLinearIsa isa) {
  const int64_t M = state.range(0), K = state.range(1), N = state.range(2);
  const bool nt = state.range(3) != 0;
  torch::manual_seed(0);
  const int64_t copies = state.range(4);  // distinct weights cycled through: > L3 = a decoding step's DRAM reads
  auto x = torch::randn({M, K});
  std::vector<torch::Tensor> ws;
  for (int64_t i = 0; i < copies; ++i) ws.push_back(nt ? torch::randn({N, K}) : torch::randn({K, N}));
  auto b = nt ? torch::Tensor() : torch::randn({N});
  torch::NoGradGuard no_grad;
  size_t next = 0;
  for (auto _ : state) {
    const auto& w = ws[next++ % ws.size()];
    at::Tensor y;
    if (isa == rarlhf::CpuLinearIsa::kReference) {
      y = nt ? torch::mm(x, w.t()) : torch::addmm(b, x, w);
    } else {
      y = rarlhf::cpu_linear(x, w, b, nt, isa);
    }
    benchmark::DoNotOptimize(y.data_ptr<float>());
  }
  state.SetBytesProcessed(state.iterations() * K * N * static_cast<int64_t>(sizeof(float)));  // weight bytes
  state.counters["GFLOPS"] = benchmark::Counter(2.0 * double(M * K * N) * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
// Decoding (8 rows): c_attn, c_fc, mlp c_proj, each cycling through 16 copies (150-190 MB, as a step's
// 12 layers come from DRAM), and the tied LM head; prefill (512 rows): c_fc, c_attn, LM head; scoring
// (512 rows): a BERT-base classifier's FFN layers in nn.Linear's [out, in] layout; a SmolLM2-135M
// decoding step (nn.Linear layout, 32 copies as its 30 layers): gate/up, down, q/o, k/v, tied LM head.
#define LINEAR_SHAPES                                                                                   \
  Args({8, 768, 2304, 0, 16})->Args({8, 768, 3072, 0, 16})->Args({8, 3072, 768, 0, 16})                \
      ->Args({8, 768, 50257, 1, 1})->Args({512, 768, 3072, 0, 1})->Args({512, 768, 2304, 0, 1})        \
      ->Args({512, 768, 50257, 1, 1})->Args({512, 768, 3072, 1, 1})->Args({512, 3072, 768, 1, 1})        \
      ->Args({8, 576, 1536, 1, 32})->Args({8, 1536, 576, 1, 32})->Args({8, 576, 576, 1, 32})           \
      ->Args({8, 576, 192, 1, 32})->Args({8, 576, 49152, 1, 1})->Unit(benchmark::kMicrosecond)
BENCHMARK_CAPTURE(linear, blas, rarlhf::CpuLinearIsa::kReference)->LINEAR_SHAPES;
BENCHMARK_CAPTURE(linear, avx512, rarlhf::CpuLinearIsa::kAvx512)->LINEAR_SHAPES;
BENCHMARK_CAPTURE(linear, avx2, rarlhf::CpuLinearIsa::kAvx2)->LINEAR_SHAPES;

BENCHMARK_CAPTURE(token_logprobs_fwd_bwd, fused, true)->LOGPROB_SHAPES;
BENCHMARK_CAPTURE(token_logprobs_fwd_bwd, plain, false)->LOGPROB_SHAPES;
BENCHMARK_CAPTURE(token_logprobs_fwd, fused, true)->LOGPROB_SHAPES;
BENCHMARK_CAPTURE(token_logprobs_fwd, plain, false)->LOGPROB_SHAPES;
BENCHMARK_CAPTURE(gae, fused, true)->Args({128, 48})->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(gae, plain, false)->Args({128, 48})->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
  if (const char* t = std::getenv("RARLHF_BENCH_THREADS")) threads = std::atoi(t);
  at::set_num_threads(std::max(1, threads));
  benchmark::AddCustomContext("torch_threads", std::to_string(at::get_num_threads()));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
