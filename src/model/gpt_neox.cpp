// GPT-NeoX / Pythia config.json, forward and HF checkpoint mapping: see include/rarlhf/model/gpt_neox.h.
// Behaviour follows transformers' modeling_gpt_neox.py; the blocks are src/model/blocks.h.
#include "rarlhf/model/gpt_neox.h"

#include <torch/torch.h>

#include <cmath>

#include "blocks.h"
#include "rarlhf/common/strings.h"

namespace rarlhf {
using model_detail::add_param;
using model_detail::linear;

GptNeoXConfig GptNeoXConfig::from_json(const nlohmann::json& j, const std::string& origin) {
  model_detail::ConfigReader r(j, origin, "GPT-NeoX");
  GptNeoXConfig c;
  c.model_type = "gpt_neox";
  c.n_embd = r.require_int("hidden_size", 1);
  c.n_layer = r.require_int("num_hidden_layers", 1);
  c.n_head = r.require_int("num_attention_heads", 1);
  c.intermediate = r.require_int("intermediate_size", 1);
  c.vocab_size = r.require_int("vocab_size", 1);
  c.n_positions = r.require_int("max_position_embeddings", 1);
  if (c.n_embd % c.n_head != 0) {
    throw r.error("num_attention_heads", "must divide hidden_size (" + std::to_string(c.n_embd) + ")");
  }
  const auto rope = model_detail::read_rope_settings(r, "rotary_emb_base", 10000.0);
  c.rope_theta = rope.theta;
  c.rope_scaling = rope.scaling;
  c.rotary_pct = rope.has_partial ? rope.partial_rotary_factor : r.get_double("rotary_pct", 0.25);
  if (!(c.rotary_pct > 0 && c.rotary_pct <= 1)) throw r.error("rotary_pct", "must be in (0, 1]");
  c.layer_norm_eps = r.get_double("layer_norm_eps", 1e-5);
  c.hidden_act = r.get_string("hidden_act", "gelu");
  if (!model_detail::activation_supported(c.hidden_act)) {
    throw r.error("hidden_act", "\"" + c.hidden_act + "\" is not supported; use gelu, gelu_new, silu or relu");
  }
  c.use_parallel_residual = r.get_bool("use_parallel_residual", true);
  c.attention_bias = r.get_bool("attention_bias", true);
  c.tie_word_embeddings = r.get_bool("tie_word_embeddings", false);
  c.initializer_range = r.get_double("initializer_range", 0.02);
  model_detail::make_rope(c.rotary_ndims(), c.rope_theta, false, c.rope_scaling, origin);  // fails at load
  model_detail::read_common_ids(r, c);
  return c;
}

nlohmann::json GptNeoXConfig::to_json() const {
  nlohmann::json j = source.is_object() ? source : nlohmann::json::object();
  j.erase("_name_or_path");
  j["architectures"] = {"GPTNeoXForCausalLM"};
  j["hidden_size"] = n_embd;
  j["num_hidden_layers"] = n_layer;
  j["num_attention_heads"] = n_head;
  j["intermediate_size"] = intermediate;
  j["vocab_size"] = vocab_size;
  j["max_position_embeddings"] = n_positions;
  if (!j.contains("rope_parameters")) {
    j["rotary_pct"] = rotary_pct;
    if (!j.contains("rotary_emb_base")) j["rotary_emb_base"] = rope_theta;
  }
  j["layer_norm_eps"] = layer_norm_eps;
  j["hidden_act"] = hidden_act;
  j["use_parallel_residual"] = use_parallel_residual;
  j["attention_bias"] = attention_bias;
  j["tie_word_embeddings"] = tie_word_embeddings;
  model_detail::write_common_ids(*this, j);
  return j;
}

struct GptNeoXLayer {
  at::Tensor ln1_w, ln1_b, ln2_w, ln2_b, qkv_w, qkv_b, dense_w, dense_b, up_w, up_b, down_w, down_b;
  int qkv = 0, dense = 0, up = 0, down = 0;  // linear sites (LoRA)
};

struct GptNeoXImpl::RopeState {
  model_detail::Rope rope;
};

GptNeoXImpl::GptNeoXImpl(const GptNeoXConfig& cfg) : cfg_(cfg) {
  const int64_t C = cfg.n_embd, I = cfg.intermediate;
  const double std = cfg.initializer_range;
  auto normal = [&](std::vector<int64_t> shape) { return torch::randn(shape) * std; };
  embed_in_ = add_param(*this, "gpt_neox.embed_in.weight", normal({cfg.vocab_size, C}));
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    auto L = std::make_unique<GptNeoXLayer>();
    const std::string p = "gpt_neox.layers." + std::to_string(l) + ".";
    L->ln1_w = add_param(*this, p + "input_layernorm.weight", torch::ones({C}));
    L->ln1_b = add_param(*this, p + "input_layernorm.bias", torch::zeros({C}));
    L->ln2_w = add_param(*this, p + "post_attention_layernorm.weight", torch::ones({C}));
    L->ln2_b = add_param(*this, p + "post_attention_layernorm.bias", torch::zeros({C}));
    L->qkv_w = add_param(*this, p + "attention.query_key_value.weight", normal({3 * C, C}));
    L->dense_w = add_param(*this, p + "attention.dense.weight", normal({C, C}));
    if (cfg.attention_bias) {
      L->qkv_b = add_param(*this, p + "attention.query_key_value.bias", torch::zeros({3 * C}));
      L->dense_b = add_param(*this, p + "attention.dense.bias", torch::zeros({C}));
    }
    L->up_w = add_param(*this, p + "mlp.dense_h_to_4h.weight", normal({I, C}));
    L->up_b = add_param(*this, p + "mlp.dense_h_to_4h.bias", torch::zeros({I}));
    L->down_w = add_param(*this, p + "mlp.dense_4h_to_h.weight", normal({C, I}));
    L->down_b = add_param(*this, p + "mlp.dense_4h_to_h.bias", torch::zeros({C}));
    L->qkv = add_linear_site(p + "attention.query_key_value", C, 3 * C);
    L->dense = add_linear_site(p + "attention.dense", C, C);
    L->up = add_linear_site(p + "mlp.dense_h_to_4h", C, I);
    L->down = add_linear_site(p + "mlp.dense_4h_to_h", I, C);
    layers_.push_back(std::move(L));
  }
  ln_f_w_ = add_param(*this, "gpt_neox.final_layer_norm.weight", torch::ones({C}));
  ln_f_b_ = add_param(*this, "gpt_neox.final_layer_norm.bias", torch::zeros({C}));
  if (!cfg.tie_word_embeddings) embed_out_ = add_param(*this, "embed_out.weight", normal({cfg.vocab_size, C}));
  rope_ = std::make_shared<RopeState>();
  rope_->rope = model_detail::make_rope(cfg.rotary_ndims(), cfg.rope_theta, false, cfg.rope_scaling, "config.json");
}

GptNeoXImpl::~GptNeoXImpl() = default;

at::Tensor GptNeoXImpl::forward_hidden(const at::Tensor& ids, const at::Tensor& attention_mask,
                                       const at::Tensor& position_ids, KVCache* cache) {
  const auto in = model_detail::prepare_forward(ids, attention_mask, position_ids, cache, cfg_.n_positions,
                                                embed_in_.device(), "GptNeoX");
  const int64_t B = in.B, T = in.T, H = cfg_.n_head, C = cfg_.n_embd, D = cfg_.head_dim();
  const double eps = cfg_.layer_norm_eps, scale = 1.0 / std::sqrt(static_cast<double>(D));
  at::Tensor x = at::embedding(embed_in_, in.ids);  // [B, T, C]
  const auto angles = model_detail::rope_angles(rope_->rope, in.pos, x.scalar_type());
  auto bias = std::make_shared<at::Tensor>();  // the additive mask, built by the first block
  const auto& rope = rope_->rope;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const GptNeoXLayer& L = *layers_[l];
    // By value: with gradient checkpointing the block runs again during backward.
    x = run_block([=, &L, &rope](at::Tensor x) {
    at::Tensor h = at::layer_norm(x, {C}, L.ln1_w, L.ln1_b, eps);
    // Per head [q | k | v]: [B, T, H, 3D] -> [B, H, T, 3D].
    at::Tensor qkv = adapt(L.qkv, linear(h, L.qkv_w, L.qkv_b), h).view({B, T, H, 3 * D}).transpose(1, 2);
    at::Tensor q = model_detail::apply_rope(qkv.narrow(-1, 0, D), angles, rope);
    at::Tensor k = model_detail::apply_rope(qkv.narrow(-1, D, D), angles, rope);
    auto [kc, vc] = model_detail::cache_update(cache, l, layers_.size(), k, qkv.narrow(-1, 2 * D, D), in.past);
    at::Tensor a = model_detail::attend(q, kc, vc, in, scale, *bias).transpose(1, 2).reshape({B, T, C});
    a = adapt(L.dense, linear(a, L.dense_w, L.dense_b), a);
    auto mlp = [&](const at::Tensor& y) {
      const at::Tensor u = model_detail::activation(adapt(L.up, linear(y, L.up_w, L.up_b), y), cfg_.hidden_act);
      return adapt(L.down, linear(u, L.down_w, L.down_b), u);
    };
    if (cfg_.use_parallel_residual) {
      return x + a + mlp(at::layer_norm(x, {C}, L.ln2_w, L.ln2_b, eps));  // both branches off the block input
    }
    x = x + a;
    return x + mlp(at::layer_norm(x, {C}, L.ln2_w, L.ln2_b, eps));
    }, x, cache);
  }
  return at::layer_norm(x, {C}, ln_f_w_, ln_f_b_, eps);
}

at::Tensor GptNeoXImpl::lm_logits(const at::Tensor& hidden) {
  TORCH_CHECK(hidden.size(-1) == cfg_.n_embd, "GptNeoX::lm_logits: hidden must be [..., ", cfg_.n_embd, "]");
  return model_detail::head_logits(hidden, cfg_.tie_word_embeddings ? embed_in_ : embed_out_, at::Tensor());
}

void GptNeoXImpl::load_hf_state(const TensorMap& tensors, const std::string& source) {
  const bool tied = cfg_.tie_word_embeddings;
  model_detail::load_named(*this, tensors, source, "GPT-NeoX", [tied](const std::string& key) -> std::string {
    if (ends_with(key, ".attention.bias") || ends_with(key, ".attention.masked_bias") ||
        ends_with(key, "rotary_emb.inv_freq") || starts_with(key, "v_head.")) {
      return "";
    }
    if (tied && key == "embed_out.weight") return "";
    return key;
  });
}

std::shared_ptr<CausalLmImpl> GptNeoXImpl::make_empty() const { return std::make_shared<GptNeoXImpl>(cfg_); }

}  // namespace rarlhf
