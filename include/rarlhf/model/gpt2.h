// GPT-2 decoder (Radford et al. 2019; layout of Hugging Face transformers' GPT2LMHeadModel) with a
// KV cache, left-padding-aware attention/positions, and TRL's scalar value head. Weights keep HF's
// Conv1D layout [in, out] so checkpoints load and save without transposes; the LM head is tied to wte.
// No dropout: RLHF needs the logprobs of rollout and update passes to agree. Policy = LM + value head
// in one Hugging Face directory (model.safetensors + value_head.safetensors).
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

#include "rarlhf/io/safetensors.h"

namespace rarlhf {

// The fields of a Hugging Face GPT-2 config.json that change the computation. Values the
// implementation does not support (other activations, cross-attention, reordered/upcast attention,
// per-layer attention scaling, untied LM head) are ConfigErrors naming the key.
struct Gpt2Config {
  int64_t n_layer = 12;
  int64_t n_head = 12;
  int64_t n_embd = 768;
  int64_t n_positions = 1024;
  int64_t vocab_size = 50257;
  int64_t n_inner = 0;                          // MLP width; 0 = 4 * n_embd (HF: null)
  double layer_norm_epsilon = 1e-5;
  std::string activation_function = "gelu_new";  // gelu_new | gelu_pytorch_tanh | gelu_fast (tanh form) | gelu (erf)
  bool scale_attn_weights = true;                // scores / sqrt(head_dim)
  bool tie_word_embeddings = true;               // only tied is supported
  int64_t bos_token_id = 50256;
  int64_t eos_token_id = 50256;
  nlohmann::json source;  // the config.json read (other keys are carried through to_json unchanged)

  int64_t inner() const { return n_inner > 0 ? n_inner : 4 * n_embd; }
  // Parses + validates; throws ConfigError "<path>: <key>: ..." / IoError when unreadable.
  static Gpt2Config from_json(const nlohmann::json& j, const std::string& origin);
  static Gpt2Config from_file(const std::string& config_json);
  // A config.json transformers loads as GPT2LMHeadModel (model_type gpt2, architectures set).
  nlohmann::json to_json() const;
};

// Per layer keys/values [B, H, T, D]. reserve() preallocates `capacity` positions so that decoding
// writes in place instead of concatenating (keys[l] is then a view of the filled part).
struct KVCache {
  std::vector<at::Tensor> keys, values;
  int64_t capacity = 0;  // 0 = grow by concatenation
  std::vector<at::Tensor> key_buffers, value_buffers;
  void reserve(int64_t total_positions) { capacity = total_positions; }
  int64_t length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }
};

struct Gpt2Layer;  // tensor handles of one transformer block (defined in gpt2.cpp)

class Gpt2Impl : public torch::nn::Module {
 public:
  explicit Gpt2Impl(const Gpt2Config& cfg);  // HF-style random init (normal 0.02) from torch's RNG
  ~Gpt2Impl() override;

  // ids [B,T]; attention_mask [B, past+T] (1 = token, 0 = left padding) or undefined = all ones;
  // position_ids [B,T] or undefined = derived from the mask (cumsum - 1, pads clamped to 0,
  // continuing the cache). Returns the final hidden states [B,T,C] (after ln_f), in the weight dtype.
  at::Tensor forward_hidden(const at::Tensor& ids, const at::Tensor& attention_mask,
                            const at::Tensor& position_ids = {}, KVCache* cache = nullptr);
  at::Tensor lm_logits(const at::Tensor& hidden);  // [..., C] -> [..., V] float32, tied to wte

  // Keys with or without the "transformer." prefix; Conv1D weights [in, out]. Ignores lm_head.weight
  // (tied), attn.bias/attn.masked_bias buffers and v_head.*; any other unknown or missing key, or a
  // shape mismatch, is an IoError naming `source` and the key.
  void load_hf_state(const TensorMap& tensors, const std::string& source = "state dict");
  // "transformer.<name>" as GPT2LMHeadModel's save_pretrained writes them (tied lm_head omitted).
  std::vector<std::pair<std::string, at::Tensor>> hf_state();
  const Gpt2Config& config() const { return cfg_; }
  at::Tensor wte() const { return wte_; }

 private:
  Gpt2Config cfg_;
  at::Tensor wte_, wpe_, ln_f_w_, ln_f_b_;
  std::vector<std::unique_ptr<Gpt2Layer>> layers_;
};
TORCH_MODULE(Gpt2);

// TRL's AutoModelForCausalLMWithValueHead head: Linear(n_embd, 1) ("summary"), kept in float32.
class ValueHeadImpl : public torch::nn::Module {
 public:
  explicit ValueHeadImpl(int64_t n_embd);
  at::Tensor forward(const at::Tensor& hidden);  // [B,T,C] -> [B,T] float32
  torch::nn::Linear summary{nullptr};
};
TORCH_MODULE(ValueHead);

// A deep copy (same config, weights, device and dtype), e.g. the frozen reference policy.
Gpt2 clone_gpt2(Gpt2& model);

struct Policy {
  Gpt2 lm{nullptr};
  ValueHead value_head{nullptr};
  std::string dir;
};

// dtype: "float32" | "bfloat16" | "float16" (LM weights; the value head and logits stay float32).
// Reads config.json + model.safetensors (or a sharded model.safetensors.index.json). The value head
// comes from value_head.safetensors (or v_head.* keys in the weights) when present, else a fresh
// head initialised from torch's default generator (seed it with torch::manual_seed first).
Policy load_policy(const std::string& dir, const std::string& dtype, const at::Device& device);

// A freshly initialised policy from <dir>/config.json alone (no weights read): pre-training and smoke
// runs. Draws from torch's default generator (seed it with torch::manual_seed first); same checks on
// dtype and the directory as load_policy.
Policy init_policy(const std::string& dir, const std::string& dtype, const at::Device& device);

// Writes a directory that transformers' GPT2LMHeadModel.from_pretrained loads unchanged: config.json,
// model.safetensors (HF names), value_head.safetensors, and the tokenizer files found in
// tokenizer_src_dir ("" = none). Written into <out_dir>.tmp, then renamed over out_dir.
void save_policy(Policy& p, const std::string& out_dir, const std::string& tokenizer_src_dir);

// "float32" | "bfloat16" | "float16" -> scalar type; ConfigError naming `field` otherwise.
at::ScalarType parse_dtype(const std::string& dtype, const std::string& field = "model.dtype");

}  // namespace rarlhf
