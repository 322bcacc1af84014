// See tiny_policy.h.
#include "support/tiny_policy.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

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

}  // namespace rarlhf::testing
