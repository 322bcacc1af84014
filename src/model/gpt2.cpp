// GPT-2 config.json, forward and HF checkpoint mapping: see include/rarlhf/model/gpt2.h. The blocks
// (cached attention, linear layers) are shared with the other families (src/model/blocks.h).
#include "rarlhf/model/gpt2.h"

#include <torch/torch.h>

#include <cmath>
#include <set>

#include "blocks.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/strings.h"

namespace rarlhf {
using model_detail::add_param;
using model_detail::conv1d;

Gpt2Config::Gpt2Config() {
  model_type = "gpt2";
  n_layer = 12;
  n_head = 12;
  n_embd = 768;
  n_positions = 1024;
  vocab_size = 50257;
  bos_token_id = 50256;
  eos_token_id = 50256;
  eos_token_ids = {50256};
}

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
  c.eos_token_ids = {c.eos_token_id};
  if (j.contains("pad_token_id") && j["pad_token_id"].is_number_integer()) c.pad_token_id = j["pad_token_id"];
  return c;
}

Gpt2Config Gpt2Config::from_file(const std::string& config_json) {
  return from_json(read_json_file(config_json), config_json);
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
    if (!j.contains(key)) j[key] = 0.1;  // transformers' defaults (applied in training only, by SFT)
  }
  if (!j.contains("initializer_range")) j["initializer_range"] = 0.02;
  return j;
}

// ---------------------------------------------------------------- module

struct Gpt2Layer {
  at::Tensor ln_1_w, ln_1_b, c_attn_w, c_attn_b, attn_proj_w, attn_proj_b;
  at::Tensor ln_2_w, ln_2_b, c_fc_w, c_fc_b, mlp_proj_w, mlp_proj_b;
  int c_attn = 0, attn_proj = 0, c_fc = 0, mlp_proj = 0;  // linear sites (LoRA)
};

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
    const std::string m = "transformer." + p;  // PEFT's module paths in GPT2LMHeadModel
    L->c_attn = add_linear_site(m + "attn.c_attn", C, 3 * C, /*conv1d=*/true);
    L->attn_proj = add_linear_site(m + "attn.c_proj", C, C, true);
    L->c_fc = add_linear_site(m + "mlp.c_fc", C, I, true);
    L->mlp_proj = add_linear_site(m + "mlp.c_proj", I, C, true);
    layers_.push_back(std::move(L));
  }
  ln_f_w_ = add_param(*this, "ln_f.weight", torch::ones({C}));
  ln_f_b_ = add_param(*this, "ln_f.bias", torch::zeros({C}));
}

Gpt2Impl::~Gpt2Impl() = default;

at::Tensor Gpt2Impl::forward_hidden(const at::Tensor& ids, const at::Tensor& attention_mask,
                                    const at::Tensor& position_ids, KVCache* cache) {
  const auto in = model_detail::prepare_forward(ids, attention_mask, position_ids, cache, cfg_.n_positions,
                                                wte_.device(), "Gpt2");
  const int64_t B = in.B, T = in.T, H = cfg_.n_head, C = cfg_.n_embd, D = C / H;
  const DropoutRates drop = active_dropout();  // none unless set and training (SFT)
  auto dropped = [](at::Tensor t, double p) { return p > 0 ? at::dropout(t, p, /*train=*/true) : t; };
  at::Tensor x = dropped(at::embedding(wte_, in.ids) + at::embedding(wpe_, in.pos), drop.embd);  // [B, T, C]
  const double scale = cfg_.scale_attn_weights ? 1.0 / std::sqrt(static_cast<double>(D)) : 1.0;
  const bool tanh_gelu = cfg_.activation_function != "gelu";
  auto bias = std::make_shared<at::Tensor>();  // the additive attention mask, built by the first layer
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Gpt2Layer& L = *layers_[l];
    // By value: with gradient checkpointing the block runs again during backward.
    x = run_block([=, &L](at::Tensor x) {
    at::Tensor h = at::layer_norm(x, {C}, L.ln_1_w, L.ln_1_b, cfg_.layer_norm_epsilon);
    auto qkv = adapt(L.c_attn, conv1d(h, L.c_attn_w, L.c_attn_b), h).view({B, T, 3, H, D}).permute({2, 0, 3, 1, 4});  // [3,B,H,T,D]
    auto [k, v] = model_detail::cache_update(cache, l, layers_.size(), qkv[1], qkv[2], in.past);
    at::Tensor a = model_detail::attend(qkv[0], k, v, in, scale, *bias, drop.attn);  // [B, H, T, D]
    a = a.transpose(1, 2).reshape({B, T, C});
    x = x + dropped(adapt(L.attn_proj, conv1d(a, L.attn_proj_w, L.attn_proj_b), a), drop.resid);
    h = at::layer_norm(x, {C}, L.ln_2_w, L.ln_2_b, cfg_.layer_norm_epsilon);
    h = adapt(L.c_fc, conv1d(h, L.c_fc_w, L.c_fc_b), h);
    h = model_detail::activation(h, tanh_gelu ? "gelu_new" : "gelu");
    return x + dropped(adapt(L.mlp_proj, conv1d(h, L.mlp_proj_w, L.mlp_proj_b), h), drop.resid);
    }, x, cache);
  }
  return at::layer_norm(x, {C}, ln_f_w_, ln_f_b_, cfg_.layer_norm_epsilon);
}

at::Tensor Gpt2Impl::lm_logits(const at::Tensor& hidden) {
  TORCH_CHECK(hidden.size(-1) == cfg_.n_embd, "Gpt2::lm_logits: hidden must be [..., ", cfg_.n_embd, "]");
  return model_detail::head_logits(hidden, wte_, at::Tensor());
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
    if (!at::isFloatingType(t.scalar_type())) {
      throw IoError(source + ": tensor '" + key + "' is stored as " + std::string(c10::toString(t.scalar_type())) +
                    "; a weight must be F32, F16 or BF16");
    }
    if (!loaded.insert(name).second) {
      throw IoError(source + ": tensor '" + name + "' given both with and without the 'transformer.' prefix");
    }
    p->copy_(t);
  }
  // Tied checkpoints normally keep wte and drop lm_head; accept the opposite choice too.
  if (!loaded.count("wte.weight") && tensors.count("lm_head.weight")) {
    const auto& head = tensors.at("lm_head.weight");
    if (head.sizes() == wte_.sizes() && at::isFloatingType(head.scalar_type())) {
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

std::shared_ptr<CausalLmImpl> Gpt2Impl::make_empty() const { return std::make_shared<Gpt2Impl>(cfg_); }

Gpt2 clone_gpt2(Gpt2& model) {
  return Gpt2(std::static_pointer_cast<Gpt2Impl>(clone_lm(model).ptr()));
}

}  // namespace rarlhf
