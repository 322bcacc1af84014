// Test support: a random GPT-2 saved in Hugging Face layout, the policy directory the trainer,
// evaluator and distributed tests start from. The default is the 2-layer model over the 21-token
// toy vocabulary of ../shared/data/tiny-gpt2-vocab21.
#pragma once
#include <cstdint>
#include <string>

namespace rarlhf::testing {

// ../shared/data/tiny-gpt2-vocab21: tokenizer files of the toy vocabulary (ids 0-20, 20 = <|endoftext|>).
std::string tiny_vocab_dir();

struct TinyGpt2 {
  int64_t n_layer = 2;
  int64_t n_head = 2;
  int64_t n_embd = 16;
  int64_t n_positions = 64;
  int64_t vocab_size = 21;
  int64_t bos_eos_id = 20;    // bos_token_id = eos_token_id in config.json; -1 = leave both out
  uint64_t seed = 0;          // torch::manual_seed before the weights are drawn
  std::string tokenizer_dir;  // tokenizer files copied beside the weights; "" = tiny_vocab_dir()
};

// Writes a random GPT-2 of `spec` (config.json, model.safetensors, value head, tokenizer files) to
// `dir`; returns `dir`. Reseeds torch's global generator (spec.seed).
std::string write_tiny_gpt2(const std::string& dir, const TinyGpt2& spec = {});

// A whole tiny RA-RLHF run for the CLI, launcher and Slurm tests, under `root`: a tiny GPT-2 in
// root/policy0, 35 prompts over the toy vocabulary in root/prompts.txt, and root/tiny.json (VADER
// reward on the response, where "low"/"lowest" are negative words; B=16, 2 PPO epochs, 1 thread,
// `iterations` iterations, progress off). Returns the config's path. Needs ../shared/data.
std::string write_tiny_rl_run(const std::string& root, int64_t iterations);

}  // namespace rarlhf::testing
