// Generation throughput of any causal-LM family (random weights from a config.json): B prompts of P
// random tokens, N new tokens sampled with the paper's settings (top_k 0, top_p 1, fixed length), KV
// cache. Prints one JSON line per repeat: {"tokens_per_s": ...}. scripts/bench_families.sh runs it in
// alternation with bench/hf_generate.py (transformers' generate on the same config and cores).
//   family_generate_bench CONFIG_JSON [--batch 8] [--prompt 64] [--new 48] [--repeats 3] [--threads N]
// RARLHF_BENCH_PROFILE=PATH runs one more generation under the LibTorch profiler (chrome trace at PATH).
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "rarlhf/generate/sampler.h"
#include "rarlhf/model/causal_lm.h"

#if __has_include(<torch/csrc/autograd/profiler_legacy.h>)
#include <torch/csrc/autograd/profiler_legacy.h>
#define RARLHF_BENCH_HAVE_PROFILER 1
#endif

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: family_generate_bench CONFIG_JSON [--batch B] [--prompt P] [--new N] [--repeats R] "
                         "[--threads T]\n");
    return 2;
  }
  int64_t B = 8, P = 64, N = 48, repeats = 3, threads = std::thread::hardware_concurrency();
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    const int64_t v = std::atoll(argv[i + 1]);
    if (k == "--batch") B = v;
    else if (k == "--prompt") P = v;
    else if (k == "--new") N = v;
    else if (k == "--repeats") repeats = v;
    else if (k == "--threads") threads = v;
    else {
      std::fprintf(stderr, "family_generate_bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  try {
    at::set_num_threads(static_cast<int>(threads));
    torch::manual_seed(0);
    rarlhf::CausalLm lm = rarlhf::make_causal_lm_from_file(argv[1]);
    lm->eval();
    const int64_t V = lm->config().vocab_size;
    auto ids = torch::randint(0, V, {B, P}, torch::TensorOptions().dtype(torch::kLong));
    std::vector<std::vector<int64_t>> prompts;
    for (int64_t b = 0; b < B; ++b) prompts.emplace_back(ids[b].data_ptr<int64_t>(), ids[b].data_ptr<int64_t>() + P);
    rarlhf::GenerateConfig cfg;
    cfg.max_new_tokens = cfg.min_new_tokens = N;
    const int64_t eos = lm->config().eos_token_id >= 0 ? lm->config().eos_token_id : 0;
    rarlhf::generate(lm, prompts, cfg, eos, 0);  // warm-up
    for (int64_t r = 0; r < repeats; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      auto res = rarlhf::generate(lm, prompts, cfg, eos, static_cast<uint64_t>(r + 1));
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::printf("{\"tokens_per_s\": %.2f, \"seconds\": %.4f, \"threads\": %lld}\n", double(B * N) / s, s,
                  static_cast<long long>(threads));
      std::fflush(stdout);
    }
    if (const char* path = std::getenv("RARLHF_BENCH_PROFILE"); path && *path) {
#ifdef RARLHF_BENCH_HAVE_PROFILER
      torch::autograd::profiler::RecordProfile guard(path);
      rarlhf::generate(lm, prompts, cfg, eos, 0);
#else
      throw std::runtime_error("RARLHF_BENCH_PROFILE: this LibTorch has no legacy profiler; unset it");
#endif
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "family_generate_bench: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
