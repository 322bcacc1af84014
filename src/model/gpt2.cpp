// GPT-2 forward, HF checkpoint mapping, value head and policy directories: see include/rarlhf/model/gpt2.h.
// Attention uses scaled_dot_product_attention on LibTorch >= 2.1 and an exact manual path otherwise
// (softmax in float32). Masked scores get the dtype's lowest value, not -inf, like transformers, so a
// query row that is all padding stays finite.
#include "rarlhf/model/gpt2.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/kernels/ops.h"

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define RARLHF_HAVE_SDPA 1
#else
#define RARLHF_HAVE_SDPA 0
#endif

namespace rarlhf {
namespace fsys = std::filesystem;

// ---------------------------------------------------------------- config

Gpt2Config Gpt2Config::from_json(const nlohmann::json& j, const std::string& origin) {
  if (!j.is_object()) throw ConfigError(origin + ": not a JSON object; expected a GPT-2 config.json");
  Gpt2Config c;
  c.source = j;
  auto bad = [&](const std::string& key, const std::string& what) {
    return ConfigError(origin + ": " + key + ": " + what);
  };
  auto get_int = [&](const char* key, int64_t& dst, bool required, int64_t min_value) {
    if (!j.contains(key) || j[key].is_null()) {
      if (required) throw bad(key, "missing; a GPT-2 config.json must set it");
      return;
    }
    if (!j[key].is_number_integer()) throw bad(key, "must be an integer");
    dst = j[key].get<int64_t>();
    if (dst < min_value) throw bad(key, "must be >= " + std::to_string(min_value));
  };
  auto get_bool = [&](const char* key, bool& dst) {
    if (!j.contains(key) || j[key].is_null()) return;
    if (!j[key].is_boolean()) throw bad(key, "must be true or false");
    dst = j[key].get<bool>();
  };
  if (j.contains("model_type") && j["model_type"] != "gpt2") {
    throw bad("model_type", "is " + j["model_type"].dump() + "; only \"gpt2\" policies are supported");
  }
  get_int("n_layer", c.n_layer, true, 1);
  get_int("n_head", c.n_head, true, 1);
  get_int("n_embd", c.n_embd, true, 1);
  get_int("n_positions", c.n_positions, true, 1);
  get_int("vocab_size", c.vocab_size, true, 1);
  get_int("n_inner", c.n_inner, false, 1);
  get_int("bos_token_id", c.bos_token_id, false, 0);
  get_int("eos_token_id", c.eos_token_id, false, 0);
  if (c.n_embd % c.n_head != 0) throw bad("n_head", "must divide n_embd (" + std::to_string(c.n_embd) + ")");
  if (j.contains("layer_norm_epsilon")) {
    if (!j["layer_norm_epsilon"].is_number()) throw bad("layer_norm_epsilon", "must be a number");
    c.layer_norm_epsilon = j["layer_norm_epsilon"].get<double>();
  }
  if (j.contains("activation_function")) {
    if (!j["activation_function"].is_string()) throw bad("activation_function", "must be a string");
    c.activation_function = j["activation_function"].get<std::string>();
    static const std::set<std::string> ok = {"gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu"};
    if (!ok.count(c.activation_function)) {
      throw bad("activation_function", "\"" + c.activation_function +
                                           "\" is not supported; use gelu_new, gelu_pytorch_tanh, gelu_fast or gelu");
    }
  }
  get_bool("scale_attn_weights", c.scale_attn_weights);
  get_bool("tie_word_embeddings", c.tie_word_embeddings);
  if (!c.tie_word_embeddings) throw bad("tie_word_embeddings", "false is not supported; GPT-2 ties lm_head to wte");
  for (const char* key : {"add_cross_attention", "reorder_and_upcast_attn", "scale_attn_by_inverse_layer_idx"}) {
    bool v = false;
    get_bool(key, v);
    if (v) throw bad(key, "true is not supported; set it to false (GPT-2 default)");
  }
  if (c.bos_token_id >= c.vocab_size || c.eos_token_id >= c.vocab_size) {
    throw bad("eos_token_id", "outside the vocabulary (vocab_size " + std::to_string(c.vocab_size) + ")");
  }
  return c;
}

Gpt2Config Gpt2Config::from_file(const std::string& config_json) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(config_json));
  } catch (const nlohmann::json::exception& e) {
    throw IoError(config_json + ": not valid JSON (" + e.what() + ")");
  }
  return from_json(j, config_json);
}

nlohmann::json Gpt2Config::to_json() const {
  nlohmann::json j = source.is_object() ? source : nlohmann::json::object();
  j.erase("_name_or_path");
  j["model_type"] = "gpt2";
  j["architectures"] = {"GPT2LMHeadModel"};
  j["n_layer"] = n_layer;
  j["n_head"] = n_head;
  j["n_embd"] = n_embd;
  j["n_positions"] = n_positions;
  if (!j.contains("n_ctx")) j["n_ctx"] = n_positions;
  j["vocab_size"] = vocab_size;
  j["n_inner"] = n_inner > 0 ? nlohmann::json(n_inner) : nlohmann::json(nullptr);
  j["layer_norm_epsilon"] = layer_norm_epsilon;
  j["activation_function"] = activation_function;
  j["scale_attn_weights"] = scale_attn_weights;
  j["tie_word_embeddings"] = true;
  j["bos_token_id"] = bos_token_id;
  j["eos_token_id"] = eos_token_id;
  for (const char* key : {"add_cross_attention", "reorder_and_upcast_attn", "scale_attn_by_inverse_layer_idx"}) {
    j[key] = false;
  }
  for (const char* key : {"attn_pdrop", "embd_pdrop", "resid_pdrop"}) {
    if (!j.contains(key)) j[key] = 0.1;  // transformers' defaults; we never apply dropout ourselves
  }
  if (!j.contains("initializer_range")) j["initializer_range"] = 0.02;
  return j;
}

at::ScalarType parse_dtype(const std::string& dtype, const std::string& field) {
  if (dtype == "float32") return at::kFloat;
  if (dtype == "bfloat16") return at::kBFloat16;
  if (dtype == "float16") return at::kHalf;
  throw ConfigError(field + ": \"" + dtype + "\" is not a dtype; use float32, bfloat16 or float16");
}

// ---------------------------------------------------------------- module

struct Gpt2Layer {
  at::Tensor ln_1_w, ln_1_b, c_attn_w, c_attn_b, attn_proj_w, attn_proj_b;
  at::Tensor ln_2_w, ln_2_b, c_fc_w, c_fc_b, mlp_proj_w, mlp_proj_b;
};

namespace {

// Registers `name` (dotted) as nested submodules so named_parameters() yields HF's names.
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

// x [N, in] @ w [in, out] + b  (HF Conv1D). Without autograd on the CPU (sampling, scoring) the
// register-tiled cpu_linear, else BLAS.
inline at::Tensor conv1d(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  if (cpu_linear_applies(x, w)) return cpu_linear(x, w, b, /*w_transposed=*/false);
  auto sizes = x.sizes().vec();
  sizes.back() = w.size(1);
  return at::addmm(b, x.reshape({-1, x.size(-1)}), w).view(sizes);
}

// Score given to masked keys: the dtype's lowest finite value (fp16 and bf16 both hold -65504).
inline at::Scalar mask_value(const at::Tensor& t) {
  if (t.scalar_type() == at::kFloat) return at::Scalar(std::numeric_limits<float>::lowest());
  if (t.scalar_type() == at::kDouble) return at::Scalar(std::numeric_limits<double>::lowest());
  return at::Scalar(-65504.0);
}

}  // namespace

Gpt2Impl::Gpt2Impl(const Gpt2Config& cfg) : cfg_(cfg) {
  const int64_t C = cfg.n_embd, I = cfg.inner();
  const double std = 0.02, proj_std = 0.02 / std::sqrt(2.0 * cfg.n_layer);  // HF's GPT-2 init
  wte_ = add_param(*this, "wte.weight", torch::randn({cfg.vocab_size, C}) * std);
  wpe_ = add_param(*this, "wpe.weight", torch::randn({cfg.n_positions, C}) * std);
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    auto L = std::make_unique<Gpt2Layer>();
    const std::string p = "h." + std::to_string(l) + ".";
    L->ln_1_w = add_param(*this, p + "ln_1.weight", torch::ones({C}));
    L->ln_1_b = add_param(*this, p + "ln_1.bias", torch::zeros({C}));
    L->c_attn_w = add_param(*this, p + "attn.c_attn.weight", torch::randn({C, 3 * C}) * std);
    L->c_attn_b = add_param(*this, p + "attn.c_attn.bias", torch::zeros({3 * C}));
    L->attn_proj_w = add_param(*this, p + "attn.c_proj.weight", torch::randn({C, C}) * proj_std);
    L->attn_proj_b = add_param(*this, p + "attn.c_proj.bias", torch::zeros({C}));
    L->ln_2_w = add_param(*this, p + "ln_2.weight", torch::ones({C}));
    L->ln_2_b = add_param(*this, p + "ln_2.bias", torch::zeros({C}));
    L->c_fc_w = add_param(*this, p + "mlp.c_fc.weight", torch::randn({C, I}) * std);
    L->c_fc_b = add_param(*this, p + "mlp.c_fc.bias", torch::zeros({I}));
    L->mlp_proj_w = add_param(*this, p + "mlp.c_proj.weight", torch::randn({I, C}) * proj_std);
    L->mlp_proj_b = add_param(*this, p + "mlp.c_proj.bias", torch::zeros({C}));
    layers_.push_back(std::move(L));
  }
  ln_f_w_ = add_param(*this, "ln_f.weight", torch::ones({C}));
  ln_f_b_ = add_param(*this, "ln_f.bias", torch::zeros({C}));
}

Gpt2Impl::~Gpt2Impl() = default;

at::Tensor Gpt2Impl::forward_hidden(const at::Tensor& ids, const at::Tensor& attention_mask,
                                    const at::Tensor& position_ids, KVCache* cache) {
  TORCH_CHECK(ids.dim() == 2, "Gpt2::forward_hidden: ids must be [B, T], got ", ids.sizes());
  const int64_t B = ids.size(0), T = ids.size(1);
  const int64_t H = cfg_.n_head, C = cfg_.n_embd, D = C / H;
  const int64_t past = cache ? cache->length() : 0;
  const int64_t S = past + T;  // keys visible to this call
  TORCH_CHECK(S <= cfg_.n_positions, "Gpt2::forward_hidden: ", S, " positions exceed n_positions ",
              cfg_.n_positions);
  const auto dev = wte_.device();
  at::Tensor input = ids.to(dev, at::kLong);
  at::Tensor mask;
  if (attention_mask.defined()) {
    TORCH_CHECK(attention_mask.dim() == 2 && attention_mask.size(0) == B && attention_mask.size(1) == S,
                "Gpt2::forward_hidden: attention_mask must be [B, past+T] = [", B, ", ", S, "], got ",
                attention_mask.sizes());
    mask = attention_mask.to(dev, at::kLong);
  }
  at::Tensor pos;
  if (position_ids.defined()) {
    TORCH_CHECK(position_ids.sizes() == ids.sizes(), "Gpt2::forward_hidden: position_ids must be [B, T]");
    pos = position_ids.to(dev, at::kLong);
  } else if (mask.defined()) {
    pos = (mask.cumsum(1) - 1).clamp_min(0).narrow(1, past, T);  // [B, T]
  } else {
    pos = at::arange(past, S, at::TensorOptions().dtype(at::kLong).device(dev)).unsqueeze(0).expand({B, T});
  }

  // allowed[b, 0, i, j]: query i (absolute past+i) may attend key j. Undefined = plain causal.
  at::Tensor allowed;
  const bool plain_causal = !mask.defined();
  if (!plain_causal || (past > 0 && T > 1)) {
    auto opts = at::TensorOptions().dtype(at::kLong).device(dev);
    auto causal = at::arange(S, opts).unsqueeze(0) <= (at::arange(T, opts) + past).unsqueeze(1);  // [T, S]
    allowed = causal.unsqueeze(0);                                                                // [1, T, S]
    if (mask.defined()) allowed = allowed & (mask != 0).unsqueeze(1);                              // [B, T, S]
    allowed = allowed.unsqueeze(1);                                                                // [B|1, 1, T, S]
  }

  at::Tensor x = at::embedding(wte_, input) + at::embedding(wpe_, pos);  // [B, T, C]
  if (cache && cache->keys.size() != layers_.size()) {
    cache->keys.assign(layers_.size(), at::Tensor());
    cache->values.assign(layers_.size(), at::Tensor());
  }
  const double scale = cfg_.scale_attn_weights ? 1.0 / std::sqrt(static_cast<double>(D)) : 1.0;
  const bool tanh_gelu = cfg_.activation_function != "gelu";
  at::Tensor sdpa_bias;  // [B|1, 1, T, S] additive mask for scaled_dot_product_attention
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Gpt2Layer& L = *layers_[l];
    at::Tensor h = at::layer_norm(x, {C}, L.ln_1_w, L.ln_1_b, cfg_.layer_norm_epsilon);
    auto qkv = conv1d(h, L.c_attn_w, L.c_attn_b).view({B, T, 3, H, D}).permute({2, 0, 3, 1, 4});  // [3,B,H,T,D]
    at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
    if (cache) {
      if (cache->capacity > 0) {
        if (cache->key_buffers.size() != layers_.size()) {
          cache->key_buffers.assign(layers_.size(), at::Tensor());
          cache->value_buffers.assign(layers_.size(), at::Tensor());
        }
        auto& kb = cache->key_buffers[l];
        auto& vb = cache->value_buffers[l];
        if (!kb.defined()) {
          TORCH_CHECK(past == 0, "KVCache: reserve() must be called before the first forward");
          kb = at::empty({B, H, cache->capacity, D}, k.options());
          vb = at::empty({B, H, cache->capacity, D}, v.options());
        }
        TORCH_CHECK(S <= kb.size(2), "KVCache: ", S, " positions exceed the reserved ", kb.size(2));
        kb.narrow(2, past, T).copy_(k);
        vb.narrow(2, past, T).copy_(v);
        k = kb.narrow(2, 0, S);
        v = vb.narrow(2, 0, S);
      } else if (past > 0) {
        k = at::cat({cache->keys[l], k}, 2);
        v = at::cat({cache->values[l], v}, 2);
      }
      cache->keys[l] = k;
      cache->values[l] = v;
    }
    at::Tensor a;  // [B, H, T, D]
#if RARLHF_HAVE_SDPA
    if (allowed.defined()) {
      if (!sdpa_bias.defined()) {  // built once per call, shared by all layers
        sdpa_bias = at::zeros(allowed.sizes(), q.options()).masked_fill_(allowed.logical_not(), mask_value(q));
      }
      a = at::scaled_dot_product_attention(q, k, v, sdpa_bias, 0.0, false, scale);
    } else {
      a = at::scaled_dot_product_attention(q, k, v, {}, 0.0, /*is_causal=*/past == 0 && T > 1, scale);
    }
#else
    {
      at::Tensor scores = at::matmul(q, k.transpose(-1, -2)).mul_(scale);  // [B, H, T, S]
      if (allowed.defined()) {
        scores.masked_fill_(allowed.logical_not(), mask_value(q));
      } else if (past == 0 && T > 1) {
        auto upper = at::ones({T, S}, at::TensorOptions().dtype(at::kBool).device(dev)).triu(1);
        scores.masked_fill_(upper, mask_value(q));
      }
      a = at::matmul(at::softmax(scores, -1, at::kFloat).to(v.scalar_type()), v);
    }
#endif
    a = a.transpose(1, 2).reshape({B, T, C});
    x = x + conv1d(a, L.attn_proj_w, L.attn_proj_b);
    h = at::layer_norm(x, {C}, L.ln_2_w, L.ln_2_b, cfg_.layer_norm_epsilon);
    h = conv1d(h, L.c_fc_w, L.c_fc_b);
    h = tanh_gelu ? at::gelu(h, "tanh") : at::gelu(h);
    x = x + conv1d(h, L.mlp_proj_w, L.mlp_proj_b);
  }
  return at::layer_norm(x, {C}, ln_f_w_, ln_f_b_, cfg_.layer_norm_epsilon);
}

at::Tensor Gpt2Impl::lm_logits(const at::Tensor& hidden) {
  TORCH_CHECK(hidden.size(-1) == cfg_.n_embd, "Gpt2::lm_logits: hidden must be [..., ", cfg_.n_embd, "]");
  at::Tensor h = hidden.to(wte_.scalar_type());
  if (cpu_linear_applies(h, wte_)) return cpu_linear(h, wte_, {}, /*w_transposed=*/true);
  return at::matmul(h, wte_.t()).to(at::kFloat);
}

void Gpt2Impl::load_hf_state(const TensorMap& tensors, const std::string& source) {
  auto params = named_parameters(true);
  std::set<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (const auto& [key, t] : tensors) {
    std::string name = starts_with(key, "transformer.") ? key.substr(12) : key;
    if (name == "lm_head.weight" || starts_with(name, "v_head.") || ends_with(name, ".attn.bias") ||
        ends_with(name, ".attn.masked_bias")) {
      continue;  // tied head, TRL value head, HF's causal-mask buffers
    }
    at::Tensor* p = params.find(name);
    if (!p) {
      throw IoError(source + ": unexpected tensor '" + key + "'; not a GPT-2 weight (is this a GPT-2 checkpoint?)");
    }
    if (p->sizes() != t.sizes()) {
      std::ostringstream os;
      os << source << ": tensor '" << key << "' has shape " << t.sizes() << " but config.json implies "
         << p->sizes() << "; the weights do not match the config";
      throw IoError(os.str());
    }
    if (!loaded.insert(name).second) {
      throw IoError(source + ": tensor '" + name + "' given both with and without the 'transformer.' prefix");
    }
    p->copy_(t);
  }
  // Tied checkpoints normally keep wte and drop lm_head; accept the opposite choice too.
  if (!loaded.count("wte.weight") && tensors.count("lm_head.weight")) {
    const auto& head = tensors.at("lm_head.weight");
    if (head.sizes() == wte_.sizes()) {
      wte_.copy_(head);
      loaded.insert("wte.weight");
    }
  }
  for (const auto& item : params) {
    if (!loaded.count(item.key())) {
      throw IoError(source + ": missing tensor '" + item.key() + "' (or 'transformer." + item.key() +
                    "'); the checkpoint is incomplete");
    }
  }
}

std::vector<std::pair<std::string, at::Tensor>> Gpt2Impl::hf_state() {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : named_parameters(true)) out.emplace_back("transformer." + item.key(), item.value());
  return out;
}

ValueHeadImpl::ValueHeadImpl(int64_t n_embd) {
  summary = register_module("summary", torch::nn::Linear(n_embd, 1));
}

at::Tensor ValueHeadImpl::forward(const at::Tensor& hidden) {
  TORCH_CHECK(hidden.size(-1) == summary->weight.size(1), "ValueHead: hidden must be [..., n_embd]");
  return summary->forward(hidden.to(summary->weight.scalar_type())).squeeze(-1);
}

Gpt2 clone_gpt2(Gpt2& model) {
  Gpt2 copy(model->config());
  const auto& w = model->wte();
  copy->to(w.device(), w.scalar_type());
  TensorMap state;
  for (auto& [k, v] : model->hf_state()) state.emplace(k, v);
  copy->load_hf_state(state, "clone");
  copy->train(model->is_training());
  return copy;
}

// ---------------------------------------------------------------- policy directories

namespace {

// The checks load_policy and init_policy share; returns the LM dtype.
at::ScalarType check_policy_dir(const std::string& dir, const std::string& dtype, const at::Device& device) {
  const at::ScalarType st = parse_dtype(dtype);
  if (st == at::kHalf && device.is_cpu()) {
    throw ConfigError("model.dtype: float16 is GPU-only (CPU kernels lack it); use bfloat16 or float32 on CPU");
  }
  if (!fsys::is_directory(dir)) throw IoError(dir + ": not a directory; expected a Hugging Face GPT-2 folder");
  const std::string cfg_path = dir + "/config.json";
  if (!file_exists(cfg_path)) throw IoError(cfg_path + ": missing; a GPT-2 policy directory needs config.json");
  return st;
}

}  // namespace

Policy init_policy(const std::string& dir, const std::string& dtype, const at::Device& device) {
  const at::ScalarType st = check_policy_dir(dir, dtype, device);
  Policy p;
  p.dir = dir;
  p.lm = Gpt2(Gpt2Config::from_file(dir + "/config.json"));
  p.value_head = ValueHead(p.lm->config().n_embd);
  p.lm->to(device, st);
  p.value_head->to(device);
  return p;
}

Policy load_policy(const std::string& dir, const std::string& dtype, const at::Device& device) {
  const at::ScalarType st = check_policy_dir(dir, dtype, device);
  const std::string cfg_path = dir + "/config.json";
  Policy p;
  p.dir = dir;
  p.lm = Gpt2(Gpt2Config::from_file(cfg_path));

  std::string source;
  TensorMap weights = load_hf_weights(
      dir, &source,
      "convert it once with python: GPT2LMHeadModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)",
      "expected Hugging Face GPT-2 weights");
  p.lm->load_hf_state(weights, source);
  p.lm->to(device, st);
  p.lm->eval();

  p.value_head = ValueHead(p.lm->config().n_embd);
  TensorMap vh;
  if (file_exists(dir + "/value_head.safetensors")) {
    source = dir + "/value_head.safetensors";
    vh = load_safetensors(source);
  } else if (weights.count("v_head.summary.weight")) {
    vh = weights;  // TRL saved the head inside the model file
  }
  if (!vh.empty()) {
    torch::NoGradGuard no_grad;
    for (const char* k : {"v_head.summary.weight", "v_head.summary.bias"}) {
      if (!vh.count(k)) throw IoError(source + ": missing tensor '" + std::string(k) + "'");
    }
    auto& w = p.value_head->summary->weight;
    auto& b = p.value_head->summary->bias;
    if (vh.at("v_head.summary.weight").sizes() != w.sizes() || vh.at("v_head.summary.bias").sizes() != b.sizes()) {
      throw IoError(source + ": v_head.summary shapes do not match n_embd " + std::to_string(w.size(1)));
    }
    w.copy_(vh.at("v_head.summary.weight"));
    b.copy_(vh.at("v_head.summary.bias"));
  } else {
    RARLHF_LOG_DEBUG("{}: no value_head.safetensors; starting from a fresh value head", dir);
  }
  p.value_head->to(device, at::kFloat);
  return p;
}

void save_policy(Policy& p, const std::string& out_dir, const std::string& tokenizer_src_dir) {
  TORCH_CHECK(p.lm, "save_policy: the policy has no model");
  std::string dir = out_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  fsys::remove_all(tmp, ec);
  make_dirs(tmp);

  nlohmann::json cfg = p.lm->config().to_json();
  const auto st = p.lm->wte().scalar_type();
  cfg["torch_dtype"] = st == at::kBFloat16 ? "bfloat16" : st == at::kHalf ? "float16" : "float32";
  write_file_atomic(tmp + "/config.json", cfg.dump(2) + "\n");
  save_safetensors(tmp + "/model.safetensors", p.lm->hf_state());
  if (p.value_head) {
    save_safetensors(tmp + "/value_head.safetensors", {{"v_head.summary.weight", p.value_head->summary->weight},
                                                       {"v_head.summary.bias", p.value_head->summary->bias}});
  }
  if (!tokenizer_src_dir.empty()) {
    int copied = 0;
    for (const char* f : {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                          "special_tokens_map.json", "added_tokens.json", "encoder.json", "vocab.bpe",
                          "generation_config.json"}) {
      const std::string src = tokenizer_src_dir + "/" + f;
      if (!file_exists(src)) continue;
      fsys::copy_file(src, tmp + "/" + f, fsys::copy_options::overwrite_existing, ec);
      if (ec) throw IoError(src + ": cannot copy into " + tmp + " (" + ec.message() + ")");
      ++copied;
    }
    if (copied == 0) {
      throw IoError(tokenizer_src_dir + ": no tokenizer files (vocab.json/merges.txt/tokenizer.json) to copy");
    }
  }
  // Swap into place: the old directory survives until the new one is complete.
  const std::string old = dir + ".old";
  fsys::remove_all(old, ec);
  if (fsys::exists(dir)) {
    fsys::rename(dir, old, ec);
    if (ec) throw IoError(dir + ": cannot move the previous checkpoint aside (" + ec.message() + ")");
  }
  fsys::rename(tmp, dir, ec);
  if (ec) throw IoError(dir + ": cannot rename " + tmp + " into place (" + ec.message() + ")");
  fsys::remove_all(old, ec);
}

}  // namespace rarlhf
