// Building blocks the causal-LM families share (private to src/model): parameter registration under
// HF's dotted names, linear layers that use cpu_linear under no-grad, the forward prologue (positions
// and the attention mask from left padding + KV cache), cached attention with grouped-query heads,
// rotary embeddings (rotate-half as Llama/NeoX, interleaved pairs as GPT-J; llama3/linear scaling),
// RMSNorm, activations, and reading config.json fields with errors that name the key.
#pragma once
#include <ATen/core/Tensor.h>
#include <torch/nn/module.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "rarlhf/common/error.h"
#include "rarlhf/model/causal_lm.h"

namespace rarlhf::model_detail {

// Registers `dotted` as nested submodules so named_parameters() yields HF's names.
at::Tensor& add_param(torch::nn::Module& root, const std::string& dotted, at::Tensor init);

// x [..., in] @ w^T + b with w [out, in] (nn.Linear); b may be undefined.
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);
// The LM head: hidden [..., C] @ w^T (+ b) with w [V, C] -> [..., V] float32, in the weights' dtype.
at::Tensor head_logits(const at::Tensor& hidden, const at::Tensor& w, const at::Tensor& b);
// x [..., in] @ w + b with w [in, out] (HF Conv1D, GPT-2).
at::Tensor conv1d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b);

// What one forward call sees: validated ids/mask/positions on the model's device and, when needed,
// allowed[b|1, 1, T, S] (query i may attend key j). Undefined `allowed` = plain causal (or one query).
struct ForwardInputs {
  int64_t B = 0, T = 0, past = 0, S = 0;
  at::Tensor ids, mask, pos, allowed;
};
ForwardInputs prepare_forward(const at::Tensor& ids, const at::Tensor& attention_mask, const at::Tensor& position_ids,
                              const KVCache* cache, int64_t n_positions, const at::Device& dev, const char* who);

// Appends this call's k/v [B, Hkv, T, D] to layer l of the cache (in place when reserved) and returns
// the keys/values of every visible position [B, Hkv, S, D]. cache == nullptr returns k, v unchanged.
std::pair<at::Tensor, at::Tensor> cache_update(KVCache* cache, size_t layer, size_t n_layers, const at::Tensor& k,
                                               const at::Tensor& v, int64_t past);

// softmax(q k^T * scale + mask) v for q [B, H, T, D], k/v [B, Hkv, S, D] (H a multiple of Hkv: grouped
// query heads share K/V as transformers' repeat_kv does) -> [B, H, T, D]. `bias` caches the additive
// mask across the layers of one call (pass the same undefined tensor to every layer). dropout_p > 0
// drops attention probabilities (training only; callers pass 0 otherwise).
at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const ForwardInputs& in,
                  double scale, at::Tensor& bias, double dropout_p = 0.0);

// Rotary position embedding on the first `rotary_dim` dims of each head.
struct Rope {
  int64_t rotary_dim = 0;
  bool interleaved = false;  // GPT-J: rotate pairs (2i, 2i+1); else rotate halves (Llama, NeoX)
  at::Tensor inv_freq;       // [rotary_dim / 2] float32 (after any scaling)
  double attention_factor = 1.0;
};
// base^(-2i/dim); rope_scaling (null, or {"rope_type"|"type": default|linear|llama3, ...}) applied.
// Errors name `origin` and the key.
Rope make_rope(int64_t rotary_dim, double theta, bool interleaved, const nlohmann::json& rope_scaling,
               const std::string& origin);
struct RopeAngles {
  at::Tensor cos, sin;  // [B, 1, T, rotary_dim] in the activation dtype
};
RopeAngles rope_angles(const Rope& rope, const at::Tensor& pos, at::ScalarType dtype);
at::Tensor apply_rope(const at::Tensor& x, const RopeAngles& a, const Rope& rope);  // x [B, H, T, D]

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps);  // Llama's: fp32 statistics
// "gelu_new" | "gelu_pytorch_tanh" | "gelu_fast" (tanh form), "gelu" (erf), "silu"/"swish", "relu".
at::Tensor activation(const at::Tensor& x, const std::string& name);
at::Tensor gated_activation(const at::Tensor& gate, const at::Tensor& up, const std::string& name);  // act(gate) * up
bool activation_supported(const std::string& name);

// y = fn(x) computed without keeping fn's intermediate tensors: fn runs under no-grad now and again,
// with gradients, during backward (the default generator's state for x's device restored first, so
// dropout draws the same masks); the inner backward accumulates into the parameters fn uses. x need
// not require grad (a frozen embedding under LoRA).
at::Tensor checkpoint(std::function<at::Tensor(const at::Tensor&)> fn, const at::Tensor& x);

// Score given to masked keys: the dtype's lowest finite value (fp16 and bf16 both hold -65504).
at::Scalar mask_value(const at::Tensor& t);

// config.json fields with errors "<origin>: <key>: ...".
class ConfigReader {
 public:
  ConfigReader(const nlohmann::json& j, std::string origin, std::string family);
  bool has(const char* key) const;
  int64_t require_int(const char* key, int64_t min_value) const;                 // missing = error
  int64_t get_int(const char* key, int64_t fallback, int64_t min_value) const;  // missing/null = fallback
  double get_double(const char* key, double fallback) const;
  bool get_bool(const char* key, bool fallback) const;
  std::string get_string(const char* key, const std::string& fallback) const;
  // An id, a list of ids (first = primary) or null/absent -> {}.
  std::vector<int64_t> get_ids(const char* key) const;
  ConfigError error(const std::string& key, const std::string& what) const;
  const nlohmann::json& json() const { return j_; }
  const std::string& origin() const { return origin_; }

 private:
  const nlohmann::json& j_;
  std::string origin_, family_;
};

// Where a config.json keeps its rotary settings: transformers >= 5 writes `rope_parameters`
// {rope_theta, rope_type, partial_rotary_factor, ...}; older files `rope_theta` (GPT-NeoX:
// `rotary_emb_base`) and `rope_scaling`.
struct RopeSettings {
  double theta = 10000.0;
  nlohmann::json scaling;            // null or {"rope_type"|"type": ..., factor, ...}
  double partial_rotary_factor = 1;  // fraction of each head rotated
  bool has_partial = false;          // the file set partial_rotary_factor
};
RopeSettings read_rope_settings(const ConfigReader& r, const char* legacy_theta_key, double default_theta);

// Fills the LmConfig fields shared by every family from the reader (ids, source, model_type) and
// checks them against vocab_size.
void read_common_ids(const ConfigReader& r, LmConfig& c);
// Writes the shared fields back (bos/eos/pad ids, model_type).
void write_common_ids(const LmConfig& c, nlohmann::json& j);

// Copies `tensors` into the module's parameters by name (after `rename`, which returns "" to skip a
// key); errors name `source` and the key for unknown, missing, duplicated or mis-shaped tensors.
// `family` ("GPT-J", ...) is used in messages.
void load_named(torch::nn::Module& m, const TensorMap& tensors, const std::string& source, const std::string& family,
                const std::function<std::string(const std::string&)>& rename);

}  // namespace rarlhf::model_detail
