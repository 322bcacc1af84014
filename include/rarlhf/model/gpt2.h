// GPT-2 decoder (Radford et al. 2019; layout of Hugging Face transformers' GPT2LMHeadModel) with a
// KV cache, left-padding-aware attention/positions, and TRL's scalar value head. Weights keep HF's
// Conv1D layout [in, out] so checkpoints load and save without transposes; the LM head is tied to wte.
// Dropout (embd/attn/resid_pdrop) only when set_dropout() asked for it and the module is training:
// SFT; RLHF needs the log-probs of rollout and update passes to agree.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "rarlhf/model/causal_lm.h"

namespace rarlhf {

// The fields of a Hugging Face GPT-2 config.json that change the computation (the shared ones are in
// LmConfig, with GPT-2's defaults). Values the implementation does not support (other activations,
// cross-attention, reordered/upcast attention, per-layer attention scaling, untied LM head) are
// ConfigErrors naming the key.
struct Gpt2Config : LmConfig {
  int64_t n_inner = 0;                          // MLP width; 0 = 4 * n_embd (HF: null)
  double layer_norm_epsilon = 1e-5;
  std::string activation_function = "gelu_new";  // gelu_new | gelu_pytorch_tanh | gelu_fast (tanh form) | gelu (erf)
  bool scale_attn_weights = true;                // scores / sqrt(head_dim)
  bool tie_word_embeddings = true;               // only tied is supported

  Gpt2Config();  // GPT-2 small: 12 layers, 12 heads, 768 wide, 1024 positions, vocab 50257, eos 50256
  int64_t inner() const { return n_inner > 0 ? n_inner : 4 * n_embd; }
  // Parses + validates; throws ConfigError "<path>: <key>: ..." / IoError when unreadable.
  static Gpt2Config from_json(const nlohmann::json& j, const std::string& origin);
  static Gpt2Config from_file(const std::string& config_json);
  // A config.json transformers loads as GPT2LMHeadModel (model_type gpt2, architectures set).
  nlohmann::json to_json() const;
};

struct Gpt2Layer;  // tensor handles of one transformer block (defined in gpt2.cpp)

class Gpt2Impl : public CausalLmImpl {
 public:
  explicit Gpt2Impl(const Gpt2Config& cfg);  // HF-style random init (normal 0.02) from torch's RNG
  ~Gpt2Impl() override;

  at::Tensor forward_hidden(const at::Tensor& ids, const at::Tensor& attention_mask,
                            const at::Tensor& position_ids = {}, KVCache* cache = nullptr) override;
  at::Tensor lm_logits(const at::Tensor& hidden) override;  // [..., C] -> [..., V] float32, tied to wte

  // Keys with or without the "transformer." prefix; Conv1D weights [in, out]. Ignores lm_head.weight
  // (tied), attn.bias/attn.masked_bias buffers and v_head.*; any other unknown or missing key, or a
  // shape mismatch, is an IoError naming `source` and the key.
  void load_hf_state(const TensorMap& tensors, const std::string& source = "state dict") override;
  // "transformer.<name>" as GPT2LMHeadModel's save_pretrained writes them (tied lm_head omitted).
  std::vector<std::pair<std::string, at::Tensor>> hf_state() override;
  nlohmann::json hf_config() const override { return cfg_.to_json(); }
  const Gpt2Config& config() const override { return cfg_; }
  std::shared_ptr<CausalLmImpl> make_empty() const override;
  at::Tensor embedding_weight() const override { return wte_; }
  at::Tensor wte() const { return wte_; }

 protected:
  bool applies_dropout() const override { return true; }

 private:
  Gpt2Config cfg_;
  at::Tensor wte_, wpe_, ln_f_w_, ln_f_b_;
  std::vector<std::unique_ptr<Gpt2Layer>> layers_;
};
TORCH_MODULE(Gpt2);

// A deep copy (same config, weights, device and dtype).
Gpt2 clone_gpt2(Gpt2& model);

}  // namespace rarlhf
