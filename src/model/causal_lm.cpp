// The family table (model_type -> implementation), deep copies, TRL's value head and policy
// directories: see include/rarlhf/model/causal_lm.h.
#include "rarlhf/model/causal_lm.h"

#include "blocks.h"

#include <torch/torch.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/config/config.h"
#include "rarlhf/model/gpt2.h"
#include "rarlhf/model/gpt_neox.h"
#include "rarlhf/model/gptj.h"
#include "rarlhf/model/llama.h"
#include "rarlhf/model/lora.h"

namespace rarlhf {
namespace fsys = std::filesystem;

namespace {

struct Family {
  const char* model_type;
  CausalLm (*make)(const nlohmann::json& config, const std::string& origin);
};

// One row per model_type transformers writes. mistral and qwen2 are the Llama block with options.
const Family kFamilies[] = {
    {"gpt2", [](const nlohmann::json& j, const std::string& o) -> CausalLm { return Gpt2(Gpt2Config::from_json(j, o)); }},
    {"gptj", [](const nlohmann::json& j, const std::string& o) -> CausalLm { return GptJ(GptJConfig::from_json(j, o)); }},
    {"gpt_neox",
     [](const nlohmann::json& j, const std::string& o) -> CausalLm { return GptNeoX(GptNeoXConfig::from_json(j, o)); }},
    {"llama", [](const nlohmann::json& j, const std::string& o) -> CausalLm { return Llama(LlamaConfig::from_json(j, o)); }},
    {"mistral",
     [](const nlohmann::json& j, const std::string& o) -> CausalLm { return Llama(LlamaConfig::from_json(j, o)); }},
    {"qwen2", [](const nlohmann::json& j, const std::string& o) -> CausalLm { return Llama(LlamaConfig::from_json(j, o)); }},
};

// Refuses sizes that cannot be allocated before any allocation does it slowly or with a LibTorch
// backtrace (n_layer: 1e9 used to hang while memory grew; n_embd: 2^31 died in LibTorch without
// naming config.json). The estimate counts embeddings, attention and MLP weights at 2 bytes each
// (the smallest dtype a checkpoint uses), so it errs on the side of loading.
void check_model_size(const nlohmann::json& config, const std::string& origin) {
  auto size_of = [&](std::initializer_list<const char*> keys, double fallback) -> std::pair<double, std::string> {
    for (const char* k : keys) {
      auto it = config.find(k);
      if (it != config.end() && it->is_number() && it->get<double>() > 0) {
        return {it->get<double>(), std::string(k) + "=" + it->dump()};
      }
    }
    return {fallback, ""};
  };
  const auto [hidden, hidden_key] = size_of({"n_embd", "hidden_size", "d_model"}, 0);
  const auto [layers, layers_key] = size_of({"n_layer", "num_hidden_layers"}, 0);
  const auto [vocab, vocab_key] = size_of({"vocab_size"}, 0);
  if (hidden <= 0 || layers <= 0 || vocab <= 0) return;  // the family's reader names what is missing
  const auto [inner, inner_key] = size_of({"n_inner", "intermediate_size"}, 4 * hidden);
  const auto [positions, positions_key] = size_of({"n_positions"}, 0);
  for (const auto& [v, key] : {std::pair{hidden, hidden_key}, {layers, layers_key}, {vocab, vocab_key},
                                {inner, inner_key}, {positions, positions_key}}) {
    if (v >= 2147483648.0) throw ConfigError(origin + ": " + key + " is too large (at most 2^31 - 1); check the file");
  }
  const double params = 2 * vocab * hidden + positions * hidden + layers * (4 * hidden * hidden + 3 * hidden * inner);
  const double ram = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  if (ram > 0 && 2 * params > ram) {
    char msg[160];
    std::snprintf(msg, sizeof msg, "about %.3g parameters (%.3g GiB at 2 bytes each), more than this machine's %.1f GiB",
                  params, 2 * params / (1ULL << 30), ram / (1ULL << 30));
    throw ConfigError(origin + ": " + layers_key + ", " + hidden_key + ", " + vocab_key + " make a model of " + msg +
                      " of memory; check the sizes");
  }
}

}  // namespace

nlohmann::json read_json_file(const std::string& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw IoError(path + ": not valid JSON (" + e.what() + ")");
  }
}

CausalLmImpl::~CausalLmImpl() = default;

int CausalLmImpl::add_linear_site(std::string name, int64_t in, int64_t out, bool conv1d) {
  auto params = named_parameters(true);
  std::string key = name + ".weight";
  // GPT-2 registers its weights without the "transformer." its *LMHeadModel puts in front of them.
  if (!params.find(key) && starts_with(key, "transformer.")) key = key.substr(12);
  const at::Tensor* w = params.find(key);
  TORCH_CHECK(w, "add_linear_site: no parameter ", key);
  sites_.push_back(LinearSite{std::move(name), in, out, conv1d, *w});
  return static_cast<int>(sites_.size()) - 1;
}

void CausalLmImpl::set_lora(std::shared_ptr<LoraAdaptersImpl> adapters) {
  if (adapters) {
    const auto& theirs = adapters->sites();
    bool same = theirs.size() == sites_.size();
    for (size_t i = 0; same && i < sites_.size(); ++i) {
      same = theirs[i].name == sites_[i].name && theirs[i].in == sites_[i].in && theirs[i].out == sites_[i].out;
    }
    if (!same) throw Error("set_lora: the adapters were built for a different model");
  }
  lora_ = std::move(adapters);
}

at::Tensor CausalLmImpl::run_block(std::function<at::Tensor(const at::Tensor&)> block, const at::Tensor& x,
                                   const KVCache* cache) const {
  if (checkpointing_ && !cache && at::GradMode::is_enabled()) return model_detail::checkpoint(std::move(block), x);
  return block(x);
}

at::Tensor CausalLmImpl::adapt(int site, const at::Tensor& y, const at::Tensor& x) const {
  if (!lora_) return y;
  const at::Tensor& a = lora_->a(site);
  if (!a.defined()) return y;
  at::Tensor h = x.to(a.scalar_type());
  const double p = lora_->settings().dropout;
  if (p > 0 && is_training()) h = at::dropout(h, p, /*train=*/true);
  const at::Tensor delta = at::matmul(at::matmul(h, a.t()), lora_->b(site).t()) * lora_->scaling();
  return (y + delta).to(y.scalar_type());  // PEFT adds in the adapter's dtype, then casts back
}

std::vector<std::pair<std::string, at::Tensor>> CausalLmImpl::hf_state() {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (const auto& item : named_parameters(true)) out.emplace_back(item.key(), item.value());
  return out;
}

std::string supported_model_types() {
  std::string out;
  for (const auto& f : kFamilies) out += (out.empty() ? "" : ", ") + std::string(f.model_type);
  return out;
}

CausalLm make_causal_lm(const nlohmann::json& config, const std::string& origin) {
  if (!config.is_object()) throw ConfigError(origin + ": not a JSON object; expected a Hugging Face config.json");
  // GPT-2 configs written by hand (tests, the demo) often omit model_type.
  std::string type = "gpt2";
  if (config.contains("model_type")) {
    if (!config["model_type"].is_string()) throw ConfigError(origin + ": model_type: must be a string");
    type = config["model_type"].get<std::string>();
  }
  for (const auto& f : kFamilies) {
    if (type == f.model_type) {
      check_model_size(config, origin);
      return f.make(config, origin);
    }
  }
  throw ConfigError(origin + ": model_type: \"" + type + "\" is not supported; rarlhf loads " +
                    supported_model_types());
}

CausalLm make_causal_lm_from_file(const std::string& config_json) {
  return make_causal_lm(read_json_file(config_json), config_json);
}

DropoutRates CausalLmImpl::config_dropout() const {
  const LmConfig& c = config();
  auto rate = [&](const char* key, double fallback) {
    const auto it = c.source.find(key);
    return it != c.source.end() && it->is_number() ? it->get<double>() : fallback;
  };
  DropoutRates r;
  if (c.model_type == "gpt2" || c.model_type == "gptj") {
    const double d = c.model_type == "gpt2" ? 0.1 : 0.0;  // GPT2Config / GPTJConfig defaults
    r.embd = rate("embd_pdrop", d);
    r.attn = rate("attn_pdrop", d);
    r.resid = rate("resid_pdrop", d);
  } else if (c.model_type == "gpt_neox") {
    r.attn = rate("attention_dropout", 0.0);
    r.resid = rate("hidden_dropout", 0.0);
  } else {  // the llama family
    r.attn = rate("attention_dropout", 0.0);
  }
  return r;
}

void CausalLmImpl::set_dropout(const DropoutRates& rates, const std::string& field) {
  for (double p : {rates.embd, rates.attn, rates.resid}) {
    if (!(p >= 0 && p < 1)) throw ConfigError(field + ": dropout " + std::to_string(p) + " must be in [0, 1)");
  }
  if (rates.any() && !applies_dropout()) {
    throw ConfigError(field + ": dropout (embeddings " + std::to_string(rates.embd) + ", attention " +
                      std::to_string(rates.attn) + ", residual " + std::to_string(rates.resid) +
                      ") is applied by rarlhf's gpt2 only, not " + config().model_type + "; set " + field +
                      (field == "ppo.dropout" ? "=false" : "=0"));
  }
  dropout_ = rates;
}

CausalLm clone_lm(const CausalLm& model) {
  CausalLm copy(model->make_empty());
  copy->to(model->device(), model->dtype());
  TensorMap state;
  for (auto& [k, v] : model.ptr()->hf_state()) state.emplace(k, v);
  copy->load_hf_state(state, "clone");
  copy->train(model->is_training());
  return copy;
}

ValueHeadImpl::ValueHeadImpl(int64_t n_embd) {
  summary = register_module("summary", torch::nn::Linear(n_embd, 1));
}

at::Tensor ValueHeadImpl::forward(const at::Tensor& hidden) {
  TORCH_CHECK(hidden.size(-1) == summary->weight.size(1), "ValueHead: hidden must be [..., n_embd]");
  at::Tensor h = hidden.to(summary->weight.scalar_type());
  if (dropout > 0 && is_training()) h = at::dropout(h, dropout, /*train=*/true);
  return summary->forward(h).squeeze(-1);
}

at::ScalarType parse_dtype(const std::string& dtype, const std::string& field) {
  using choice::Dtype;
  if (dtype == Dtype::kFloat32) return at::kFloat;
  if (dtype == Dtype::kBfloat16) return at::kBFloat16;
  if (dtype == Dtype::kFloat16) return at::kHalf;
  throw ConfigError(field + ": \"" + dtype + "\" is not a dtype; use " + Dtype::kFloat32 + ", " + Dtype::kBfloat16 +
                    " or " + Dtype::kFloat16);
}

// ---------------------------------------------------------------- policy directories

namespace {

// A NaN or infinite weight (a corrupt or badly converted checkpoint) turns every later number into
// NaN: the policy would generate only EOS and eval would report numbers. Named at load instead.
void check_finite_weights(torch::nn::Module& m, const std::string& source) {
  torch::NoGradGuard no_grad;
  for (const auto& item : m.named_parameters(true)) {
    const at::Tensor finite = at::isfinite(item.value());
    if (finite.all().item<bool>()) continue;
    const int64_t bad = finite.numel() - finite.sum().item<int64_t>();
    throw IoError(source + ": weight '" + item.key() + "' has " + std::to_string(bad) + " of " +
                  std::to_string(finite.numel()) + " values NaN or infinite; the checkpoint is corrupt (re-download or "
                  "re-convert it)");
  }
}

// The checks load_policy and init_policy share; returns the LM dtype.
at::ScalarType check_policy_dir(const std::string& dir, const std::string& dtype, const at::Device& device) {
  const at::ScalarType st = parse_dtype(dtype);
  if (st == at::kHalf && device.is_cpu()) {
    throw ConfigError("model.dtype: float16 is GPU-only (CPU kernels lack it); use bfloat16 or float32 on CPU");
  }
  if (ends_with(dir, ".gguf") && fsys::is_regular_file(dir)) {
    throw ConfigError(dir + ": a GGUF file; convert it once into a model folder and point at that: rarlhf convert --gguf " +
                      dir + " --out DIR");
  }
  if (!fsys::is_directory(dir)) throw IoError(dir + ": not a directory; expected a Hugging Face model folder");
  const std::string cfg_path = dir + "/config.json";
  if (!file_exists(cfg_path)) throw IoError(cfg_path + ": missing; a policy directory needs config.json");
  return st;
}

// config.json, with bos/eos/pad ids it leaves unset taken from generation_config.json (where
// transformers keeps them for many Llama-family checkpoints, eos often as a list).
CausalLm lm_from_dir(const std::string& dir) {
  const std::string cfg_path = dir + "/config.json";
  nlohmann::json cfg = read_json_file(cfg_path);
  const std::string gen_path = dir + "/generation_config.json";
  if (cfg.is_object() && file_exists(gen_path)) {
    const nlohmann::json gen = read_json_file(gen_path);
    if (!gen.is_object()) throw IoError(gen_path + ": not a JSON object");
    for (const char* key : {"bos_token_id", "eos_token_id", "pad_token_id"}) {
      if ((!cfg.contains(key) || cfg[key].is_null()) && gen.contains(key) && !gen[key].is_null()) cfg[key] = gen[key];
    }
  }
  return make_causal_lm(cfg, cfg_path);
}

}  // namespace

Policy init_policy(const std::string& dir, const std::string& dtype, const at::Device& device) {
  const at::ScalarType st = check_policy_dir(dir, dtype, device);
  Policy p;
  p.dir = dir;
  p.lm = lm_from_dir(dir);
  p.value_head = ValueHead(p.lm->config().n_embd);
  p.lm->to(device, st);
  p.value_head->to(device);
  return p;
}

namespace {

// The value head: <dir>/value_head.safetensors, else v_head.* keys of the model weights (TRL saved the
// head inside the model file), else the policy keeps its fresh head.
void load_value_head(Policy& p, const std::string& dir, const TensorMap* weights) {
  TensorMap vh;
  std::string source;
  if (file_exists(dir + "/value_head.safetensors")) {
    source = dir + "/value_head.safetensors";
    vh = load_safetensors(source);
  } else if (weights && weights->count("v_head.summary.weight")) {
    source = dir;
    vh = *weights;
  }
  if (vh.empty()) {
    RARLHF_LOG_DEBUG("{}: no value_head.safetensors; starting from a fresh value head", dir);
    return;
  }
  load_value_head_tensors(*p.value_head, vh, source);
}

}  // namespace

void load_value_head_tensors(ValueHeadImpl& head, const TensorMap& vh, const std::string& source) {
  torch::NoGradGuard no_grad;
  for (const char* k : {"v_head.summary.weight", "v_head.summary.bias"}) {
    if (!vh.count(k)) throw IoError(source + ": missing tensor '" + std::string(k) + "'");
  }
  auto& w = head.summary->weight;
  auto& b = head.summary->bias;
  if (vh.at("v_head.summary.weight").sizes() != w.sizes() || vh.at("v_head.summary.bias").sizes() != b.sizes()) {
    throw IoError(source + ": v_head.summary shapes do not match n_embd " + std::to_string(w.size(1)));
  }
  for (const char* k : {"v_head.summary.weight", "v_head.summary.bias"}) {
    if (!at::isFloatingType(vh.at(k).scalar_type())) {
      throw IoError(source + ": tensor '" + std::string(k) + "' is stored as " +
                    std::string(c10::toString(vh.at(k).scalar_type())) + "; a weight must be F32, F16 or BF16");
    }
  }
  w.copy_(vh.at("v_head.summary.weight"));
  b.copy_(vh.at("v_head.summary.bias"));
  check_finite_weights(head, source);
}

namespace {

// A PEFT adapter directory: its base model (base_model_name_or_path) with the adapters on, the base
// frozen; the value head from the adapter directory when it has one.
Policy load_adapter_policy(const std::string& dir, const std::string& dtype, const at::Device& device) {
  std::string base_model;
  const LoraSettings settings = read_adapter_config(dir, &base_model);
  const std::string base = resolve_adapter_base(dir, base_model);
  if (is_adapter_dir(base)) {
    throw IoError(dir + "/adapter_config.json: base_model_name_or_path: " + base +
                  " is itself an adapter; merge it first (rarlhf export --merge)");
  }
  Policy p = load_policy(base, dtype, device);
  auto adapters = std::make_shared<LoraAdaptersImpl>(*p.lm, settings, dir + "/adapter_config.json");
  adapters->base_dir = fsys::absolute(base).lexically_normal().string();
  load_adapter_weights(*adapters, dir);
  for (auto& t : p.lm->parameters()) t.set_requires_grad(false);
  p.lm->set_lora(adapters);
  p.dir = dir;
  load_value_head(p, dir, nullptr);
  return p;
}

}  // namespace

Policy load_policy(const std::string& dir, const std::string& dtype, const at::Device& device) {
  if (is_adapter_dir(dir)) {
    parse_dtype(dtype);
    return load_adapter_policy(dir, dtype, device);
  }
  const at::ScalarType st = check_policy_dir(dir, dtype, device);
  Policy p;
  p.dir = dir;
  p.lm = lm_from_dir(dir);

  std::string source;
  TensorMap weights = load_hf_weights(
      dir, &source,
      "convert it once with python: AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, "
      "safe_serialization=True)",
      "expected Hugging Face " + p.lm->config().model_type + " weights");
  p.lm->load_hf_state(weights, source);
  check_finite_weights(*p.lm, source);
  p.lm->to(device, st);
  p.lm->eval();
  p.value_head = ValueHead(p.lm->config().n_embd);
  load_value_head(p, dir, &weights);
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

  if (p.lm->lora()) {
    // A LoRA policy is its adapter (PEFT's format, naming the base): the base weights never change.
    save_adapter(*p.lm->lora(), p.lm->config().model_type, tmp);
  } else {
    nlohmann::json cfg = p.lm->hf_config();
    const auto st = p.lm->dtype();
    cfg["torch_dtype"] = st == at::kBFloat16 ? "bfloat16" : st == at::kHalf ? "float16" : "float32";
    write_file_atomic(tmp + "/config.json", cfg.dump(2) + "\n");
    save_safetensors(tmp + "/model.safetensors", p.lm->hf_state());
  }
  if (p.value_head) {
    save_safetensors(tmp + "/value_head.safetensors", {{"v_head.summary.weight", p.value_head->summary->weight},
                                                       {"v_head.summary.bias", p.value_head->summary->bias}});
  }
  if (!tokenizer_src_dir.empty()) {
    int copied = 0;
    for (const char* f : {"vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json",
                          "special_tokens_map.json", "added_tokens.json", "encoder.json", "vocab.bpe",
                          "tokenizer.model", "generation_config.json"}) {
      const std::string src = tokenizer_src_dir + "/" + f;
      if (!file_exists(src)) continue;
      fsys::copy_file(src, tmp + "/" + f, fsys::copy_options::overwrite_existing, ec);
      if (ec) throw IoError(src + ": cannot copy into " + tmp + " (" + ec.message() + ")");
      ++copied;
    }
    if (copied == 0) {
      throw IoError(tokenizer_src_dir + ": no tokenizer files (tokenizer.json/vocab.json/tokenizer.model) to copy");
    }
    // OpenAI's GPT-2 file names (encoder.json + vocab.bpe, as npm ships them) hold what transformers
    // reads as vocab.json + merges.txt: write those names too so AutoTokenizer loads the directory.
    if (file_exists(tmp + "/encoder.json") && file_exists(tmp + "/vocab.bpe") && !file_exists(tmp + "/vocab.json") &&
        !file_exists(tmp + "/tokenizer.json")) {
      for (const auto& [from, to] : {std::pair<const char*, const char*>{"encoder.json", "vocab.json"},
                                     {"vocab.bpe", "merges.txt"}}) {
        fsys::copy_file(tmp + "/" + from, tmp + "/" + to, fsys::copy_options::overwrite_existing, ec);
        if (ec) throw IoError(tmp + "/" + to + ": cannot write (" + ec.message() + ")");
      }
      if (!file_exists(tmp + "/tokenizer_config.json")) {
        const nlohmann::json tc = {{"tokenizer_class", "GPT2Tokenizer"}, {"bos_token", "<|endoftext|>"},
                                   {"eos_token", "<|endoftext|>"}, {"unk_token", "<|endoftext|>"},
                                   {"model_max_length", p.lm->config().n_positions}};
        write_file_atomic(tmp + "/tokenizer_config.json", tc.dump(2) + "\n");
      }
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
