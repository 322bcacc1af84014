// GPT-NeoX / Pythia (transformers' GPTNeoXForCausalLM): fused query_key_value laid out per head
// [heads, 3, head_dim], rotate-half RoPE on the first rotary_pct of each head, parallel residual
// (use_parallel_residual) or sequential, LayerNorms with bias, separate embed_out.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "rarlhf/model/causal_lm.h"

namespace rarlhf {

struct GptNeoXConfig : LmConfig {
  int64_t intermediate = 0;  // intermediate_size
  double rotary_pct = 0.25;
  double rope_theta = 10000.0;  // rotary_emb_base (or rope_parameters.rope_theta)
  nlohmann::json rope_scaling;
  double layer_norm_eps = 1e-5;
  std::string hidden_act = "gelu";
  bool use_parallel_residual = true;
  bool attention_bias = true;
  bool tie_word_embeddings = false;
  double initializer_range = 0.02;

  int64_t head_dim() const { return n_embd / n_head; }
  int64_t rotary_ndims() const { return static_cast<int64_t>(head_dim() * rotary_pct); }
  static GptNeoXConfig from_json(const nlohmann::json& j, const std::string& origin);
  nlohmann::json to_json() const;
};

struct GptNeoXLayer;

class GptNeoXImpl : public CausalLmImpl {
 public:
  explicit GptNeoXImpl(const GptNeoXConfig& cfg);
  ~GptNeoXImpl() override;
  at::Tensor forward_hidden(const at::Tensor& ids, const at::Tensor& attention_mask,
                            const at::Tensor& position_ids = {}, KVCache* cache = nullptr) override;
  at::Tensor lm_logits(const at::Tensor& hidden) override;
  // "gpt_neox.layers.N.attention.query_key_value.weight", "embed_out.weight", ...; the attention
  // bias/masked_bias/inv_freq buffers are ignored.
  void load_hf_state(const TensorMap& tensors, const std::string& source) override;
  nlohmann::json hf_config() const override { return cfg_.to_json(); }
  const GptNeoXConfig& config() const override { return cfg_; }
  std::shared_ptr<CausalLmImpl> make_empty() const override;
  at::Tensor embedding_weight() const override { return embed_in_; }

 private:
  GptNeoXConfig cfg_;
  at::Tensor embed_in_, ln_f_w_, ln_f_b_, embed_out_;  // embed_out_ undefined when tied
  std::vector<std::unique_ptr<GptNeoXLayer>> layers_;
  struct RopeState;
  std::shared_ptr<RopeState> rope_;
};
TORCH_MODULE(GptNeoX);

}  // namespace rarlhf
