// Llama / Mistral / Qwen2 config.json, forward and HF checkpoint mapping: see
// include/rarlhf/model/llama.h. Behaviour follows transformers' modeling_llama.py (and
// modeling_mistral.py / modeling_qwen2.py for their options); the blocks are src/model/blocks.h.
#include "rarlhf/model/llama.h"

#include <torch/torch.h>

#include <cmath>

#include "blocks.h"
#include "rarlhf/common/strings.h"

namespace rarlhf {
using model_detail::add_param;
using model_detail::linear;

namespace {

const char* architecture(const std::string& model_type) {
  if (model_type == "mistral") return "MistralForCausalLM";
  if (model_type == "qwen2") return "Qwen2ForCausalLM";
  return "LlamaForCausalLM";
}

}  // namespace

LlamaConfig LlamaConfig::from_json(const nlohmann::json& j, const std::string& origin) {
  model_detail::ConfigReader r(j, origin, "Llama-family");
  LlamaConfig c;
  c.model_type = r.get_string("model_type", "llama");
  if (c.model_type != "llama" && c.model_type != "mistral" && c.model_type != "qwen2") {
    throw r.error("model_type", "\"" + c.model_type + "\" is not a Llama-family type (llama, mistral, qwen2)");
  }
  const bool qwen2 = c.model_type == "qwen2", mistral = c.model_type == "mistral";
  c.n_embd = r.require_int("hidden_size", 1);
  c.n_layer = r.require_int("num_hidden_layers", 1);
  c.n_head = r.require_int("num_attention_heads", 1);
  c.n_kv_head = r.get_int("num_key_value_heads", c.n_head, 1);
  c.intermediate = r.require_int("intermediate_size", 1);
  c.vocab_size = r.require_int("vocab_size", 1);
  c.n_positions = r.require_int("max_position_embeddings", 1);
  if (c.n_head % c.n_kv_head != 0) {
    throw r.error("num_key_value_heads", std::to_string(c.n_kv_head) + " must divide num_attention_heads (" +
                                             std::to_string(c.n_head) + ")");
  }
  if (!r.has("head_dim") && c.n_embd % c.n_head != 0) {
    throw r.error("num_attention_heads", "must divide hidden_size (" + std::to_string(c.n_embd) + ") or set head_dim");
  }
  c.head_dim = r.get_int("head_dim", c.n_embd / c.n_head, 1);
  c.rms_norm_eps = r.get_double("rms_norm_eps", 1e-6);
  const auto rope = model_detail::read_rope_settings(r, "rope_theta", 10000.0);
  c.rope_theta = rope.theta;
  c.rope_scaling = rope.scaling;
  c.partial_rotary_factor = rope.partial_rotary_factor;
  c.hidden_act = r.get_string("hidden_act", "silu");
  if (!model_detail::activation_supported(c.hidden_act)) {
    throw r.error("hidden_act", "\"" + c.hidden_act + "\" is not supported; use silu, gelu, gelu_new or relu");
  }
  const bool attention_bias = r.get_bool("attention_bias", false);
  c.qkv_bias = qwen2 || attention_bias;
  c.o_bias = !qwen2 && attention_bias;
  c.mlp_bias = r.get_bool("mlp_bias", false);
  c.tie_word_embeddings = r.get_bool("tie_word_embeddings", false);
  c.initializer_range = r.get_double("initializer_range", 0.02);
  if (r.get_int("pretraining_tp", 1, 1) != 1) {
    throw r.error("pretraining_tp", "only 1 is supported (the slices compute the same product; set it to 1)");
  }
  // Sliding-window attention changes nothing while a sequence fits the window: refuse longer ones.
  const bool window_on = qwen2 ? r.get_bool("use_sliding_window", false) : mistral || r.has("sliding_window");
  if (window_on && r.has("sliding_window")) {
    c.sliding_window = r.require_int("sliding_window", 1);
    c.n_positions = std::min(c.n_positions, c.sliding_window);
  }
  // The rotary angles are exercised here so a bad scaling block fails at load, naming the key.
  const int64_t rot = static_cast<int64_t>(c.head_dim * c.partial_rotary_factor);
  model_detail::make_rope(rot, c.rope_theta, false, c.rope_scaling, origin);
  model_detail::read_common_ids(r, c);
  return c;
}

nlohmann::json LlamaConfig::to_json() const {
  nlohmann::json j = source.is_object() ? source : nlohmann::json::object();
  j.erase("_name_or_path");
  j["architectures"] = {architecture(model_type)};
  j["hidden_size"] = n_embd;
  j["num_hidden_layers"] = n_layer;
  j["num_attention_heads"] = n_head;
  j["num_key_value_heads"] = n_kv_head;
  j["head_dim"] = head_dim;
  j["intermediate_size"] = intermediate;
  j["vocab_size"] = vocab_size;
  j["rms_norm_eps"] = rms_norm_eps;
  j["hidden_act"] = hidden_act;
  j["tie_word_embeddings"] = tie_word_embeddings;
  if (model_type != "qwen2") {
    j["attention_bias"] = o_bias;
    if (model_type == "llama") j["mlp_bias"] = mlp_bias;
  }
  if (!j.contains("rope_parameters") && !j.contains("rope_theta")) j["rope_theta"] = rope_theta;
  if (!j.contains("max_position_embeddings")) j["max_position_embeddings"] = n_positions;
  model_detail::write_common_ids(*this, j);
  return j;
}

struct LlamaLayer {
  at::Tensor in_norm, q_w, q_b, k_w, k_b, v_w, v_b, o_w, o_b, post_norm, gate_w, gate_b, up_w, up_b, down_w, down_b;
  int q = 0, k = 0, v = 0, o = 0, gate = 0, up = 0, down = 0;  // linear sites (LoRA)
};

struct LlamaImpl::RopeState {
  model_detail::Rope rope;
};

LlamaImpl::LlamaImpl(const LlamaConfig& cfg) : cfg_(cfg) {
  const int64_t C = cfg.n_embd, D = cfg.head_dim, I = cfg.intermediate;
  const int64_t Hq = cfg.n_head * D, Hkv = cfg.n_kv_head * D;
  const double std = cfg.initializer_range;
  auto normal = [&](std::vector<int64_t> shape) { return torch::randn(shape) * std; };
  embed_ = add_param(*this, "model.embed_tokens.weight", normal({cfg.vocab_size, C}));
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    auto L = std::make_unique<LlamaLayer>();
    const std::string p = "model.layers." + std::to_string(l) + ".";
    L->in_norm = add_param(*this, p + "input_layernorm.weight", torch::ones({C}));
    L->q_w = add_param(*this, p + "self_attn.q_proj.weight", normal({Hq, C}));
    L->k_w = add_param(*this, p + "self_attn.k_proj.weight", normal({Hkv, C}));
    L->v_w = add_param(*this, p + "self_attn.v_proj.weight", normal({Hkv, C}));
    L->o_w = add_param(*this, p + "self_attn.o_proj.weight", normal({C, Hq}));
    if (cfg.qkv_bias) {
      L->q_b = add_param(*this, p + "self_attn.q_proj.bias", torch::zeros({Hq}));
      L->k_b = add_param(*this, p + "self_attn.k_proj.bias", torch::zeros({Hkv}));
      L->v_b = add_param(*this, p + "self_attn.v_proj.bias", torch::zeros({Hkv}));
    }
    if (cfg.o_bias) L->o_b = add_param(*this, p + "self_attn.o_proj.bias", torch::zeros({C}));
    L->post_norm = add_param(*this, p + "post_attention_layernorm.weight", torch::ones({C}));
    L->gate_w = add_param(*this, p + "mlp.gate_proj.weight", normal({I, C}));
    L->up_w = add_param(*this, p + "mlp.up_proj.weight", normal({I, C}));
    L->down_w = add_param(*this, p + "mlp.down_proj.weight", normal({C, I}));
    if (cfg.mlp_bias) {
      L->gate_b = add_param(*this, p + "mlp.gate_proj.bias", torch::zeros({I}));
      L->up_b = add_param(*this, p + "mlp.up_proj.bias", torch::zeros({I}));
      L->down_b = add_param(*this, p + "mlp.down_proj.bias", torch::zeros({C}));
    }
    L->q = add_linear_site(p + "self_attn.q_proj", C, Hq);
    L->k = add_linear_site(p + "self_attn.k_proj", C, Hkv);
    L->v = add_linear_site(p + "self_attn.v_proj", C, Hkv);
    L->o = add_linear_site(p + "self_attn.o_proj", Hq, C);
    L->gate = add_linear_site(p + "mlp.gate_proj", C, I);
    L->up = add_linear_site(p + "mlp.up_proj", C, I);
    L->down = add_linear_site(p + "mlp.down_proj", I, C);
    layers_.push_back(std::move(L));
  }
  norm_w_ = add_param(*this, "model.norm.weight", torch::ones({C}));
  if (!cfg.tie_word_embeddings) lm_head_ = add_param(*this, "lm_head.weight", normal({cfg.vocab_size, C}));
  rope_ = std::make_shared<RopeState>();
  rope_->rope = model_detail::make_rope(static_cast<int64_t>(D * cfg.partial_rotary_factor), cfg.rope_theta, false,
                                        cfg.rope_scaling, "config.json");
}

LlamaImpl::~LlamaImpl() = default;

at::Tensor LlamaImpl::forward_hidden(const at::Tensor& ids, const at::Tensor& attention_mask,
                                     const at::Tensor& position_ids, KVCache* cache) {
  const auto in = model_detail::prepare_forward(ids, attention_mask, position_ids, cache, cfg_.n_positions,
                                                embed_.device(), "Llama");
  const int64_t B = in.B, T = in.T, H = cfg_.n_head, Hkv = cfg_.n_kv_head, D = cfg_.head_dim;
  const double eps = cfg_.rms_norm_eps, scale = 1.0 / std::sqrt(static_cast<double>(D));
  at::Tensor x = at::embedding(embed_, in.ids);  // [B, T, C]
  const auto angles = model_detail::rope_angles(rope_->rope, in.pos, x.scalar_type());
  auto bias = std::make_shared<at::Tensor>();  // the additive mask, built by the first block
  const auto& rope = rope_->rope;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const LlamaLayer& L = *layers_[l];
    // By value: with gradient checkpointing the block runs again during backward.
    x = run_block([=, &L, &rope](at::Tensor x) {
    at::Tensor h = model_detail::rms_norm(x, L.in_norm, eps);
    at::Tensor q = adapt(L.q, linear(h, L.q_w, L.q_b), h).view({B, T, H, D}).transpose(1, 2);    // [B, H, T, D]
    at::Tensor k = adapt(L.k, linear(h, L.k_w, L.k_b), h).view({B, T, Hkv, D}).transpose(1, 2);  // [B, Hkv, T, D]
    at::Tensor v = adapt(L.v, linear(h, L.v_w, L.v_b), h).view({B, T, Hkv, D}).transpose(1, 2);
    q = model_detail::apply_rope(q, angles, rope);
    k = model_detail::apply_rope(k, angles, rope);
    auto [kc, vc] = model_detail::cache_update(cache, l, layers_.size(), k, v, in.past);
    at::Tensor a = model_detail::attend(q, kc, vc, in, scale, *bias).transpose(1, 2).reshape({B, T, H * D});
    x = x + adapt(L.o, linear(a, L.o_w, L.o_b), a);
    h = model_detail::rms_norm(x, L.post_norm, eps);
    const at::Tensor gate = adapt(L.gate, linear(h, L.gate_w, L.gate_b), h);  // gate first: LoRA dropout's draws
    const at::Tensor up = adapt(L.up, linear(h, L.up_w, L.up_b), h);
    at::Tensor g = model_detail::gated_activation(gate, up, cfg_.hidden_act);
    return x + adapt(L.down, linear(g, L.down_w, L.down_b), g);
    }, x, cache);
  }
  return model_detail::rms_norm(x, norm_w_, eps);
}

at::Tensor LlamaImpl::lm_logits(const at::Tensor& hidden) {
  TORCH_CHECK(hidden.size(-1) == cfg_.n_embd, "Llama::lm_logits: hidden must be [..., ", cfg_.n_embd, "]");
  return model_detail::head_logits(hidden, cfg_.tie_word_embeddings ? embed_ : lm_head_, at::Tensor());
}

void LlamaImpl::load_hf_state(const TensorMap& tensors, const std::string& source) {
  const bool tied = cfg_.tie_word_embeddings;
  model_detail::load_named(*this, tensors, source, cfg_.model_type, [tied](const std::string& key) -> std::string {
    if (ends_with(key, "rotary_emb.inv_freq") || starts_with(key, "v_head.")) return "";
    if (tied && key == "lm_head.weight") return "";
    return key;
  });
}

std::shared_ptr<CausalLmImpl> LlamaImpl::make_empty() const { return std::make_shared<LlamaImpl>(cfg_); }

}  // namespace rarlhf
