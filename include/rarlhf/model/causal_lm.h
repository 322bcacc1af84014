// One interface for every decoder-only language model rarlhf trains (GPT-2, GPT-J, GPT-NeoX/Pythia,
// Llama/Mistral/Qwen2/SmolLM2): forward to final hidden states with a KV cache and left padding, logits
// on the positions a caller chooses, HF state in and out. What a family *is* (config keys, tensor names)
// lives in its own file (gpt2.cpp, gptj.cpp, gpt_neox.cpp, llama.cpp); the blocks they share (attention
// with GQA, RoPE variants, norms) in src/model/blocks.*. The policy (LM + TRL value head) and its
// directory format are family-independent and live here.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "rarlhf/io/safetensors.h"

namespace rarlhf {

// What every family shares, read from its config.json (names as GPT-2 spells them; `n_embd` is the
// hidden size, `n_positions` the longest sequence the model accepts).
struct LmConfig {
  std::string model_type;  // "gpt2" | "gptj" | "gpt_neox" | "llama" | "mistral" | "qwen2"
  int64_t n_layer = 0;
  int64_t n_head = 0;
  int64_t n_embd = 0;
  int64_t n_positions = 0;
  int64_t vocab_size = 0;
  int64_t bos_token_id = -1;           // -1 = none
  int64_t eos_token_id = -1;           // the first of eos_token_ids; -1 = none
  std::vector<int64_t> eos_token_ids;  // config.json / generation_config.json may list several
  int64_t pad_token_id = -1;           // -1 = none
  nlohmann::json source;               // the config.json read (unknown keys are written back unchanged)
  virtual ~LmConfig() = default;
};

// Per layer keys/values [B, H_kv, T, D]. reserve() preallocates `capacity` positions so that decoding
// writes in place instead of concatenating (keys[l] is then a view of the filled part).
struct KVCache {
  std::vector<at::Tensor> keys, values;
  int64_t capacity = 0;  // 0 = grow by concatenation
  std::vector<at::Tensor> key_buffers, value_buffers;
  void reserve(int64_t total_positions) { capacity = total_positions; }
  int64_t length() const { return keys.empty() || !keys[0].defined() ? 0 : keys[0].size(2); }
};

// Dropout probabilities a forward applies while the module is in training mode (torch's train()):
// input embeddings, attention probabilities, and each residual branch's output. Zero unless set:
// RLHF wants the log-probs of its rollout and update passes to agree; SFT turns them on, as HF's
// Trainer trains with the checkpoint's dropout.
struct DropoutRates {
  double embd = 0, attn = 0, resid = 0;
  bool any() const { return embd > 0 || attn > 0 || resid > 0; }
};

// One linear layer of a family as PEFT names it: its module path in the family's *ForCausalLM
// ("model.layers.0.self_attn.q_proj", "transformer.h.0.attn.c_attn"), in/out features, and whether
// the weight is stored [in, out] (HF's Conv1D, GPT-2: PEFT's fan_in_fan_out) rather than [out, in].
struct LinearSite {
  std::string name;
  int64_t in = 0, out = 0;
  bool conv1d = false;
  at::Tensor weight;  // the base weight (a handle on the parameter)
};

class LoraAdaptersImpl;  // rarlhf/model/lora.h

class CausalLmImpl : public torch::nn::Module {
 public:
  ~CausalLmImpl() override;

  // ids [B,T]; attention_mask [B, past+T] (1 = token, 0 = left padding) or undefined = all ones;
  // position_ids [B,T] or undefined = derived from the mask (cumsum - 1, pads clamped to 0,
  // continuing the cache). Returns the final hidden states [B,T,C] (after the final norm), in the
  // weight dtype.
  virtual at::Tensor forward_hidden(const at::Tensor& ids, const at::Tensor& attention_mask,
                                    const at::Tensor& position_ids = {}, KVCache* cache = nullptr) = 0;
  virtual at::Tensor lm_logits(const at::Tensor& hidden) = 0;  // [..., C] -> [..., V] float32

  // Tensor names as the family's *ForCausalLM save_pretrained writes them. Unknown or missing keys and
  // shape mismatches are IoErrors naming `source` and the key.
  virtual void load_hf_state(const TensorMap& tensors, const std::string& source) = 0;
  // Default: the parameters under their registered names (families register HF's names).
  virtual std::vector<std::pair<std::string, at::Tensor>> hf_state();
  // A config.json transformers loads as this family's *ForCausalLM.
  virtual nlohmann::json hf_config() const = 0;
  virtual const LmConfig& config() const = 0;
  // The same architecture, freshly initialised (for deep copies).
  virtual std::shared_ptr<CausalLmImpl> make_empty() const = 0;
  // The input embedding matrix [V, C] (device and dtype of the weights).
  virtual at::Tensor embedding_weight() const = 0;

  at::Device device() const { return embedding_weight().device(); }
  at::ScalarType dtype() const { return embedding_weight().scalar_type(); }

  // The rates the checkpoint's config.json asks for (gpt2/gptj: embd_pdrop, attn_pdrop, resid_pdrop;
  // gpt_neox: hidden_dropout, attention_dropout; llama family: attention_dropout; absent = HF's default).
  DropoutRates config_dropout() const;
  // Sets the rates. A family whose forward does not apply dropout (all but gpt2 today) refuses
  // non-zero rates with a ConfigError naming `field`, never ignores them.
  void set_dropout(const DropoutRates& rates, const std::string& field);
  const DropoutRates& dropout() const { return dropout_; }

  // Every linear layer LoRA may adapt (all but the embeddings and the LM head), in forward order.
  const std::vector<LinearSite>& linear_sites() const { return sites_; }
  // The LoRA adapters the forward adds (nullptr = none). They are a module of their own, not part of
  // parameters() / hf_state(): the base weights stay what the checkpoint holds. Attaching checks that
  // the adapters were built for these sites; see rarlhf/model/lora.h.
  void set_lora(std::shared_ptr<LoraAdaptersImpl> adapters);
  const std::shared_ptr<LoraAdaptersImpl>& lora() const { return lora_; }

  // Activation checkpointing per block (model.gradient_checkpointing): a forward that records
  // gradients keeps only each block's input and recomputes the block during backward (with the same
  // dropout masks), trading one more forward for the blocks' activations. Same gradients.
  void set_gradient_checkpointing(bool on) { checkpointing_ = on; }
  bool gradient_checkpointing() const { return checkpointing_; }

 protected:
  virtual bool applies_dropout() const { return false; }
  // The rates for this forward: the set ones in training mode, none in eval mode.
  DropoutRates active_dropout() const { return is_training() ? dropout_ : DropoutRates{}; }
  // Families declare each linear layer once (constructor) and pass every output through adapt():
  // y = W x (+ b) as computed, x the layer's input; returns y plus the LoRA update when an adapter
  // sits on `site` (PEFT: y + B(A(dropout(x))) * scaling, in the adapter's dtype, cast back to y's).
  int add_linear_site(std::string name, int64_t in, int64_t out, bool conv1d = false);
  at::Tensor adapt(int site, const at::Tensor& y, const at::Tensor& x) const;
  // One transformer block x -> block(x): checkpointed when enabled, gradients are being recorded and
  // no KV cache is in use, else called directly. `block` must own what it captures (it may run again
  // during backward, after the forward call returned).
  at::Tensor run_block(std::function<at::Tensor(const at::Tensor&)> block, const at::Tensor& x,
                       const KVCache* cache) const;

 private:
  DropoutRates dropout_;
  std::vector<LinearSite> sites_;
  std::shared_ptr<LoraAdaptersImpl> lora_;
  bool checkpointing_ = false;
};

// A holder for any family; a family's own holder (Gpt2, Llama, ...) converts to it.
class CausalLm : public torch::nn::ModuleHolder<CausalLmImpl> {
 public:
  CausalLm(std::nullptr_t) : torch::nn::ModuleHolder<CausalLmImpl>(nullptr) {}  // NOLINT: implicit like TORCH_MODULE
  template <typename T, std::enable_if_t<std::is_base_of<CausalLmImpl, T>::value, int> = 0>
  CausalLm(const torch::nn::ModuleHolder<T>& family)  // NOLINT: implicit on purpose
      : torch::nn::ModuleHolder<CausalLmImpl>(std::static_pointer_cast<CausalLmImpl>(family.ptr())) {}
  template <typename T, std::enable_if_t<std::is_base_of<CausalLmImpl, T>::value, int> = 0>
  CausalLm(std::shared_ptr<T> impl)  // NOLINT
      : torch::nn::ModuleHolder<CausalLmImpl>(std::static_pointer_cast<CausalLmImpl>(std::move(impl))) {}
  // A handle, like shared_ptr: a const holder still runs (and trains) the model it points at.
  CausalLmImpl* operator->() const { return ptr().get(); }
  CausalLmImpl& operator*() const { return *ptr(); }
};

// Reads config.json's model_type and builds that family, randomly initialised (HF-style normal 0.02)
// from torch's default generator. Unknown model_type or unsupported options are ConfigErrors naming
// `origin` and the key.
CausalLm make_causal_lm(const nlohmann::json& config, const std::string& origin);
CausalLm make_causal_lm_from_file(const std::string& config_json);
// A JSON file (config.json, generation_config.json) parsed; IoError naming it when unreadable or not JSON.
nlohmann::json read_json_file(const std::string& path);
// The families make_causal_lm accepts, for messages and docs ("gpt2, gptj, ...").
std::string supported_model_types();

// A deep copy (same config, weights, device and dtype), e.g. the frozen reference policy.
CausalLm clone_lm(const CausalLm& model);

// TRL's AutoModelForCausalLMWithValueHead head: Linear(n_embd, 1) ("summary"), kept in float32.
class ValueHeadImpl : public torch::nn::Module {
 public:
  explicit ValueHeadImpl(int64_t n_embd);
  at::Tensor forward(const at::Tensor& hidden);  // [B,T,C] -> [B,T] float32
  torch::nn::Linear summary{nullptr};
  double dropout = 0;  // on the hidden states, in training mode (TRL's summary_dropout_prob); ppo.dropout only
};
TORCH_MODULE(ValueHead);

struct Policy {
  CausalLm lm{nullptr};
  ValueHead value_head{nullptr};
  std::string dir;
};

// Copies v_head.summary.{weight,bias} of `tensors` (read from `source`) into `head`; IoErrors name
// `source` for a missing, mis-shaped, non-float or non-finite tensor.
void load_value_head_tensors(ValueHeadImpl& head, const TensorMap& tensors, const std::string& source);

// dtype: "float32" | "bfloat16" | "float16" (LM weights; the value head and logits stay float32).
// Reads config.json (any supported family) + model.safetensors (or a sharded
// model.safetensors.index.json), whatever dtype the file stores. eos/bos/pad ids missing from
// config.json are taken from generation_config.json when present. The value head comes from
// value_head.safetensors (or v_head.* keys in the weights) when present, else a fresh head initialised
// from torch's default generator (seed it with torch::manual_seed first).
Policy load_policy(const std::string& dir, const std::string& dtype, const at::Device& device);

// A freshly initialised policy from <dir>/config.json alone (no weights read): pre-training and smoke
// runs. Draws from torch's default generator (seed it with torch::manual_seed first); same checks on
// dtype and the directory as load_policy.
Policy init_policy(const std::string& dir, const std::string& dtype, const at::Device& device);

// Writes a directory that transformers' AutoModelForCausalLM.from_pretrained loads unchanged:
// config.json, model.safetensors (HF names), value_head.safetensors, and the tokenizer files found in
// tokenizer_src_dir ("" = none). Written into <out_dir>.tmp, then renamed over out_dir.
void save_policy(Policy& p, const std::string& out_dir, const std::string& tokenizer_src_dir);

// "float32" | "bfloat16" | "float16" -> scalar type; ConfigError naming `field` otherwise.
at::ScalarType parse_dtype(const std::string& dtype, const std::string& field = "model.dtype");

}  // namespace rarlhf
