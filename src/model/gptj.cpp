// GPT-J config.json, forward and HF checkpoint mapping: see include/rarlhf/model/gptj.h. Behaviour
// follows transformers' modeling_gptj.py; the blocks are src/model/blocks.h.
#include "rarlhf/model/gptj.h"

#include <torch/torch.h>

#include <cmath>

#include "blocks.h"
#include "rarlhf/common/strings.h"

namespace rarlhf {
using model_detail::add_param;
using model_detail::linear;

GptJConfig GptJConfig::from_json(const nlohmann::json& j, const std::string& origin) {
  model_detail::ConfigReader r(j, origin, "GPT-J");
  GptJConfig c;
  c.model_type = "gptj";
  c.n_embd = r.require_int("n_embd", 1);
  c.n_layer = r.require_int("n_layer", 1);
  c.n_head = r.require_int("n_head", 1);
  c.n_positions = r.require_int("n_positions", 1);
  c.vocab_size = r.require_int("vocab_size", 1);
  c.n_inner = r.get_int("n_inner", 0, 1);
  if (c.n_embd % c.n_head != 0) throw r.error("n_head", "must divide n_embd (" + std::to_string(c.n_embd) + ")");
  c.rotary_dim = r.get_int("rotary_dim", 0, 2);
  if (c.rotary_dim > c.head_dim() || c.rotary_dim % 2 != 0) {
    throw r.error("rotary_dim", "must be even and <= the head size " + std::to_string(c.head_dim()));
  }
  c.layer_norm_epsilon = r.get_double("layer_norm_epsilon", 1e-5);
  c.activation_function = r.get_string("activation_function", "gelu_new");
  if (!model_detail::activation_supported(c.activation_function)) {
    throw r.error("activation_function", "\"" + c.activation_function + "\" is not supported; use gelu_new or gelu");
  }
  if (r.get_bool("tie_word_embeddings", false)) {
    throw r.error("tie_word_embeddings", "true is not supported; GPT-J has its own lm_head (with bias)");
  }
  c.initializer_range = r.get_double("initializer_range", 0.02);
  model_detail::read_common_ids(r, c);
  return c;
}

nlohmann::json GptJConfig::to_json() const {
  nlohmann::json j = source.is_object() ? source : nlohmann::json::object();
  j.erase("_name_or_path");
  j["architectures"] = {"GPTJForCausalLM"};
  j["n_embd"] = n_embd;
  j["n_layer"] = n_layer;
  j["n_head"] = n_head;
  j["n_positions"] = n_positions;
  j["vocab_size"] = vocab_size;
  j["n_inner"] = n_inner > 0 ? nlohmann::json(n_inner) : nlohmann::json(nullptr);
  j["rotary_dim"] = rotary_dim > 0 ? nlohmann::json(rotary_dim) : nlohmann::json(nullptr);
  j["layer_norm_epsilon"] = layer_norm_epsilon;
  j["activation_function"] = activation_function;
  j["tie_word_embeddings"] = false;
  model_detail::write_common_ids(*this, j);
  return j;
}

struct GptJLayer {
  at::Tensor ln_w, ln_b, q_w, k_w, v_w, out_w, fc_in_w, fc_in_b, fc_out_w, fc_out_b;
  int q = 0, k = 0, v = 0, out = 0, fc_in = 0, fc_out = 0;  // linear sites (LoRA)
};

struct GptJImpl::RopeState {
  model_detail::Rope rope;
};

GptJImpl::GptJImpl(const GptJConfig& cfg) : cfg_(cfg) {
  const int64_t C = cfg.n_embd, I = cfg.inner();
  const double std = cfg.initializer_range;
  auto normal = [&](std::vector<int64_t> shape) { return torch::randn(shape) * std; };
  wte_ = add_param(*this, "transformer.wte.weight", normal({cfg.vocab_size, C}));
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    auto L = std::make_unique<GptJLayer>();
    const std::string p = "transformer.h." + std::to_string(l) + ".";
    L->ln_w = add_param(*this, p + "ln_1.weight", torch::ones({C}));
    L->ln_b = add_param(*this, p + "ln_1.bias", torch::zeros({C}));
    L->q_w = add_param(*this, p + "attn.q_proj.weight", normal({C, C}));
    L->k_w = add_param(*this, p + "attn.k_proj.weight", normal({C, C}));
    L->v_w = add_param(*this, p + "attn.v_proj.weight", normal({C, C}));
    L->out_w = add_param(*this, p + "attn.out_proj.weight", normal({C, C}));
    L->fc_in_w = add_param(*this, p + "mlp.fc_in.weight", normal({I, C}));
    L->fc_in_b = add_param(*this, p + "mlp.fc_in.bias", torch::zeros({I}));
    L->fc_out_w = add_param(*this, p + "mlp.fc_out.weight", normal({C, I}));
    L->fc_out_b = add_param(*this, p + "mlp.fc_out.bias", torch::zeros({C}));
    L->q = add_linear_site(p + "attn.q_proj", C, C);
    L->k = add_linear_site(p + "attn.k_proj", C, C);
    L->v = add_linear_site(p + "attn.v_proj", C, C);
    L->out = add_linear_site(p + "attn.out_proj", C, C);
    L->fc_in = add_linear_site(p + "mlp.fc_in", C, I);
    L->fc_out = add_linear_site(p + "mlp.fc_out", I, C);
    layers_.push_back(std::move(L));
  }
  ln_f_w_ = add_param(*this, "transformer.ln_f.weight", torch::ones({C}));
  ln_f_b_ = add_param(*this, "transformer.ln_f.bias", torch::zeros({C}));
  head_w_ = add_param(*this, "lm_head.weight", normal({cfg.vocab_size, C}));
  head_b_ = add_param(*this, "lm_head.bias", torch::zeros({cfg.vocab_size}));
  rope_ = std::make_shared<RopeState>();
  rope_->rope = model_detail::make_rope(cfg.rotary(), 10000.0, /*interleaved=*/true, nullptr, "config.json");
}

GptJImpl::~GptJImpl() = default;

at::Tensor GptJImpl::forward_hidden(const at::Tensor& ids, const at::Tensor& attention_mask,
                                    const at::Tensor& position_ids, KVCache* cache) {
  const auto in = model_detail::prepare_forward(ids, attention_mask, position_ids, cache, cfg_.n_positions,
                                                wte_.device(), "GptJ");
  const int64_t B = in.B, T = in.T, H = cfg_.n_head, C = cfg_.n_embd, D = cfg_.head_dim();
  const double scale = 1.0 / std::sqrt(static_cast<double>(D));
  at::Tensor x = at::embedding(wte_, in.ids);  // [B, T, C]
  const auto angles = model_detail::rope_angles(rope_->rope, in.pos, x.scalar_type());
  auto bias = std::make_shared<at::Tensor>();  // the additive mask, built by the first block
  const auto& rope = rope_->rope;
  for (size_t l = 0; l < layers_.size(); ++l) {
    const GptJLayer& L = *layers_[l];
    // By value: with gradient checkpointing the block runs again during backward.
    x = run_block([=, &L, &rope](at::Tensor x) {
    at::Tensor h = at::layer_norm(x, {C}, L.ln_w, L.ln_b, cfg_.layer_norm_epsilon);
    at::Tensor q = adapt(L.q, linear(h, L.q_w, at::Tensor()), h).view({B, T, H, D}).transpose(1, 2);  // [B, H, T, D]
    at::Tensor k = adapt(L.k, linear(h, L.k_w, at::Tensor()), h).view({B, T, H, D}).transpose(1, 2);
    at::Tensor v = adapt(L.v, linear(h, L.v_w, at::Tensor()), h).view({B, T, H, D}).transpose(1, 2);
    q = model_detail::apply_rope(q, angles, rope);
    k = model_detail::apply_rope(k, angles, rope);
    auto [kc, vc] = model_detail::cache_update(cache, l, layers_.size(), k, v, in.past);
    at::Tensor a = model_detail::attend(q, kc, vc, in, scale, *bias).transpose(1, 2).reshape({B, T, C});
    const at::Tensor up =
        model_detail::activation(adapt(L.fc_in, linear(h, L.fc_in_w, L.fc_in_b), h), cfg_.activation_function);
    const at::Tensor mlp = adapt(L.fc_out, linear(up, L.fc_out_w, L.fc_out_b), up);
    return x + adapt(L.out, linear(a, L.out_w, at::Tensor()), a) + mlp;  // attention and MLP in parallel off one LayerNorm
    }, x, cache);
  }
  return at::layer_norm(x, {C}, ln_f_w_, ln_f_b_, cfg_.layer_norm_epsilon);
}

at::Tensor GptJImpl::lm_logits(const at::Tensor& hidden) {
  TORCH_CHECK(hidden.size(-1) == cfg_.n_embd, "GptJ::lm_logits: hidden must be [..., ", cfg_.n_embd, "]");
  return model_detail::head_logits(hidden, head_w_, head_b_);
}

void GptJImpl::load_hf_state(const TensorMap& tensors, const std::string& source) {
  model_detail::load_named(*this, tensors, source, "GPT-J", [](const std::string& key) -> std::string {
    if (ends_with(key, ".attn.bias") || ends_with(key, ".attn.masked_bias") || starts_with(key, "v_head.") ||
        ends_with(key, "embed_positions")) {
      return "";
    }
    return key;
  });
}

std::shared_ptr<CausalLmImpl> GptJImpl::make_empty() const { return std::make_shared<GptJImpl>(cfg_); }

}  // namespace rarlhf
