// Shared causal-LM blocks: see src/model/blocks.h. Attention uses scaled_dot_product_attention on
// LibTorch >= 2.1 and an exact manual path otherwise (softmax in float32). Masked scores get the
// dtype's lowest value, not -inf, like transformers, so a query row that is all padding stays finite.
#include "blocks.h"

#include <torch/torch.h>
#include <torch/version.h>
#include <c10/core/GradMode.h>

#include <cmath>
#include <limits>
#include <mutex>
#include <set>
#include <sstream>

#include "rarlhf/common/strings.h"
#include "rarlhf/kernels/ops.h"

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define RARLHF_HAVE_SDPA 1
#else
#define RARLHF_HAVE_SDPA 0
#endif

namespace rarlhf::model_detail {

at::Tensor& add_param(torch::nn::Module& root, const std::string& dotted, at::Tensor init) {
  auto parts = split(dotted, '.');
  torch::nn::Module* m = &root;
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    auto children = m->named_children();
    if (auto* found = children.find(parts[i])) {
      m = found->get();
    } else {
      m = m->register_module(parts[i], std::make_shared<torch::nn::Module>()).get();
    }
  }
  return m->register_parameter(parts.back(), std::move(init));
}

// Without autograd on the CPU (sampling, scoring) the register-tiled cpu_linear, else BLAS.
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (cpu_linear_applies(x, w)) return cpu_linear(x, w, b, /*w_transposed=*/true);
  if (onednn_linear_applies(x, w)) return onednn_linear(x, w, b, /*w_transposed=*/true);
  return at::linear(x, w, b);
}

at::Tensor head_logits(const at::Tensor& hidden, const at::Tensor& w, const at::Tensor& b) {
  at::Tensor h = hidden.to(w.scalar_type());
  if (cpu_linear_applies(h, w)) return cpu_linear(h, w, b, /*w_transposed=*/true);
  if (onednn_linear_applies(h, w)) return onednn_linear(h, w, b, /*w_transposed=*/true);
  return (b.defined() ? at::linear(h, w, b) : at::matmul(h, w.t())).to(at::kFloat);
}

at::Tensor conv1d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (cpu_linear_applies(x, w)) return cpu_linear(x, w, b, /*w_transposed=*/false);
  if (onednn_linear_applies(x, w)) return onednn_linear(x, w, b, /*w_transposed=*/false);
  auto sizes = x.sizes().vec();
  sizes.back() = w.size(1);
  return at::addmm(b, x.reshape({-1, x.size(-1)}), w).view(sizes);
}

namespace {

struct BlockClosure : torch::CustomClassHolder {
  std::function<at::Tensor(const at::Tensor&)> fn;
  at::Tensor rng_state;  // the default generator's state when the forward ran
  c10::Device device = at::kCPU;
};

at::Generator default_generator(const c10::Device& device) {
  return device.is_cpu() ? at::detail::getDefaultCPUGenerator() : at::globalContext().defaultGenerator(device);
}

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, at::Tensor x, at::Tensor anchor,
                                                c10::intrusive_ptr<BlockClosure> closure) {
    (void)anchor;
    closure->device = x.device();
    {
      auto gen = default_generator(closure->device);
      std::lock_guard<std::mutex> lock(gen.mutex());
      closure->rng_state = gen.get_state();
    }
    at::Tensor y;
    {
      torch::NoGradGuard no_grad;
      y = closure->fn(x);
    }
    ctx->save_for_backward({x});
    ctx->saved_data["closure"] = c10::IValue::make_capsule(closure);
    ctx->saved_data["x_grad"] = x.requires_grad();
    return {y};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto closure = c10::static_intrusive_pointer_cast<BlockClosure>(ctx->saved_data["closure"].toCapsule());
    const bool x_grad = ctx->saved_data["x_grad"].toBool();
    at::Tensor x = ctx->get_saved_variables()[0].detach().requires_grad_(x_grad);
    auto gen = default_generator(closure->device);
    at::Tensor now;
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      now = gen.get_state();
      gen.set_state(closure->rng_state);
    }
    {
      torch::AutoGradMode enable(true);
      at::Tensor y = closure->fn(x);
      if (y.requires_grad()) torch::autograd::backward({y}, {grads[0]});
    }
    {
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(now);
    }
    return {x_grad ? x.grad() : at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor checkpoint(std::function<at::Tensor(const at::Tensor&)> fn, const at::Tensor& x) {
  // The anchor makes the output require grad when x does not (the block's parameters still do).
  static const at::Tensor anchor = torch::zeros({}, at::TensorOptions().requires_grad(true));
  auto closure = c10::make_intrusive<BlockClosure>();
  closure->fn = std::move(fn);
  return CheckpointFunction::apply(x, anchor, closure)[0];
}

at::Scalar mask_value(const at::Tensor& t) {
  if (t.scalar_type() == at::kFloat) return at::Scalar(std::numeric_limits<float>::lowest());
  if (t.scalar_type() == at::kDouble) return at::Scalar(std::numeric_limits<double>::lowest());
  return at::Scalar(-65504.0);
}

ForwardInputs prepare_forward(const at::Tensor& ids, const at::Tensor& attention_mask, const at::Tensor& position_ids,
                              const KVCache* cache, int64_t n_positions, const at::Device& dev, const char* who) {
  TORCH_CHECK(ids.dim() == 2, who, "::forward_hidden: ids must be [B, T], got ", ids.sizes());
  ForwardInputs in;
  in.B = ids.size(0);
  in.T = ids.size(1);
  in.past = cache ? cache->length() : 0;
  in.S = in.past + in.T;
  TORCH_CHECK(in.S <= n_positions, who, "::forward_hidden: ", in.S, " positions exceed the model's maximum ",
              n_positions);
  in.ids = ids.to(dev, at::kLong);
  if (attention_mask.defined()) {
    TORCH_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == in.B && attention_mask.size(1) == in.S, who,
                "::forward_hidden: attention_mask must be [B, past+T] = [", in.B, ", ", in.S, "], got ",
                attention_mask.sizes());
    in.mask = attention_mask.to(dev, at::kLong);
  }
  const auto long_opts = at::TensorOptions().dtype(at::kLong).device(dev);
  if (position_ids.defined()) {
    TORCH_CHECK(position_ids.sizes() == ids.sizes(), who, "::forward_hidden: position_ids must be [B, T]");
    in.pos = position_ids.to(dev, at::kLong);
  } else if (in.mask.defined()) {
    in.pos = (in.mask.cumsum(1) - 1).clamp_min(0).narrow(1, in.past, in.T);  // [B, T]
  } else {
    in.pos = at::arange(in.past, in.S, long_opts).unsqueeze(0).expand({in.B, in.T});
  }
  if (in.mask.defined() || (in.past > 0 && in.T > 1)) {
    auto causal = at::arange(in.S, long_opts).unsqueeze(0) <= (at::arange(in.T, long_opts) + in.past).unsqueeze(1);
    at::Tensor allowed = causal.unsqueeze(0);                                           // [1, T, S]
    if (in.mask.defined()) allowed = allowed & (in.mask != 0).unsqueeze(1);             // [B, T, S]
    in.allowed = allowed.unsqueeze(1);                                                  // [B|1, 1, T, S]
  }
  return in;
}

std::pair<at::Tensor, at::Tensor> cache_update(KVCache* cache, size_t layer, size_t n_layers, const at::Tensor& k_in,
                                               const at::Tensor& v_in, int64_t past) {
  if (!cache) return {k_in, v_in};
  if (cache->keys.size() != n_layers) {
    cache->keys.assign(n_layers, at::Tensor());
    cache->values.assign(n_layers, at::Tensor());
  }
  at::Tensor k = k_in, v = v_in;
  const int64_t T = k.size(2), S = past + T;
  if (cache->capacity > 0) {
    if (cache->key_buffers.size() != n_layers) {
      cache->key_buffers.assign(n_layers, at::Tensor());
      cache->value_buffers.assign(n_layers, at::Tensor());
    }
    auto& kb = cache->key_buffers[layer];
    auto& vb = cache->value_buffers[layer];
    if (!kb.defined()) {
      TORCH_CHECK(past == 0, "KVCache: reserve() must be called before the first forward");
      kb = at::empty({k.size(0), k.size(1), cache->capacity, k.size(3)}, k.options());
      vb = at::empty({v.size(0), v.size(1), cache->capacity, v.size(3)}, v.options());
    }
    TORCH_CHECK(S <= kb.size(2), "KVCache: ", S, " positions exceed the reserved ", kb.size(2));
    kb.narrow(2, past, T).copy_(k);
    vb.narrow(2, past, T).copy_(v);
    k = kb.narrow(2, 0, S);
    v = vb.narrow(2, 0, S);
  } else if (past > 0) {
    k = at::cat({cache->keys[layer], k}, 2);
    v = at::cat({cache->values[layer], v}, 2);
  }
  cache->keys[layer] = k;
  cache->values[layer] = v;
  return {k, v};
}

namespace {

// [B, Hkv, S, D] -> [B, Hkv * n_rep, S, D]: head h reads kv head h / n_rep.
at::Tensor repeat_kv(const at::Tensor& x, int64_t n_rep) {
  if (n_rep == 1) return x;
  const int64_t B = x.size(0), Hkv = x.size(1), S = x.size(2), D = x.size(3);
  return x.unsqueeze(2).expand({B, Hkv, n_rep, S, D}).reshape({B, Hkv * n_rep, S, D});
}

}  // namespace

at::Tensor attend(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const ForwardInputs& in,
                  double scale, at::Tensor& bias, double dropout_p) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3), Hkv = k.size(1);
  TORCH_CHECK(H % Hkv == 0, "attention: ", H, " query heads are not a multiple of ", Hkv, " key/value heads");
  const int64_t n_rep = H / Hkv;
  const bool causal_only = !in.allowed.defined();
  if (causal_only && T > 1 && n_rep > 1) {
    // Plain causal prefill with grouped heads: repeat K/V as transformers' repeat_kv does.
    return attend(q, repeat_kv(k, n_rep), repeat_kv(v, n_rep), in, scale, bias, dropout_p);
  }
#if !RARLHF_HAVE_SDPA
  // A decoding step (LibTorch without SDPA): one fused pass per query row (kernels/cpu_attention.cpp).
  if (T <= 4 && dropout_p == 0 && (!causal_only || T == 1) && cpu_attention_applies(q, k, v)) {
    return cpu_attention(q, k, v, in.allowed, scale);
  }
#endif
  // Grouped-query heads without copying K/V: the n_rep query heads that share a K/V head become
  // n_rep * T query rows of that head ([B, Hkv, n_rep*T, D]); the mask rows repeat to match.
  const at::Tensor qg = n_rep == 1 ? q : q.reshape({B, Hkv, n_rep * T, D});
  const bool is_causal = causal_only && in.past == 0 && T > 1;
  at::Tensor out;
#if RARLHF_HAVE_SDPA
  if (!causal_only) {
    if (!bias.defined()) {  // built once per call, shared by all layers
      at::Tensor allowed = n_rep == 1 ? in.allowed : in.allowed.repeat({1, 1, n_rep, 1});
      bias = at::zeros(allowed.sizes(), q.options()).masked_fill_(allowed.logical_not(), mask_value(q));
    }
    out = at::scaled_dot_product_attention(qg, k, v, bias, dropout_p, false, scale);
  } else {
    out = at::scaled_dot_product_attention(qg, k, v, {}, dropout_p, is_causal, scale);
  }
#else
  // A decoding step has a few query rows per head: broadcast products beat one tiny GEMM per head
  // (LibTorch 1.13's CPU bmm calls BLAS once per batch entry, packing operands each time).
  const bool few_rows = qg.size(2) <= 4 && !at::GradMode::is_enabled();
  at::Tensor scores = few_rows ? (qg.unsqueeze(3) * k.unsqueeze(2)).sum(-1).mul_(scale)  // [B, Hkv, rows, S]
                               : at::matmul(qg, k.transpose(-1, -2)).mul_(scale);
  if (!causal_only) {
    if (!bias.defined()) {  // the masked positions, once per call
      bias = (n_rep == 1 ? in.allowed : in.allowed.repeat({1, 1, n_rep, 1})).logical_not();
    }
    scores.masked_fill_(bias, mask_value(q));
  } else if (is_causal) {
    auto upper = at::ones({T, in.S}, at::TensorOptions().dtype(at::kBool).device(q.device())).triu(1);
    scores.masked_fill_(upper, mask_value(q));
  }
  at::Tensor probs = at::softmax(scores, -1, at::kFloat).to(v.scalar_type());
  if (dropout_p > 0) probs = at::dropout(probs, dropout_p, /*train=*/true);
  out = few_rows ? (probs.unsqueeze(-1) * v.unsqueeze(2)).sum(3) : at::matmul(probs, v);
#endif
  return n_rep == 1 ? out : out.view({B, Hkv, n_rep, T, D}).reshape({B, H, T, D});
}

Rope make_rope(int64_t rotary_dim, double theta, bool interleaved, const nlohmann::json& scaling,
               const std::string& origin) {
  if (rotary_dim <= 0 || rotary_dim % 2 != 0) {
    throw ConfigError(origin + ": rotary dimension " + std::to_string(rotary_dim) + " must be even and > 0");
  }
  if (!(theta > 0)) throw ConfigError(origin + ": rope_theta must be > 0");
  Rope r;
  r.rotary_dim = rotary_dim;
  r.interleaved = interleaved;
  const int64_t half = rotary_dim / 2;
  std::vector<double> inv(half);
  for (int64_t i = 0; i < half; ++i) {
    inv[i] = 1.0 / std::pow(theta, static_cast<double>(2 * i) / static_cast<double>(rotary_dim));
  }
  std::string type = "default";
  if (scaling.is_object()) {
    if (scaling.contains("rope_type") && scaling["rope_type"].is_string()) {
      type = scaling["rope_type"].get<std::string>();
    } else if (scaling.contains("type") && scaling["type"].is_string()) {
      type = scaling["type"].get<std::string>();
    }
  } else if (!scaling.is_null()) {
    throw ConfigError(origin + ": rope_scaling: must be null or an object");
  }
  auto num = [&](const char* key, double fallback, bool required) {
    if (!scaling.contains(key) || scaling[key].is_null()) {
      if (required) throw ConfigError(origin + ": rope_scaling." + key + ": missing; the " + type + " type needs it");
      return fallback;
    }
    if (!scaling[key].is_number()) throw ConfigError(origin + ": rope_scaling." + key + ": must be a number");
    return scaling[key].get<double>();
  };
  if (type == "default") {
  } else if (type == "linear") {
    const double factor = num("factor", 1.0, true);
    if (!(factor > 0)) throw ConfigError(origin + ": rope_scaling.factor: must be > 0");
    for (auto& f : inv) f /= factor;  // positions / factor
  } else if (type == "llama3") {
    // Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth ramp between.
    const double factor = num("factor", 0, true), low = num("low_freq_factor", 0, true),
                 high = num("high_freq_factor", 0, true), old_len = num("original_max_position_embeddings", 0, true);
    if (!(high > low)) throw ConfigError(origin + ": rope_scaling.high_freq_factor: must exceed low_freq_factor");
    const double low_wavelen = old_len / low, high_wavelen = old_len / high;
    for (auto& f : inv) {
      const double wavelen = 2.0 * M_PI / f;
      if (wavelen > low_wavelen) {
        f = f / factor;
      } else if (wavelen >= high_wavelen) {
        const double smooth = (old_len / wavelen - low) / (high - low);
        f = (1.0 - smooth) * f / factor + smooth * f;
      }
    }
  } else {
    throw ConfigError(origin + ": rope_scaling: type \"" + type +
                      "\" is not supported; rarlhf implements default, linear and llama3");
  }
  r.inv_freq = at::tensor(std::vector<float>(inv.begin(), inv.end()), at::kFloat);
  return r;
}

RopeSettings read_rope_settings(const ConfigReader& r, const char* legacy_theta_key, double default_theta) {
  RopeSettings s;
  s.theta = default_theta;
  const auto& j = r.json();
  if (r.has("rope_parameters")) {
    const auto& rp = j["rope_parameters"];
    if (!rp.is_object()) throw r.error("rope_parameters", "must be an object");
    if (rp.contains("rope_theta")) {
      if (!rp["rope_theta"].is_number()) throw r.error("rope_parameters.rope_theta", "must be a number");
      s.theta = rp["rope_theta"].get<double>();
    }
    if (rp.contains("partial_rotary_factor") && !rp["partial_rotary_factor"].is_null()) {
      if (!rp["partial_rotary_factor"].is_number()) {
        throw r.error("rope_parameters.partial_rotary_factor", "must be a number");
      }
      s.partial_rotary_factor = rp["partial_rotary_factor"].get<double>();
      s.has_partial = true;
    }
    s.scaling = rp;
  } else {
    s.theta = r.get_double(legacy_theta_key, default_theta);
    if (r.has("rope_scaling")) s.scaling = j["rope_scaling"];
  }
  if (r.has("partial_rotary_factor")) {
    s.partial_rotary_factor = r.get_double("partial_rotary_factor", 1.0);
    s.has_partial = true;
  }
  if (!(s.partial_rotary_factor > 0 && s.partial_rotary_factor <= 1)) {
    throw r.error("partial_rotary_factor", "must be in (0, 1]");
  }
  return s;
}

RopeAngles rope_angles(const Rope& rope, const at::Tensor& pos, at::ScalarType dtype) {
  at::Tensor inv = rope.inv_freq.to(pos.device());
  at::Tensor freqs = pos.to(at::kFloat).unsqueeze(-1) * inv;  // [B, T, rot/2]
  at::Tensor emb = rope.interleaved ? freqs.repeat_interleave(2, -1) : at::cat({freqs, freqs}, -1);
  RopeAngles a;
  a.cos = (emb.cos() * rope.attention_factor).to(dtype).unsqueeze(1);  // [B, 1, T, rot]
  a.sin = (emb.sin() * rope.attention_factor).to(dtype).unsqueeze(1);
  return a;
}

at::Tensor apply_rope(const at::Tensor& x, const RopeAngles& a, const Rope& rope) {
  const int64_t D = x.size(-1), R = rope.rotary_dim;
  if (cpu_fused_applies({&x, &a.cos, &a.sin})) return cpu_rope(x, a.cos, a.sin, R, rope.interleaved);
  at::Tensor rot = R == D ? x : x.narrow(-1, 0, R);
  at::Tensor turned;
  if (rope.interleaved) {
    // (x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)
    auto pairs = rot.unflatten(-1, {R / 2, 2});
    turned = at::stack({-pairs.select(-1, 1), pairs.select(-1, 0)}, -1).flatten(-2);
  } else {
    turned = at::cat({-rot.narrow(-1, R / 2, R / 2), rot.narrow(-1, 0, R / 2)}, -1);
  }
  at::Tensor out = rot * a.cos + turned * a.sin;
  return R == D ? out : at::cat({out, x.narrow(-1, R, D - R)}, -1);
}

at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& w, double eps) {
  if (cpu_fused_applies({&x, &w})) return cpu_rms_norm(x, w, eps);
  at::Tensor h = x.to(at::kFloat);
  h = h * at::rsqrt(h.pow(2).mean(-1, true) + eps);
  return w * h.to(x.scalar_type());
}

bool activation_supported(const std::string& name) {
  static const std::set<std::string> ok = {"gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu",
                                           "silu",     "swish",             "relu"};
  return ok.count(name) > 0;
}

at::Tensor gated_activation(const at::Tensor& gate, const at::Tensor& up, const std::string& name) {
  if ((name == "silu" || name == "swish") && cpu_fused_applies({&gate, &up})) return cpu_silu_mul(gate, up);
  return activation(gate, name) * up;
}

at::Tensor activation(const at::Tensor& x, const std::string& name) {
  if (name == "gelu") return at::gelu(x);
  if (name == "silu" || name == "swish") return at::silu(x);
  if (name == "relu") return at::relu(x);
  if (cpu_fused_applies({&x})) return cpu_gelu_tanh(x);
  return at::gelu(x, "tanh");
}

// ---------------------------------------------------------------- config.json reading

ConfigReader::ConfigReader(const nlohmann::json& j, std::string origin, std::string family)
    : j_(j), origin_(std::move(origin)), family_(std::move(family)) {
  if (!j_.is_object()) throw ConfigError(origin_ + ": not a JSON object; expected a " + family_ + " config.json");
}

ConfigError ConfigReader::error(const std::string& key, const std::string& what) const {
  return ConfigError(origin_ + ": " + key + ": " + what);
}

bool ConfigReader::has(const char* key) const { return j_.contains(key) && !j_[key].is_null(); }

int64_t ConfigReader::require_int(const char* key, int64_t min_value) const {
  if (!has(key)) throw error(key, "missing; a " + family_ + " config.json must set it");
  return get_int(key, 0, min_value);
}

int64_t ConfigReader::get_int(const char* key, int64_t fallback, int64_t min_value) const {
  if (!has(key)) return fallback;
  if (!j_[key].is_number_integer()) throw error(key, "must be an integer");
  const int64_t v = j_[key].get<int64_t>();
  if (v < min_value) throw error(key, "must be >= " + std::to_string(min_value));
  return v;
}

double ConfigReader::get_double(const char* key, double fallback) const {
  if (!has(key)) return fallback;
  if (!j_[key].is_number()) throw error(key, "must be a number");
  return j_[key].get<double>();
}

bool ConfigReader::get_bool(const char* key, bool fallback) const {
  if (!has(key)) return fallback;
  if (!j_[key].is_boolean()) throw error(key, "must be true or false");
  return j_[key].get<bool>();
}

std::string ConfigReader::get_string(const char* key, const std::string& fallback) const {
  if (!has(key)) return fallback;
  if (!j_[key].is_string()) throw error(key, "must be a string");
  return j_[key].get<std::string>();
}

std::vector<int64_t> ConfigReader::get_ids(const char* key) const {
  std::vector<int64_t> out;
  if (!has(key)) return out;
  const auto& v = j_[key];
  auto one = [&](const nlohmann::json& x) {
    if (!x.is_number_integer() || x.get<int64_t>() < 0) throw error(key, "must be a token id >= 0 or a list of them");
    out.push_back(x.get<int64_t>());
  };
  if (v.is_array()) {
    for (const auto& x : v) one(x);
  } else {
    one(v);
  }
  return out;
}

void read_common_ids(const ConfigReader& r, LmConfig& c) {
  c.source = r.json();
  auto first = [](const std::vector<int64_t>& v) { return v.empty() ? int64_t{-1} : v[0]; };
  c.bos_token_id = first(r.get_ids("bos_token_id"));
  c.eos_token_ids = r.get_ids("eos_token_id");
  c.eos_token_id = first(c.eos_token_ids);
  c.pad_token_id = first(r.get_ids("pad_token_id"));
  for (const char* key : {"bos_token_id", "eos_token_id", "pad_token_id"}) {
    for (int64_t id : r.get_ids(key)) {
      if (id >= c.vocab_size) {
        throw r.error(key, std::to_string(id) + " is outside the vocabulary (vocab_size " +
                               std::to_string(c.vocab_size) + ")");
      }
    }
  }
}

void write_common_ids(const LmConfig& c, nlohmann::json& j) {
  j["model_type"] = c.model_type;
  j["bos_token_id"] = c.bos_token_id >= 0 ? nlohmann::json(c.bos_token_id) : nlohmann::json(nullptr);
  if (c.eos_token_ids.size() > 1) {
    j["eos_token_id"] = c.eos_token_ids;
  } else {
    j["eos_token_id"] = c.eos_token_id >= 0 ? nlohmann::json(c.eos_token_id) : nlohmann::json(nullptr);
  }
  if (c.pad_token_id >= 0) j["pad_token_id"] = c.pad_token_id;
}

void load_named(torch::nn::Module& m, const TensorMap& tensors, const std::string& source, const std::string& family,
                const std::function<std::string(const std::string&)>& rename) {
  auto params = m.named_parameters(true);
  std::set<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (const auto& [key, t] : tensors) {
    const std::string name = rename(key);
    if (name.empty()) continue;
    at::Tensor* p = params.find(name);
    if (!p) {
      throw IoError(source + ": unexpected tensor '" + key + "'; not a " + family + " weight (is this a " + family +
                    " checkpoint?)");
    }
    if (p->sizes() != t.sizes()) {
      std::ostringstream os;
      os << source << ": tensor '" << key << "' has shape " << t.sizes() << " but config.json implies " << p->sizes()
         << "; the weights do not match the config";
      throw IoError(os.str());
    }
    if (!at::isFloatingType(t.scalar_type())) {
      throw IoError(source + ": tensor '" + key + "' is stored as " + std::string(c10::toString(t.scalar_type())) +
                    "; a weight must be F32, F16 or BF16");
    }
    if (!loaded.insert(name).second) throw IoError(source + ": tensor '" + name + "' is given twice (" + key + ")");
    p->copy_(t);
  }
  for (const auto& item : params) {
    if (!loaded.count(item.key())) {
      throw IoError(source + ": missing tensor '" + item.key() + "'; the checkpoint is incomplete");
    }
  }
}

}  // namespace rarlhf::model_detail
