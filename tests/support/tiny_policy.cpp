// See tiny_policy.h.
#include "support/tiny_policy.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "rarlhf/common/fs.h"
#include "rarlhf/model/gpt2.h"
#include "support/temp_dir.h"

namespace rarlhf::testing {

std::string tiny_vocab_dir() { return shared_data("tiny-gpt2-vocab21"); }

std::string write_tiny_gpt2(const std::string& dir, const TinyGpt2& spec) {
  nlohmann::json cfg = {{"model_type", "gpt2"},          {"n_layer", spec.n_layer},
                        {"n_head", spec.n_head},          {"n_embd", spec.n_embd},
                        {"n_positions", spec.n_positions}, {"vocab_size", spec.vocab_size},
                        {"layer_norm_epsilon", 1e-5},     {"activation_function", "gelu_new"}};
  if (spec.bos_eos_id >= 0) {
    cfg["bos_token_id"] = spec.bos_eos_id;
    cfg["eos_token_id"] = spec.bos_eos_id;
  }
  torch::manual_seed(spec.seed);
  Policy p;
  p.lm = Gpt2(Gpt2Config::from_json(cfg, "test"));
  p.value_head = ValueHead(spec.n_embd);
  save_policy(p, dir, spec.tokenizer_dir.empty() ? tiny_vocab_dir() : spec.tokenizer_dir);
  return dir;
}

std::string write_tiny_rl_run(const std::string& root, int64_t iterations) {
  write_tiny_gpt2(root + "/policy0");
  std::string prompts;
  for (const char* a : {"low", "newer", "wider", "lower", "new", "wide", "lowest"}) {
    for (const char* b : {" low", " newer wide", " wider", " lower lowest low", " new"}) {
      prompts += std::string(a) + b + "\n";
    }
  }
  write_file_atomic(root + "/prompts.txt", prompts);
  nlohmann::json c = {
      {"run", {{"seed", 3}, {"device", "cpu"}, {"threads", 1}, {"out_dir", root + "/unused"}}},
      {"model", {{"path", root + "/policy0"}, {"dtype", "float32"}}},
      {"data", {{"format", "lines"}, {"train_path", root + "/prompts.txt"}, {"min_chars", 0}, {"prompt_tokens", 8}}},
      {"reward", {{"type", "vader"}, {"lexicon", shared_data("sentiment-lexicons/vader_lexicon.txt")},
                  {"input", "response"}, {"scale", 3.0}}},
      {"ppo", {{"batch_size", 16}, {"mini_batch_size", 4}, {"ppo_epochs", 2}, {"learning_rate", 3e-3},
               {"total_iterations", iterations}, {"init_kl_coef", 0.05}}},
      {"risk", {{"enabled", true}, {"n", 1}, {"alpha", 0.25}, {"rho", 0.8}}},
      {"generate", {{"max_new_tokens", 6}, {"min_new_tokens", 2}}},
      {"logging", {{"progress", false}}}};
  const std::string path = root + "/tiny.json";
  write_file_atomic(path, c.dump(2));
  return path;
}

}  // namespace rarlhf::testing
