// The Llama block family (transformers' LlamaForCausalLM, and MistralForCausalLM / Qwen2ForCausalLM,
// which are the same block with options): RMSNorm, rotate-half RoPE with rope_theta and llama3/linear
// scaling, SwiGLU MLP, grouped-query attention (num_key_value_heads), optional q/k/v (Qwen2) or
// attention/MLP biases, tied or untied LM head, head_dim when given. SmolLM2 is a Llama.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "rarlhf/model/causal_lm.h"

namespace rarlhf {

struct LlamaConfig : LmConfig {
  int64_t n_kv_head = 0;     // num_key_value_heads (= n_head when absent: no grouping)
  int64_t head_dim = 0;      // head_dim, else hidden_size / num_attention_heads
  int64_t intermediate = 0;  // intermediate_size
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  double partial_rotary_factor = 1.0;
  nlohmann::json rope_scaling;  // null or the scaling object (types default, linear, llama3)
  bool qkv_bias = false;        // Qwen2: true; Llama: attention_bias
  bool o_bias = false;          // Llama: attention_bias
  bool mlp_bias = false;
  std::string hidden_act = "silu";
  bool tie_word_embeddings = false;
  int64_t sliding_window = 0;  // 0 = none; sequences longer than the window are refused (n_positions)
  double initializer_range = 0.02;

  // Parses + validates (model_type llama, mistral or qwen2); ConfigError "<origin>: <key>: ...".
  static LlamaConfig from_json(const nlohmann::json& j, const std::string& origin);
  nlohmann::json to_json() const;  // config.json for <Family>ForCausalLM
};

struct LlamaLayer;

class LlamaImpl : public CausalLmImpl {
 public:
  explicit LlamaImpl(const LlamaConfig& cfg);  // normal(0, initializer_range) init from torch's RNG
  ~LlamaImpl() override;
  at::Tensor forward_hidden(const at::Tensor& ids, const at::Tensor& attention_mask,
                            const at::Tensor& position_ids = {}, KVCache* cache = nullptr) override;
  at::Tensor lm_logits(const at::Tensor& hidden) override;
  // "model.layers.N.self_attn.q_proj.weight", ... as save_pretrained writes them; lm_head.weight is
  // skipped when tied (some files keep it), inv_freq buffers are ignored.
  void load_hf_state(const TensorMap& tensors, const std::string& source) override;
  nlohmann::json hf_config() const override { return cfg_.to_json(); }
  const LlamaConfig& config() const override { return cfg_; }
  std::shared_ptr<CausalLmImpl> make_empty() const override;
  at::Tensor embedding_weight() const override { return embed_; }

 private:
  LlamaConfig cfg_;
  at::Tensor embed_, norm_w_, lm_head_;  // lm_head_ undefined when tied
  std::vector<std::unique_ptr<LlamaLayer>> layers_;
  struct RopeState;
  std::shared_ptr<RopeState> rope_;
};
TORCH_MODULE(Llama);

}  // namespace rarlhf
