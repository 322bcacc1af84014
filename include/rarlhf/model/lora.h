// LoRA adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") on the linear
// layers of any causal-LM family, read and written in PEFT's own format so that `peft` loads ours and
// we load theirs:
//   adapter_config.json        {"peft_type": "LORA", "r", "lora_alpha", "lora_dropout", "target_modules",
//                               "fan_in_fan_out", "use_rslora", "bias": "none", "base_model_name_or_path", ...}
//   adapter_model.safetensors  base_model.model.<module path>.lora_A.weight [r, in]
//                              base_model.model.<module path>.lora_B.weight [out, r]
// The update of an adapted layer is y = W x + b + B A dropout(x) * scaling, scaling = lora_alpha / r
// (use_rslora: lora_alpha / sqrt(r)); the base weights stay frozen and are never written by a LoRA run.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <memory>
#include <string>
#include <vector>

#include "rarlhf/model/causal_lm.h"

namespace rarlhf {

struct LoraSettings {
  int64_t r = 0;
  double alpha = 8;    // PEFT's lora_alpha default
  double dropout = 0;  // on the adapter's input, in training mode
  // PEFT's target_modules: a module matches when its path equals a name or ends in "." + name; the one
  // name "all-linear" takes every linear layer but the LM head; empty = PEFT's default for the family.
  std::vector<std::string> target_modules;
  std::string target_regex;  // target_modules given as one string: a regex the whole path must match
  bool use_rslora = false;
  double scaling() const;
};

// PEFT's default target_modules per model_type (peft/utils/constants.py,
// TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING): gpt2 c_attn; gptj, llama, mistral, qwen2
// q_proj + v_proj; gpt_neox query_key_value.
std::vector<std::string> default_lora_targets(const std::string& model_type);

class LoraAdaptersImpl : public torch::nn::Module {
 public:
  // Adapters on the sites of `lm` that the settings select: A [r, in] kaiming-uniform as PEFT's
  // init_lora_weights=true (bound 1/sqrt(in)), B [out, r] zeros, so a fresh adapter changes nothing;
  // float32 on lm's device, drawn from torch's default generator. ConfigError naming `field` when r < 1,
  // alpha <= 0, a target name matches no site, or nothing matches.
  LoraAdaptersImpl(const CausalLmImpl& lm, LoraSettings settings, const std::string& field);

  const LoraSettings& settings() const { return settings_; }
  double scaling() const { return scaling_; }
  // A and B of linear site `site` (undefined when the site is not adapted).
  const at::Tensor& a(int site) const { return a_[static_cast<size_t>(site)]; }
  const at::Tensor& b(int site) const { return b_[static_cast<size_t>(site)]; }
  const std::vector<LinearSite>& sites() const { return sites_; }  // the sites of the model built for
  std::vector<std::string> adapted_modules() const;                // module paths with an adapter

  // The same adapters as an independent copy whose parameters do not require grad.
  std::shared_ptr<LoraAdaptersImpl> frozen_copy() const;

  std::string base_dir;  // the base model's directory (written as base_model_name_or_path)

 private:
  LoraAdaptersImpl(std::vector<LinearSite> sites, const std::string& model_type, LoraSettings settings,
                   const std::string& field, bool random_init);
  LoraSettings settings_;
  double scaling_ = 1;
  std::vector<LinearSite> sites_;
  std::vector<at::Tensor> a_, b_;
};
TORCH_MODULE(LoraAdapters);

// True when `dir` holds a PEFT adapter (adapter_config.json).
bool is_adapter_dir(const std::string& dir);
// A directory rarlhf loads as a policy: a Hugging Face model (config.json) or a PEFT adapter.
bool is_model_dir(const std::string& dir);

// <dir>/adapter_config.json parsed. Anything rarlhf does not implement (peft_type other than LORA,
// bias other than "none", use_dora, rank_pattern / alpha_pattern, layers_to_transform,
// modules_to_save) is a ConfigError naming the file and key. *base_model = base_model_name_or_path.
LoraSettings read_adapter_config(const std::string& dir, std::string* base_model);
// The base model directory an adapter names: base_model_name_or_path as written, else relative to the
// adapter directory; IoError naming adapter_config.json when neither is a model directory.
std::string resolve_adapter_base(const std::string& dir, const std::string& base_model);

// Copies <dir>/adapter_model.safetensors into `adapters` (PEFT's key names, optionally with the
// adapter name ".default" PEFT uses in memory); unknown, missing or mis-shaped tensors are IoErrors.
void load_adapter_weights(LoraAdaptersImpl& adapters, const std::string& dir);
// Writes <dir>/adapter_config.json and <dir>/adapter_model.safetensors (dir must exist).
void save_adapter(const LoraAdaptersImpl& adapters, const std::string& model_type, const std::string& dir);

// Adds scaling * B A to each adapted base weight (transposed for Conv1D sites) in the weights' dtype
// and detaches the adapters: the model then computes what base + adapter did, as plain weights.
void merge_lora(CausalLmImpl& lm);

// Fresh adapters on the policy's LM (settings from the `lora` config section, errors naming `field`),
// the base frozen (requires_grad false); the adapters remember `base_dir`.
void add_lora(Policy& policy, const LoraSettings& settings, const std::string& base_dir, const std::string& field);

// A checkpoint's trained weights back into a LoRA policy: <dir>'s adapters (adapter_config.json must
// describe the same adapters: r, alpha, modules) and value_head.safetensors. IoError naming the file
// otherwise, e.g. when the lora settings changed since the checkpoint was written.
void load_adapter_checkpoint(Policy& policy, const std::string& dir);

// The `lora` config section as settings (LoraConfig: rarlhf/config/config.h).
LoraSettings lora_settings(const struct LoraConfig& cfg);

// What an optimizer trains: the adapters' parameters when the LM has adapters, else the LM's (no value head).
std::vector<at::Tensor> lm_trainable_parameters(const Policy& policy);

// For the scope's lifetime `lm` runs with `adapters` (nullptr = none: the plain base) in eval mode;
// the previous adapters and mode come back at the end. The KL reference of a LoRA policy is its own
// base this way: one copy of the base weights in memory.
class ScopedAdapters {
 public:
  ScopedAdapters(CausalLmImpl& lm, std::shared_ptr<LoraAdaptersImpl> adapters);
  ~ScopedAdapters();
  ScopedAdapters(const ScopedAdapters&) = delete;
  ScopedAdapters& operator=(const ScopedAdapters&) = delete;

 private:
  CausalLmImpl& lm_;
  std::shared_ptr<LoraAdaptersImpl> saved_;
  bool was_training_;
};

}  // namespace rarlhf
