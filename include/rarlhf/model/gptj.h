// GPT-J (transformers' GPTJForCausalLM; the paper's 6B policy, Table 7): attention and MLP in parallel
// off one LayerNorm, interleaved ("rotate every two") RoPE on the first rotary_dim dims of each head,
// q/k/v/out projections without bias, untied lm_head with bias.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "rarlhf/model/causal_lm.h"

namespace rarlhf {

struct GptJConfig : LmConfig {
  int64_t rotary_dim = 0;  // 0 (HF: null) = the whole head
  int64_t n_inner = 0;     // 0 (HF: null) = 4 * n_embd
  double layer_norm_epsilon = 1e-5;
  std::string activation_function = "gelu_new";
  double initializer_range = 0.02;

  int64_t head_dim() const { return n_embd / n_head; }
  int64_t rotary() const { return rotary_dim > 0 ? rotary_dim : head_dim(); }
  int64_t inner() const { return n_inner > 0 ? n_inner : 4 * n_embd; }
  static GptJConfig from_json(const nlohmann::json& j, const std::string& origin);
  nlohmann::json to_json() const;
};

struct GptJLayer;

class GptJImpl : public CausalLmImpl {
 public:
  explicit GptJImpl(const GptJConfig& cfg);
  ~GptJImpl() override;
  at::Tensor forward_hidden(const at::Tensor& ids, const at::Tensor& attention_mask,
                            const at::Tensor& position_ids = {}, KVCache* cache = nullptr) override;
  at::Tensor lm_logits(const at::Tensor& hidden) override;
  // "transformer.h.N.attn.q_proj.weight", "lm_head.bias", ...; attn.bias/masked_bias buffers ignored.
  void load_hf_state(const TensorMap& tensors, const std::string& source) override;
  nlohmann::json hf_config() const override { return cfg_.to_json(); }
  const GptJConfig& config() const override { return cfg_; }
  std::shared_ptr<CausalLmImpl> make_empty() const override;
  at::Tensor embedding_weight() const override { return wte_; }

 private:
  GptJConfig cfg_;
  at::Tensor wte_, ln_f_w_, ln_f_b_, head_w_, head_b_;
  std::vector<std::unique_ptr<GptJLayer>> layers_;
  struct RopeState;
  std::shared_ptr<RopeState> rope_;
};
TORCH_MODULE(GptJ);

}  // namespace rarlhf
