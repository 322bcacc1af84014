// LoRA adapters and PEFT's adapter format: see include/rarlhf/model/lora.h. Names, defaults and the
// matching rule follow peft's tuners/lora (LoraConfig, LoraLayer.update_layer, get_peft_model_state_dict)
// and tuners_utils.check_target_module_exists.
#include "rarlhf/model/lora.h"

#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "blocks.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/config/config.h"
#include "rarlhf/io/safetensors.h"

namespace rarlhf {
namespace fsys = std::filesystem;

namespace {

constexpr const char* kPrefix = "base_model.model.";  // PEFT's PeftModel -> LoraModel -> the HF model
constexpr const char* kAllLinear = "all-linear";

bool matches(const LoraSettings& s, const std::string& path) {
  if (!s.target_regex.empty()) return std::regex_match(path, std::regex(s.target_regex));
  for (const auto& t : s.target_modules) {
    if (t == kAllLinear || path == t || ends_with(path, "." + t)) return true;
  }
  return false;
}

}  // namespace

double LoraSettings::scaling() const {
  return use_rslora ? alpha / std::sqrt(static_cast<double>(r)) : alpha / static_cast<double>(r);
}

std::vector<std::string> default_lora_targets(const std::string& model_type) {
  if (model_type == "gpt2") return {"c_attn"};
  if (model_type == "gpt_neox") return {"query_key_value"};
  return {"q_proj", "v_proj"};  // gptj, llama, mistral, qwen2
}

LoraAdaptersImpl::LoraAdaptersImpl(const CausalLmImpl& lm, LoraSettings s, const std::string& field)
    : LoraAdaptersImpl(lm.linear_sites(), lm.config().model_type, std::move(s), field, /*random_init=*/true) {
  to(lm.device());
}

LoraAdaptersImpl::LoraAdaptersImpl(std::vector<LinearSite> sites, const std::string& model_type, LoraSettings s,
                                   const std::string& field, bool random_init)
    : settings_(std::move(s)) {
  if (settings_.r < 1) throw ConfigError(field + ".r: " + std::to_string(settings_.r) + " must be >= 1");
  if (!(settings_.alpha > 0)) throw ConfigError(field + ".alpha: must be > 0");
  if (!(settings_.dropout >= 0 && settings_.dropout < 1)) throw ConfigError(field + ".dropout: must be in [0, 1)");
  if (settings_.target_modules.empty() && settings_.target_regex.empty()) {
    settings_.target_modules = default_lora_targets(model_type);
  }
  if (!settings_.target_regex.empty()) {
    try {
      std::regex check(settings_.target_regex);
    } catch (const std::regex_error& e) {
      throw ConfigError(field + ".target_modules: \"" + excerpt(settings_.target_regex) + "\" is not a regex (" +
                        e.what() + ")");
    }
  }
  scaling_ = settings_.scaling();
  std::string all;
  for (auto& site : sites) {
    site.weight = at::Tensor();  // names and shapes only: the model keeps its weights
    const std::string leaf = site.name.substr(site.name.rfind('.') + 1);
    if (all.find(" " + leaf + ",") == std::string::npos) all += " " + leaf + ",";
  }
  sites_ = std::move(sites);
  if (!all.empty()) all.pop_back();
  for (const auto& t : settings_.target_modules) {
    bool hit = false;
    for (const auto& site : sites_) hit = hit || t == kAllLinear || site.name == t || ends_with(site.name, "." + t);
    if (!hit) {
      throw ConfigError(field + ".target_modules: \"" + excerpt(t) + "\" names no linear layer of this " + model_type +
                        " model; its layers are" + all + " (or \"all-linear\")");
    }
  }
  const auto opts = at::TensorOptions().dtype(at::kFloat);
  int adapted = 0;
  for (const auto& site : sites_) {
    if (!matches(settings_, site.name)) {
      a_.emplace_back();
      b_.emplace_back();
      continue;
    }
    const double bound = 1.0 / std::sqrt(static_cast<double>(site.in));  // kaiming_uniform_(a=sqrt(5))
    at::Tensor a = random_init ? torch::empty({settings_.r, site.in}, opts).uniform_(-bound, bound)
                               : torch::zeros({settings_.r, site.in}, opts);
    a_.push_back(model_detail::add_param(*this, site.name + ".lora_A.weight", a));
    b_.push_back(model_detail::add_param(*this, site.name + ".lora_B.weight", torch::zeros({site.out, settings_.r}, opts)));
    ++adapted;
  }
  if (adapted == 0) throw ConfigError(field + ".target_modules: selects no linear layer of this model");
}

std::shared_ptr<LoraAdaptersImpl> LoraAdaptersImpl::frozen_copy() const {
  std::shared_ptr<LoraAdaptersImpl> copy(new LoraAdaptersImpl(sites_, "", settings_, "lora", /*random_init=*/false));
  copy->base_dir = base_dir;
  torch::NoGradGuard no_grad;
  auto dst = copy->named_parameters(true);
  for (const auto& item : named_parameters(true)) {
    at::Tensor& d = dst[item.key()];
    d.set_data(item.value().detach().clone());
    d.set_requires_grad(false);
  }
  return copy;
}

std::vector<std::string> LoraAdaptersImpl::adapted_modules() const {
  std::vector<std::string> out;
  for (size_t i = 0; i < sites_.size(); ++i) {
    if (a_[i].defined()) out.push_back(sites_[i].name);
  }
  return out;
}

bool is_adapter_dir(const std::string& dir) { return file_exists(dir + "/adapter_config.json"); }

bool is_model_dir(const std::string& dir) {
  return file_exists(dir + "/config.json") || is_adapter_dir(dir);
}

LoraSettings read_adapter_config(const std::string& dir, std::string* base_model) {
  const std::string path = dir + "/adapter_config.json";
  const nlohmann::json j = read_json_file(path);
  auto err = [&](const std::string& key, const std::string& what) { return ConfigError(path + ": " + key + ": " + what); };
  if (!j.is_object()) throw ConfigError(path + ": not a JSON object; expected PEFT's adapter_config.json");
  auto has = [&](const char* key) { return j.contains(key) && !j[key].is_null(); };
  const std::string type = has("peft_type") && j["peft_type"].is_string() ? j["peft_type"].get<std::string>() : "";
  if (type != "LORA") {
    throw err("peft_type", "\"" + excerpt(type) + "\" is not supported; rarlhf loads LoRA adapters (\"LORA\")");
  }
  LoraSettings s;
  if (!has("r") || !j["r"].is_number_integer() || j["r"].get<int64_t>() < 1) throw err("r", "must be an integer >= 1");
  s.r = j["r"].get<int64_t>();
  auto number = [&](const char* key, double fallback) {
    if (!has(key)) return fallback;
    if (!j[key].is_number()) throw err(key, "must be a number");
    return j[key].get<double>();
  };
  auto flag = [&](const char* key) {
    if (!has(key)) return false;
    if (!j[key].is_boolean()) throw err(key, "must be true or false");
    return j[key].get<bool>();
  };
  s.alpha = number("lora_alpha", 8);
  s.dropout = number("lora_dropout", 0);
  s.use_rslora = flag("use_rslora");
  if (has("target_modules")) {
    const auto& t = j["target_modules"];
    if (t.is_string()) {
      if (t.get<std::string>() == kAllLinear) {
        s.target_modules = {kAllLinear};
      } else {
        s.target_regex = t.get<std::string>();
      }
    } else if (t.is_array()) {
      for (const auto& x : t) {
        if (!x.is_string()) throw err("target_modules", "must be a list of module names or one regex");
        s.target_modules.push_back(x.get<std::string>());
      }
    } else {
      throw err("target_modules", "must be a list of module names or one regex");
    }
  }
  // What PEFT's LoRA can do and rarlhf does not: refused, never approximated.
  if (has("bias") && j["bias"] != "none") throw err("bias", "only \"none\" is supported (trained biases are not)");
  for (const char* key : {"use_dora", "lora_bias", "use_qalora", "use_bdlora"}) {
    if (has(key) && !j[key].is_boolean()) throw err(key, "must be true or false");
    if (flag(key)) throw err(key, "is not supported; rarlhf implements plain LoRA");
  }
  // LoRA variants whose forward differs from W x + B A x * scaling.
  for (const char* key : {"alora_invocation_tokens", "arrow_config", "kasa_config", "velora_config",
                          "monteclora_config", "layer_replication", "trainable_token_indices"}) {
    if (!has(key)) continue;
    if (!((j[key].is_object() || j[key].is_array()) && j[key].empty())) {
      throw err(key, "is set; rarlhf implements plain LoRA (leave it null)");
    }
  }
  if (has("init_lora_weights") && j["init_lora_weights"].is_string()) {
    const std::string init = j["init_lora_weights"].get<std::string>();
    if (init != "gaussian") {
      throw err("init_lora_weights", "\"" + excerpt(init) + "\" changes the base weights at initialisation; "
                "convert the adapter against the original base first (peft's path_initial_model_for_weight_conversion)");
    }
  }
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    if (has(key) && !(j[key].is_object() && j[key].empty())) throw err(key, "per-layer ranks/alphas are not supported");
  }
  for (const char* key : {"layers_to_transform", "modules_to_save", "exclude_modules", "target_parameters"}) {
    if (has(key) && !(j[key].is_array() && j[key].empty())) {
      throw err(key, "is set; rarlhf supports adapters on target_modules only (leave it null)");
    }
  }
  if (base_model) {
    *base_model = has("base_model_name_or_path") && j["base_model_name_or_path"].is_string()
                      ? j["base_model_name_or_path"].get<std::string>()
                      : "";
  }
  return s;
}

std::string resolve_adapter_base(const std::string& dir, const std::string& base_model) {
  const std::string path = dir + "/adapter_config.json";
  if (base_model.empty()) {
    throw IoError(path + ": base_model_name_or_path: missing; set it to the base model's directory");
  }
  for (const std::string& candidate : {base_model, dir + "/" + base_model}) {
    if (fsys::is_directory(candidate) && file_exists(candidate + "/config.json")) return candidate;
  }
  throw IoError(path + ": base_model_name_or_path: \"" + excerpt(base_model, 200) +
                "\" is not a model directory here (rarlhf does not download); point it at the base model's folder");
}

void load_adapter_weights(LoraAdaptersImpl& adapters, const std::string& dir) {
  const std::string source = dir + "/adapter_model.safetensors";
  if (!file_exists(source)) {
    throw IoError(source + ": missing" +
                  std::string(file_exists(dir + "/adapter_model.bin")
                                  ? "; convert adapter_model.bin once with peft (save_pretrained(dir, "
                                    "safe_serialization=True))"
                                  : "; a PEFT adapter directory needs it"));
  }
  const TensorMap tensors = load_safetensors(source);
  auto params = adapters.named_parameters(true);
  std::set<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (const auto& [key, t] : tensors) {
    std::string name = starts_with(key, kPrefix) ? key.substr(std::string(kPrefix).size()) : key;
    for (const std::string ab : {".lora_A", ".lora_B"}) {  // PEFT's in-memory names carry the adapter's
      const std::string named = ab + ".default.weight";
      if (ends_with(name, named)) name = name.substr(0, name.size() - named.size()) + ab + ".weight";
    }
    at::Tensor* p = params.find(name);
    if (!p) {
      throw IoError(source + ": unexpected tensor '" + excerpt(key, 200) +
                    "'; not a LoRA weight of the layers adapter_config.json targets");
    }
    if (p->sizes() != t.sizes()) {
      std::ostringstream os;
      os << source << ": tensor '" << key << "' has shape " << t.sizes() << " but the model and r imply "
         << p->sizes();
      throw IoError(os.str());
    }
    if (!at::isFloatingType(t.scalar_type())) throw IoError(source + ": tensor '" + key + "' is not F32, F16 or BF16");
    if (!at::isfinite(t).all().item<bool>()) throw IoError(source + ": tensor '" + key + "' has NaN or infinite values");
    if (!loaded.insert(name).second) throw IoError(source + ": tensor '" + name + "' is given twice");
    p->copy_(t);
  }
  for (const auto& item : params) {
    if (!loaded.count(item.key())) {
      throw IoError(source + ": missing tensor '" + std::string(kPrefix) + item.key() + "'; the adapter is incomplete");
    }
  }
}

void save_adapter(const LoraAdaptersImpl& adapters, const std::string& model_type, const std::string& dir) {
  const LoraSettings& s = adapters.settings();
  bool fan_in_fan_out = false;
  std::set<std::string> targets;  // PEFT writes the set of names it matched by
  for (size_t i = 0; i < adapters.sites().size(); ++i) {
    if (adapters.a(static_cast<int>(i)).defined()) fan_in_fan_out |= adapters.sites()[i].conv1d;
  }
  for (const auto& t : s.target_modules) targets.insert(t);
  nlohmann::json cfg = {
      {"peft_type", "LORA"},
      {"task_type", "CAUSAL_LM"},
      {"r", s.r},
      {"lora_alpha", s.alpha},
      {"lora_dropout", s.dropout},
      {"fan_in_fan_out", fan_in_fan_out},
      {"bias", "none"},
      {"use_rslora", s.use_rslora},
      {"use_dora", false},
      {"init_lora_weights", true},
      {"inference_mode", true},
      {"modules_to_save", nullptr},
      {"layers_to_transform", nullptr},
      {"layers_pattern", nullptr},
      {"rank_pattern", nlohmann::json::object()},
      {"alpha_pattern", nlohmann::json::object()},
      {"base_model_name_or_path", adapters.base_dir},
      {"revision", nullptr},
      {"rarlhf_model_type", model_type}};
  if (!s.target_regex.empty()) {
    cfg["target_modules"] = s.target_regex;
  } else if (targets.size() == 1 && *targets.begin() == kAllLinear) {
    cfg["target_modules"] = kAllLinear;
  } else {
    cfg["target_modules"] = std::vector<std::string>(targets.begin(), targets.end());
  }
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& item : adapters.named_parameters(true)) tensors.emplace_back(kPrefix + item.key(), item.value());
  save_safetensors(dir + "/adapter_model.safetensors", tensors);
  write_file_atomic(dir + "/adapter_config.json", cfg.dump(2) + "\n");
}

void merge_lora(CausalLmImpl& lm) {
  const auto adapters = lm.lora();
  if (!adapters) return;
  torch::NoGradGuard no_grad;
  const auto& sites = lm.linear_sites();
  for (size_t i = 0; i < sites.size(); ++i) {
    const at::Tensor& a = adapters->a(static_cast<int>(i));
    if (!a.defined()) continue;
    at::Tensor delta = at::matmul(adapters->b(static_cast<int>(i)), a) * adapters->scaling();  // [out, in]
    if (sites[i].conv1d) delta = delta.t();
    at::Tensor w = sites[i].weight;
    w.add_(delta.to(w.device(), w.scalar_type()));
  }
  lm.set_lora(nullptr);
}

void add_lora(Policy& policy, const LoraSettings& settings, const std::string& base_dir, const std::string& field) {
  if (policy.lm->lora()) {
    throw ConfigError(field + ".r: the policy already has LoRA adapters (model.path is an adapter); set " + field +
                      ".r=0 to go on training them, or merge them first (rarlhf export --merge)");
  }
  auto adapters = std::make_shared<LoraAdaptersImpl>(*policy.lm, settings, field);
  adapters->base_dir = fsys::absolute(base_dir).lexically_normal().string();
  for (auto& p : policy.lm->parameters()) p.set_requires_grad(false);
  policy.lm->set_lora(adapters);
}

void load_adapter_checkpoint(Policy& policy, const std::string& dir) {
  const auto& mine = policy.lm->lora();
  TORCH_CHECK(mine, "load_adapter_checkpoint: the policy has no adapters");
  if (!is_adapter_dir(dir)) {
    throw IoError(dir + ": holds no adapter_config.json, but this run trains LoRA adapters (lora.r changed since "
                  "the checkpoint?); resume with the settings it was written with");
  }
  LoraSettings theirs = read_adapter_config(dir, nullptr);
  if (theirs.target_modules.empty() && theirs.target_regex.empty()) {
    theirs.target_modules = default_lora_targets(policy.lm->config().model_type);
  }
  std::vector<std::string> modules;
  for (const auto& site : policy.lm->linear_sites()) {
    if (matches(theirs, site.name)) modules.push_back(site.name);
  }
  const bool same = theirs.r == mine->settings().r && theirs.alpha == mine->settings().alpha &&
                    theirs.use_rslora == mine->settings().use_rslora && modules == mine->adapted_modules();
  if (!same) {
    throw IoError(dir + "/adapter_config.json: r " + std::to_string(theirs.r) + ", alpha " + std::to_string(theirs.alpha) +
                  " on " + std::to_string(modules.size()) + " layers, but this run's adapters are r " +
                  std::to_string(mine->settings().r) + ", alpha " + std::to_string(mine->settings().alpha) + " on " +
                  std::to_string(mine->adapted_modules().size()) + "; resume with the lora settings it was written with");
  }
  load_adapter_weights(*mine, dir);
  const std::string vh = dir + "/value_head.safetensors";
  if (!file_exists(vh)) throw IoError(vh + ": missing; the checkpoint is incomplete");
  load_value_head_tensors(*policy.value_head, load_safetensors(vh), vh);
}

LoraSettings lora_settings(const LoraConfig& cfg) {
  LoraSettings s;
  s.r = cfg.r;
  s.alpha = cfg.alpha;
  s.dropout = cfg.dropout;
  s.target_modules = cfg.target_modules;
  s.use_rslora = cfg.use_rslora;
  return s;
}

std::vector<at::Tensor> lm_trainable_parameters(const Policy& policy) {
  if (policy.lm->lora()) return policy.lm->lora()->parameters();
  return policy.lm->parameters();
}

ScopedAdapters::ScopedAdapters(CausalLmImpl& lm, std::shared_ptr<LoraAdaptersImpl> adapters)
    : lm_(lm), saved_(lm.lora()), was_training_(lm.is_training()) {
  lm_.set_lora(std::move(adapters));
  lm_.eval();
}

ScopedAdapters::~ScopedAdapters() {
  lm_.set_lora(saved_);
  lm_.train(was_training_);
}

}  // namespace rarlhf
