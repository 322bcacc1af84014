// BERT / DistilBERT / RoBERTa sequence classifiers (see include/rarlhf/model/classifier.h).
// Computation follows the transformers modelling code's maths: embeddings (+ positions, + token
// type 0) -> LayerNorm -> N post-LN blocks [self-attention (masked keys get float32's lowest value,
// like transformers) -> add & LN -> FFN (exact erf GELU unless the config says otherwise) -> add &
// LN] -> the family's head on the first token. Everything runs in float32 under InferenceMode.
#include "rarlhf/model/classifier.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/version.h>

#include <cmath>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/kernels/ops.h"

// Fused attention where LibTorch has it (>= 2.1); the manual path computes the same maths.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 1)
#define RARLHF_CLASSIFIER_SDPA 1
#else
#define RARLHF_CLASSIFIER_SDPA 0
#endif

namespace rarlhf {

struct Linear {
  at::Tensor w, b;  // [out, in], [out]
  at::Tensor operator()(const at::Tensor& x) const {
    if (cpu_linear_applies(x, w)) return cpu_linear(x, w, b, /*w_transposed=*/true);  // scoring on the CPU
    return at::linear(x, w, b);
  }
};
struct Norm {
  at::Tensor w, b;
};
struct EncoderLayer {
  Linear q, k, v, o, ffn_in, ffn_out;
  Norm attn_norm, ffn_norm;
};
struct ClassifierWeights {
  ClassifierConfig cfg;
  at::Device device = at::kCPU;
  at::Tensor word, pos, type;  // [V, H], [P, H], [TV, H] (type undefined for DistilBERT)
  Norm emb_norm;
  std::vector<EncoderLayer> layers;
  Linear head_hidden;  // BERT pooler.dense | DistilBERT pre_classifier | RoBERTa classifier.dense
  Linear head_out;     // classifier | classifier | classifier.out_proj
};

namespace {

std::string arch_name(ClassifierArch a) {
  switch (a) {
    case ClassifierArch::kBert: return "bert";
    case ClassifierArch::kDistilBert: return "distilbert";
    default: return "roberta";
  }
}

}  // namespace

// ---------------------------------------------------------------- config

int64_t ClassifierConfig::max_tokens() const {
  return arch == ClassifierArch::kRoberta ? max_position_embeddings - pad_token_id - 1 : max_position_embeddings;
}

ClassifierConfig ClassifierConfig::from_file(const std::string& config_json) {
  return from_json_text(read_file(config_json), config_json);
}

ClassifierConfig ClassifierConfig::from_json_text(const std::string& text, const std::string& origin) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw IoError(origin + ": not valid JSON (" + std::string(e.what()) + "); expected a Hugging Face config.json");
  }
  if (!j.is_object()) throw IoError(origin + ": not a JSON object; expected a Hugging Face config.json");
  auto bad = [&](const std::string& key, const std::string& what) { return ConfigError(origin + ": " + key + ": " + what); };
  ClassifierConfig c;

  std::string arch0;
  if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
      j["architectures"][0].is_string()) {
    arch0 = j["architectures"][0].get<std::string>();
    if (!ends_with(arch0, "ForSequenceClassification"))
      throw bad("architectures", "\"" + arch0 + "\" is not a sequence classifier; use a *ForSequenceClassification "
                                 "checkpoint (e.g. lvwerra/distilbert-imdb)");
  }
  if (j.contains("model_type") && j["model_type"].is_string()) {
    c.model_type = j["model_type"].get<std::string>();
  } else if (!arch0.empty()) {
    c.model_type = starts_with(arch0, "DistilBert") ? "distilbert" : starts_with(arch0, "Roberta") ? "roberta"
                   : starts_with(arch0, "Bert")     ? "bert"
                                                    : arch0;
  } else {
    throw bad("model_type", "missing; expected \"bert\", \"distilbert\" or \"roberta\"");
  }
  if (c.model_type == "bert") c.arch = ClassifierArch::kBert;
  else if (c.model_type == "distilbert") c.arch = ClassifierArch::kDistilBert;
  else if (c.model_type == "roberta") c.arch = ClassifierArch::kRoberta;
  else
    throw bad("model_type", "\"" + c.model_type + "\" is not supported; use a bert, distilbert or roberta classifier");

  auto get_int = [&](const char* key, int64_t& dst, bool required, int64_t min_value) {
    if (!j.contains(key) || j[key].is_null()) {
      if (required) throw bad(key, "missing; a " + c.model_type + " config.json must set it");
      return;
    }
    if (!j[key].is_number_integer()) throw bad(key, "must be an integer, got " + j[key].dump());
    dst = j[key].get<int64_t>();
    if (dst < min_value) throw bad(key, "must be >= " + std::to_string(min_value));
  };
  auto get_str = [&](const char* key, std::string& dst) {
    if (!j.contains(key) || j[key].is_null()) return;
    if (!j[key].is_string()) throw bad(key, "must be a string, got " + j[key].dump());
    dst = j[key].get<std::string>();
  };
  auto get_bool = [&](const char* key) {
    if (!j.contains(key) || j[key].is_null()) return false;
    if (!j[key].is_boolean()) throw bad(key, "must be true or false");
    return j[key].get<bool>();
  };
  std::string act_key;
  if (c.arch == ClassifierArch::kDistilBert) {
    get_int("vocab_size", c.vocab_size, true, 1);
    get_int("dim", c.hidden_size, true, 1);
    get_int("n_layers", c.num_layers, true, 1);
    get_int("n_heads", c.num_heads, true, 1);
    get_int("hidden_dim", c.intermediate_size, true, 1);
    get_int("max_position_embeddings", c.max_position_embeddings, true, 1);
    get_int("pad_token_id", c.pad_token_id, false, 0);
    c.type_vocab_size = 0;
    c.layer_norm_eps = 1e-12;  // fixed in DistilBERT's modelling code
    act_key = "activation";
    if (j.contains("n_heads") && c.hidden_size % c.num_heads != 0) throw bad("n_heads", "must divide dim");
  } else {
    get_int("vocab_size", c.vocab_size, true, 1);
    get_int("hidden_size", c.hidden_size, true, 1);
    get_int("num_hidden_layers", c.num_layers, true, 1);
    get_int("num_attention_heads", c.num_heads, true, 1);
    get_int("intermediate_size", c.intermediate_size, true, 1);
    get_int("max_position_embeddings", c.max_position_embeddings, true, 1);
    get_int("type_vocab_size", c.type_vocab_size, false, 1);
    c.pad_token_id = c.arch == ClassifierArch::kRoberta ? 1 : 0;
    get_int("pad_token_id", c.pad_token_id, false, 0);
    if (j.contains("layer_norm_eps")) {
      if (!j["layer_norm_eps"].is_number()) throw bad("layer_norm_eps", "must be a number");
      c.layer_norm_eps = j["layer_norm_eps"].get<double>();
    }
    act_key = "hidden_act";
    std::string pos_type = "absolute";
    get_str("position_embedding_type", pos_type);
    if (pos_type != "absolute")
      throw bad("position_embedding_type", "\"" + pos_type + "\" is not supported; only \"absolute\"");
    if (get_bool("is_decoder")) throw bad("is_decoder", "true is not supported; reward classifiers are encoders");
    if (c.hidden_size % c.num_heads != 0) throw bad("num_attention_heads", "must divide hidden_size");
  }
  get_str(act_key.c_str(), c.activation);
  static const std::set<std::string> acts = {"gelu", "gelu_new", "gelu_pytorch_tanh", "relu"};
  if (!acts.count(c.activation))
    throw bad(act_key, "\"" + c.activation + "\" is not supported; use gelu, gelu_new, gelu_pytorch_tanh or relu");

  if (j.contains("id2label") && j["id2label"].is_object() && !j["id2label"].empty()) {
    c.num_labels = static_cast<int64_t>(j["id2label"].size());
  } else {
    get_int("num_labels", c.num_labels, false, 1);
  }
  if (c.arch == ClassifierArch::kRoberta && c.max_tokens() < 2)
    throw bad("max_position_embeddings", "leaves no room for tokens after pad_token_id + 1 offset positions");
  return c;
}

// ---------------------------------------------------------------- loading

namespace {

// Maps the checkpoint's names (family prefix stripped, legacy gamma/beta renamed) to tensors and
// checks every expected tensor once; what is left over is an error unless known to be unused.
class WeightTaker {
 public:
  WeightTaker(const ClassifierConfig& cfg, const TensorMap& tensors, std::string source, at::Device device)
      : source_(std::move(source)), device_(device) {
    const std::string prefix = arch_name(cfg.arch) + ".";
    for (const auto& [key, t] : tensors) {
      std::string k = starts_with(key, prefix) ? key.substr(prefix.size()) : key;
      if (ends_with(k, ".gamma")) k = k.substr(0, k.size() - 6) + ".weight";
      if (ends_with(k, ".beta")) k = k.substr(0, k.size() - 5) + ".bias";
      map_[k] = t;
    }
  }
  at::Tensor take(const std::string& name, std::vector<int64_t> shape) {
    auto it = map_.find(name);
    if (it == map_.end())
      throw IoError(source_ + ": missing tensor " + name + " " + shape_str(shape) +
                    "; is this checkpoint the model type its config.json names?");
    at::Tensor t = it->second;
    if (t.sizes().vec() != shape)
      throw IoError(source_ + ": " + name + " has shape " + shape_str(t.sizes().vec()) + ", config.json implies " +
                    shape_str(shape) + "; config.json and weights do not match");
    if (!t.is_floating_point()) throw IoError(source_ + ": " + name + " is not a floating-point tensor");
    if (!at::isfinite(t).all().item<bool>()) {
      throw IoError(source_ + ": " + name + " holds NaN or infinite values; the checkpoint is corrupt (re-download or "
                    "re-convert it)");
    }
    map_.erase(it);
    return t.to(device_, at::kFloat).contiguous();
  }
  Linear linear(const std::string& name, int64_t out, int64_t in) {
    return Linear{take(name + ".weight", {out, in}), take(name + ".bias", {out})};
  }
  Norm norm(const std::string& name, int64_t h) { return Norm{take(name + ".weight", {h}), take(name + ".bias", {h})}; }
  // Leftovers: position_ids buffers and RoBERTa's unused pooler are fine; anything else means the
  // checkpoint is not what config.json says.
  void finish() {
    for (const auto& [k, t] : map_) {
      if (ends_with(k, "position_ids") || starts_with(k, "pooler.")) continue;
      throw IoError(source_ + ": unexpected tensor " + k + "; is this checkpoint the model type its config.json names?");
    }
  }

 private:
  static std::string shape_str(const std::vector<int64_t>& s) {
    std::string out = "[";
    for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
  }
  std::map<std::string, at::Tensor> map_;
  std::string source_;
  at::Device device_;
};

}  // namespace

SequenceClassifier SequenceClassifier::from_tensors(const ClassifierConfig& cfg, const TensorMap& tensors,
                                                    const std::string& source, const at::Device& device) {
  auto w = std::make_shared<ClassifierWeights>();
  w->cfg = cfg;
  w->device = device;
  const int64_t H = cfg.hidden_size, I = cfg.intermediate_size, L = cfg.num_labels;
  WeightTaker t(cfg, tensors, source, device);
  w->word = t.take("embeddings.word_embeddings.weight", {cfg.vocab_size, H});
  w->pos = t.take("embeddings.position_embeddings.weight", {cfg.max_position_embeddings, H});
  if (cfg.arch != ClassifierArch::kDistilBert)
    w->type = t.take("embeddings.token_type_embeddings.weight", {cfg.type_vocab_size, H});
  w->emb_norm = t.norm("embeddings.LayerNorm", H);
  for (int64_t i = 0; i < cfg.num_layers; ++i) {
    EncoderLayer l;
    if (cfg.arch == ClassifierArch::kDistilBert) {
      const std::string p = "transformer.layer." + std::to_string(i) + ".";
      l.q = t.linear(p + "attention.q_lin", H, H);
      l.k = t.linear(p + "attention.k_lin", H, H);
      l.v = t.linear(p + "attention.v_lin", H, H);
      l.o = t.linear(p + "attention.out_lin", H, H);
      l.attn_norm = t.norm(p + "sa_layer_norm", H);
      l.ffn_in = t.linear(p + "ffn.lin1", I, H);
      l.ffn_out = t.linear(p + "ffn.lin2", H, I);
      l.ffn_norm = t.norm(p + "output_layer_norm", H);
    } else {
      const std::string p = "encoder.layer." + std::to_string(i) + ".";
      l.q = t.linear(p + "attention.self.query", H, H);
      l.k = t.linear(p + "attention.self.key", H, H);
      l.v = t.linear(p + "attention.self.value", H, H);
      l.o = t.linear(p + "attention.output.dense", H, H);
      l.attn_norm = t.norm(p + "attention.output.LayerNorm", H);
      l.ffn_in = t.linear(p + "intermediate.dense", I, H);
      l.ffn_out = t.linear(p + "output.dense", H, I);
      l.ffn_norm = t.norm(p + "output.LayerNorm", H);
    }
    w->layers.push_back(std::move(l));
  }
  switch (cfg.arch) {
    case ClassifierArch::kBert:
      w->head_hidden = t.linear("pooler.dense", H, H);
      w->head_out = t.linear("classifier", L, H);
      break;
    case ClassifierArch::kDistilBert:
      w->head_hidden = t.linear("pre_classifier", H, H);
      w->head_out = t.linear("classifier", L, H);
      break;
    case ClassifierArch::kRoberta:
      w->head_hidden = t.linear("classifier.dense", H, H);
      w->head_out = t.linear("classifier.out_proj", L, H);
      break;
  }
  t.finish();
  SequenceClassifier m;
  m.w_ = std::move(w);
  return m;
}

SequenceClassifier SequenceClassifier::load(const std::string& dir, const at::Device& device) {
  const std::string cfg_path = dir + "/config.json";
  if (!file_exists(cfg_path))
    throw IoError(dir + ": no config.json; reward.path must be a Hugging Face classifier directory");
  ClassifierConfig cfg = ClassifierConfig::from_file(cfg_path);
  std::string source;
  TensorMap tensors = load_hf_weights(
      dir, &source,
      "convert it once: python3 -c \"import torch; from safetensors.torch import save_file; d='" + dir +
          "'; sd=torch.load(d+'/pytorch_model.bin', map_location='cpu'); "
          "save_file({k: v.contiguous() for k, v in sd.items()}, d+'/model.safetensors', {'format': 'pt'})\"",
      "download the classifier's safetensors weights into it");
  return from_tensors(cfg, tensors, source, device);
}

const ClassifierConfig& SequenceClassifier::config() const { return w_->cfg; }
const at::Device& SequenceClassifier::device() const { return w_->device; }

// ---------------------------------------------------------------- forward

at::Tensor SequenceClassifier::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                                       const at::Tensor& token_type_ids) const {
  const ClassifierConfig& c = w_->cfg;
  TORCH_CHECK(input_ids.dim() == 2, "classifier: input_ids must be [B, T], got ", input_ids.sizes());
  TORCH_CHECK(attention_mask.sizes() == input_ids.sizes(), "classifier: attention_mask ", attention_mask.sizes(),
              " must match input_ids ", input_ids.sizes());
  TORCH_CHECK(input_ids.size(1) >= 1 && input_ids.size(1) <= c.max_tokens(), "classifier: sequence length ",
              input_ids.size(1), " outside [1, ", c.max_tokens(), "]");
  c10::InferenceMode guard;
  const int64_t B = input_ids.size(0), T = input_ids.size(1), nh = c.num_heads, hd = c.hidden_size / nh;
  at::Tensor ids = input_ids.to(w_->device, at::kLong);
  at::Tensor mask = attention_mask.to(w_->device, at::kFloat);
  TORCH_CHECK(ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < c.vocab_size,
              "classifier: token id outside [0, ", c.vocab_size, ")");

  // Positions: 0..T-1, or RoBERTa's pad-aware ones (pad_token_id + 1 + index among non-pad tokens).
  at::Tensor pos;
  if (c.arch == ClassifierArch::kRoberta) {
    at::Tensor not_pad = ids.ne(c.pad_token_id).to(at::kLong);
    pos = at::cumsum(not_pad, 1) * not_pad + c.pad_token_id;
  } else {
    pos = at::arange(T, ids.options()).unsqueeze(0).expand({B, T});
  }
  at::Tensor x = at::embedding(w_->word, ids) + at::embedding(w_->pos, pos);  // [B, T, H]
  if (w_->type.defined()) {
    if (token_type_ids.defined()) {
      TORCH_CHECK(token_type_ids.sizes() == input_ids.sizes(), "classifier: token_type_ids ", token_type_ids.sizes(),
                  " must match input_ids ", input_ids.sizes());
      at::Tensor tt = token_type_ids.to(w_->device, at::kLong);
      TORCH_CHECK(tt.min().item<int64_t>() >= 0 && tt.max().item<int64_t>() < c.type_vocab_size,
                  "classifier: token type id outside [0, ", c.type_vocab_size, ")");
      x = x + at::embedding(w_->type, tt);
    } else {
      x = x + w_->type[0];  // single segment
    }
  } else {
    TORCH_CHECK(!token_type_ids.defined(), "classifier: DistilBERT has no token types");
  }
  x = at::layer_norm(x, {c.hidden_size}, w_->emb_norm.w, w_->emb_norm.b, c.layer_norm_eps);

  // Padded keys get float32's lowest value, so their softmax weight is exactly 0.
  at::Tensor key_bias = (1.0 - mask).mul(std::numeric_limits<float>::lowest()).view({B, 1, 1, T});
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  auto heads = [&](const at::Tensor& t) { return t.view({B, T, nh, hd}).transpose(1, 2); };  // [B, nh, T, hd]
  for (const EncoderLayer& l : w_->layers) {
    at::Tensor q = heads(l.q(x)), k = heads(l.k(x)), v = heads(l.v(x));
#if RARLHF_CLASSIFIER_SDPA
    at::Tensor ctx = at::scaled_dot_product_attention(q, k, v, key_bias, 0.0, false, scale);  // [B, nh, T, hd]
#else
    at::Tensor scores = at::matmul(q, k.transpose(-1, -2)).mul_(scale).add_(key_bias);  // [B, nh, T, T]
    at::Tensor ctx = at::matmul(at::softmax(scores, -1), v);                           // [B, nh, T, hd]
#endif
    ctx = ctx.transpose(1, 2).reshape({B, T, c.hidden_size});
    x = at::layer_norm(l.o(ctx) + x, {c.hidden_size}, l.attn_norm.w, l.attn_norm.b, c.layer_norm_eps);
    at::Tensor h = l.ffn_in(x);
    if (c.activation == "gelu") h = at::gelu(h);
    else if (c.activation == "relu") h = at::relu(h);
    else h = at::gelu(h, "tanh");
    x = at::layer_norm(l.ffn_out(h) + x, {c.hidden_size}, l.ffn_norm.w, l.ffn_norm.b, c.layer_norm_eps);
  }

  at::Tensor first = x.select(1, 0);  // [B, H]: [CLS] / <s>
  at::Tensor hidden = w_->head_hidden(first);
  hidden = c.arch == ClassifierArch::kDistilBert ? at::relu(hidden) : at::tanh(hidden);
  return w_->head_out(hidden);  // [B, num_labels]
}

}  // namespace rarlhf
