// JSON <-> Config mapping, layering, validation and the generated reference.
// Every struct's visit_fields() is the single list of keys: the readers, the writer, the
// unknown-key check, the choice check and the markdown reference all walk it, so they cannot
// drift apart. The other rules are grouped per section in validate_<section>().
#include "rarlhf/config/config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/strings.h"

namespace rarlhf {
using json = nlohmann::json;

namespace {

const char* type_name(const bool&) { return "a boolean"; }
const char* type_name(const int64_t&) { return "an integer"; }
const char* type_name(const double&) { return "a number"; }
const char* type_name(const std::string&) { return "a string"; }
const char* type_name(const std::vector<double>&) { return "an array of numbers"; }
const char* type_name(const std::vector<std::string>&) { return "an array of strings"; }

std::string kind_of(const json& j) {
  switch (j.type()) {
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number";
    case json::value_t::string: return "a string";
    case json::value_t::array: return "an array";
    case json::value_t::object: return "an object";
    case json::value_t::null: return "null";
    default: return "an unsupported value";
  }
}

// A value as it appears in an error line: its JSON (bytes that are not UTF-8 as U+FFFD), at most
// 80 bytes.
std::string shown(const json& j) { return excerpt(j.dump(-1, ' ', false, json::error_handler_t::replace), 80); }

// run.device: auto, cpu, cuda or cuda:N (N a device index of at most 4 digits).
bool valid_device_spec(const std::string& d) {
  if (d == "auto" || d == "cpu" || d == "cuda") return true;
  if (!starts_with(d, "cuda:") || d.size() == 5 || d.size() > 9) return false;
  return std::all_of(d.begin() + 5, d.end(), [](char c) { return c >= '0' && c <= '9'; });
}

[[noreturn]] void type_error(const std::string& origin, const std::string& path, const char* want,
                             const json& got) {
  throw ConfigError(origin + ": " + excerpt(path) + ": expected " + want + ", got " + kind_of(got) + " (" + shown(got) + ")");
}

// Configs are a few levels deep; far deeper input (a generated or corrupt file) would exhaust the
// stack in recursive walks and make error lines as long as the file.
constexpr int kMaxConfigDepth = 32;

// Parses a config file's or --set value's JSON: nesting depth bounded, a key given twice in one
// object is an error (JSON parsers keep the last silently), a number outside double's range
// (1e400) is named. `what` starts every message ("<file>", "--set KEY=...").
json parse_config_json(const std::string& text, const std::string& what) {
  std::vector<std::set<std::string>> keys;  // per open object
  auto check = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxConfigDepth) {
      throw ConfigError(what + ": nested deeper than " + std::to_string(kMaxConfigDepth) +
                        " levels; a config is SECTION.FIELD: value");
    }
    if (event == json::parse_event_t::object_start) keys.emplace_back();
    if (event == json::parse_event_t::object_end && !keys.empty()) keys.pop_back();
    if (event == json::parse_event_t::key && !keys.empty() && !keys.back().insert(parsed.get<std::string>()).second) {
      throw ConfigError(what + ": key " + shown(parsed) + " appears twice in one object; keep one");
    }
    return true;
  };
  try {
    return json::parse(text, check);
  } catch (const json::out_of_range& e) {  // "number overflow parsing '1e400'"
    std::string m = e.what();
    const auto q = m.find("parsing '");
    const std::string num = q == std::string::npos ? "" : m.substr(q + 9, std::min<size_t>(40, m.size() - q - 10));
    throw ConfigError(what + ": number " + num + " is out of range; write a finite number");
  }
}

void read_value(bool& out, const json& j, const std::string& o, const std::string& p) {
  if (!j.is_boolean()) type_error(o, p, type_name(out), j);
  out = j.get<bool>();
}
void read_value(int64_t& out, const json& j, const std::string& o, const std::string& p) {
  if (j.is_number_unsigned() && j.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
    throw ConfigError(o + ": " + excerpt(p) + ": " + shown(j) + " is out of range; an integer here is at most " +
                      std::to_string(INT64_MAX));
  } else if (j.is_number_integer() || j.is_number_unsigned()) {
    out = j.get<int64_t>();
  } else if (j.is_number_float() && std::floor(j.get<double>()) == j.get<double>() &&
             std::abs(j.get<double>()) < 9e15) {
    out = static_cast<int64_t>(j.get<double>());  // 1e4 written as a float is still an integer
  } else {
    type_error(o, p, type_name(out), j);
  }
}
void read_value(double& out, const json& j, const std::string& o, const std::string& p) {
  if (!j.is_number()) type_error(o, p, type_name(out), j);
  out = j.get<double>();
}
void read_value(std::string& out, const json& j, const std::string& o, const std::string& p) {
  if (!j.is_string()) type_error(o, p, type_name(out), j);
  out = j.get<std::string>();
}
void read_value(std::vector<double>& out, const json& j, const std::string& o,
                const std::string& p) {
  if (!j.is_array()) type_error(o, p, type_name(out), j);
  std::vector<double> v;
  for (size_t i = 0; i < j.size(); ++i) {
    double x = 0;
    read_value(x, j[i], o, p + "[" + std::to_string(i) + "]");
    v.push_back(x);
  }
  out = v;
}
void read_value(std::vector<std::string>& out, const json& j, const std::string& o,
                const std::string& p) {
  if (!j.is_array()) type_error(o, p, type_name(out), j);
  std::vector<std::string> v;
  for (size_t i = 0; i < j.size(); ++i) {
    std::string x;
    read_value(x, j[i], o, p + "[" + std::to_string(i) + "]");
    v.push_back(x);
  }
  out = v;
}

template <class Section>
std::vector<std::string> field_names(Section& s) {
  std::vector<std::string> names;
  s.visit_fields([&](const char* key, auto&, const char*, const std::vector<std::string>& = {}) {
    names.emplace_back(key);
  });
  return names;
}

std::vector<std::string> section_names(Config& c) {
  std::vector<std::string> names;
  c.visit_sections([&](const char* key, auto&) { names.emplace_back(key); });
  return names;
}

// All dotted keys, for did-you-mean across sections (a key put in the wrong section).
std::vector<std::string> all_dotted(Config& c) {
  std::vector<std::string> out;
  c.visit_sections([&](const char* sec, auto& s) {
    for (auto& f : field_names(s)) out.push_back(std::string(sec) + "." + f);
  });
  return out;
}

[[noreturn]] void unknown_key(Config& cfg, const std::string& origin, const std::string& path,
                              const std::vector<std::string>& here) {
  std::string leaf = path.substr(path.rfind('.') == std::string::npos ? 0 : path.rfind('.') + 1);
  std::string prefix = path.rfind('.') == std::string::npos ? "" : path.substr(0, path.rfind('.') + 1);
  std::string guess = did_you_mean(leaf, here);
  std::string hint;
  if (!guess.empty()) {
    hint = "; did you mean '" + prefix + guess + "'?";
  } else {
    std::string g2 = did_you_mean(path, all_dotted(cfg));
    hint = g2.empty() ? "; run `rarlhf config --doc` for the list of keys"
                      : "; did you mean '" + g2 + "'?";
  }
  throw ConfigError(origin + ": " + excerpt(path) + ": unknown key" + hint);
}

}  // namespace

void apply_json(Config& cfg, const json& j, const std::string& origin) {
  if (!j.is_object()) throw ConfigError(origin + ": the top level must be a JSON object");
  const auto sections = section_names(cfg);
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& sec = it.key();
    if (sec == "extends") continue;  // handled by apply_file
    bool found = false;
    cfg.visit_sections([&](const char* name, auto& s) {
      if (sec != name) return;
      found = true;
      if (!it.value().is_object()) type_error(origin, sec, "an object", it.value());
      const auto names = field_names(s);
      for (auto f = it.value().begin(); f != it.value().end(); ++f) {
        bool known = false;
        s.visit_fields([&](const char* key, auto& field, const char*, const std::vector<std::string>& = {}) {
          if (f.key() != key) return;
          known = true;
          read_value(field, f.value(), origin, sec + "." + f.key());
          cfg.sources[sec + "." + f.key()] = origin;
        });
        if (!known) unknown_key(cfg, origin, sec + "." + f.key(), names);
      }
    });
    if (!found) {
      // Name the whole dotted key, so `rsik.alpha` suggests `risk.alpha`.
      if (it.value().is_object() && !it.value().empty()) {
        std::string full = sec + "." + it.value().begin().key();
        std::string g = did_you_mean(full, all_dotted(cfg));
        if (!g.empty()) throw ConfigError(origin + ": " + excerpt(full) + ": unknown key; did you mean '" + g + "'?");
      }
      unknown_key(cfg, origin, sec, sections);
    }
  }
}

void apply_file(Config& cfg, const std::string& path) {
  std::vector<std::string> chain;  // guards against extends cycles
  std::function<void(const std::string&)> load = [&](const std::string& p) {
    for (const auto& c : chain) {
      if (c == p) throw ConfigError(p + ": \"extends\" forms a cycle; remove one of the links");
    }
    chain.push_back(p);
    json j;
    try {
      j = parse_config_json(read_file(p), p);
    } catch (const json::parse_error& e) {
      throw ConfigError(p + ": not valid JSON (" + excerpt(e.what(), 200) + "); fix the syntax");
    }
    if (!j.is_object()) throw ConfigError(p + ": the top level must be a JSON object");
    if (j.contains("extends")) {
      if (!j["extends"].is_string()) type_error(p, "extends", "a string (a path)", j["extends"]);
      const std::string& ext = j["extends"].get_ref<const std::string&>();
      if (ext.empty() || ext.size() > 4096 || excerpt(ext, 8192) != ext) {
        throw ConfigError(p + ": extends: " + shown(j["extends"]) + " is not a file path; name the base config file");
      }
      namespace fs = std::filesystem;
      fs::path base = fs::path(p).parent_path() / j["extends"].get<std::string>();
      load(base.lexically_normal().string());
    }
    apply_json(cfg, j, p);
  };
  load(path);
}

void apply_set(Config& cfg, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw ConfigError("--set " + excerpt(assignment) + ": expected KEY=VALUE, e.g. --set ppo.clip_range=0.1");
  }
  const std::string key = trim(assignment.substr(0, eq));
  const std::string shown_key = excerpt(key);
  std::string raw = assignment.substr(eq + 1);
  json value;
  try {
    value = parse_config_json(raw, "--set " + shown_key);
  } catch (const json::parse_error&) {
    if (raw.size() > 200) throw ConfigError("--set " + shown_key + ": value of " + std::to_string(raw.size()) + " characters is not JSON; pass a number, true/false, a JSON string or a short name");
    value = raw;  // not JSON: a bare string such as --set run.name=seed1
  }
  auto parts = split(key, '.');
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
    std::string g = did_you_mean(key, all_dotted(cfg));
    throw ConfigError("--set " + shown_key + ": keys are SECTION.FIELD" +
                      (g.empty() ? std::string("; run `rarlhf config --doc` for the list")
                                 : "; did you mean '" + g + "'?"));
  }
  json j;
  j[parts[0]][parts[1]] = value;
  apply_json(cfg, j, "--set");
}

namespace {

// Throws the first broken rule as "<origin>: <key>: <what>", origin being the file or "--set" that
// supplied the key's value (Config::sources); a key at its default has no origin to name.
class Rules {
 public:
  explicit Rules(const Config& c) : sources_(c.sources) {}
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    auto it = sources_.find(key);
    throw ConfigError((it == sources_.end() ? "" : it->second + ": ") + key + ": " + what);
  }
  void one_of(const std::string& key, const std::string& value, const std::vector<std::string>& allowed) const {
    if (std::find(allowed.begin(), allowed.end(), value) != allowed.end()) return;
    std::string list;
    for (const auto& x : allowed) list += (list.empty() ? "" : ", ") + x;
    const std::string g = did_you_mean(value, allowed);
    fail(key, "'" + excerpt(value) + "' is not one of " + list + (g.empty() ? "" : "; did you mean '" + g + "'?"));
  }

 private:
  const std::map<std::string, std::string>& sources_;
};

// A key declared with choices holds one of them (a list key: every element). Only string keys
// take choices; the catch-all exists because the visitor is compiled for every field type.
void check_choice(const Rules& r, const std::string& key, const std::string& value,
                  const std::vector<std::string>& choices) {
  r.one_of(key, value, choices);
}
void check_choice(const Rules& r, const std::string& key, const std::vector<std::string>& values,
                  const std::vector<std::string>& choices) {
  for (const auto& v : values) r.one_of(key, v, choices);
}
template <class T>
void check_choice(const Rules&, const std::string&, const T&, const std::vector<std::string>&) {}

void check_choices(const Config& in, const Rules& r) {
  Config c = in;  // visit_fields() is not const
  c.visit_sections([&](const char* sec, auto& s) {
    s.visit_fields([&](const char* key, auto& field, const char*, const std::vector<std::string>& choices = {}) {
      if (!choices.empty()) check_choice(r, std::string(sec) + "." + key, field, choices);
    });
  });
}

void validate_run(const RunConfig& run, const Rules& r) {
  if (run.threads < 0) r.fail("run.threads", "must be >= 0 (0 = all cores)");
  if (run.save_every < 0) r.fail("run.save_every", "must be >= 0 (0 = only at the end)");
  if (!valid_device_spec(run.device)) r.fail("run.device", "'" + excerpt(run.device) + "' is not auto, cpu, cuda or cuda:N");
}

void validate_data(const DataConfig& d, const Rules& r) {
  if (d.prompt_tokens <= 0) r.fail("data.prompt_tokens", "must be > 0");
  if (d.min_chars < 0) r.fail("data.min_chars", "must be >= 0");
  if (d.max_examples < 0) r.fail("data.max_examples", "must be >= 0 (0 = all)");
  for (auto [key, share] : {std::pair<const char*, double>{"data.train_resample_share", d.train_resample_share},
                            std::pair<const char*, double>{"data.test_resample_share", d.test_resample_share}}) {
    if (share < 0 || share >= 1) r.fail(key, "must be in [0, 1) (0 = no resampling)");
    if (share > 0 && d.resample_label.empty())
      r.fail(key, "is set but data.resample_label is empty; name the label whose share it fixes");
  }
}

void validate_sft(const SftConfig& s, const Rules& r) {
  if (s.learning_rate <= 0) r.fail("sft.learning_rate", "must be > 0");
  if (s.epochs <= 0) r.fail("sft.epochs", "must be > 0");
  if (s.batch_size <= 0) r.fail("sft.batch_size", "must be > 0");
  if (s.grad_accum <= 0) r.fail("sft.grad_accum", "must be > 0");
  if (s.seq_length < 2) r.fail("sft.seq_length", "must be >= 2");
  if (s.warmup_steps < 0) r.fail("sft.warmup_steps", "must be >= 0");
  if (!(s.max_grad_norm >= 0)) r.fail("sft.max_grad_norm", "must be >= 0 (0 = no clipping)");
  if (!(s.dropout == -1.0 || (s.dropout >= 0 && s.dropout < 1))) {
    r.fail("sft.dropout", "must be -1 (the checkpoint's config.json) or in [0, 1)");
  }
  if (s.eval_fraction < 0 || s.eval_fraction >= 1) r.fail("sft.eval_fraction", "must be in [0, 1)");
}

void validate_lora(const Config& c, const Rules& r) {
  const LoraConfig& l = c.lora;
  if (l.r < 0) r.fail("lora.r", "must be >= 0 (0 = full fine-tuning)");
  if (!(l.alpha > 0)) r.fail("lora.alpha", "must be > 0");
  if (!(l.dropout >= 0 && l.dropout < 1)) r.fail("lora.dropout", "must be in [0, 1)");
  if (l.r == 0) return;
  if (c.sft.from_scratch) r.fail("lora.r", "LoRA adapts pre-trained weights; set lora.r=0 with sft.from_scratch");
  if (c.ppo.from_scratch) r.fail("lora.r", "LoRA adapts pre-trained weights; set lora.r=0 with ppo.from_scratch");
}

void validate_ppo(const PpoConfig& p, const Rules& r) {
  if (p.batch_size <= 0) r.fail("ppo.batch_size", "must be > 0");
  if (p.mini_batch_size <= 0) r.fail("ppo.mini_batch_size", "must be > 0");
  if (p.batch_size % p.mini_batch_size != 0)
    r.fail("ppo.mini_batch_size", std::to_string(p.mini_batch_size) + " does not divide ppo.batch_size " +
                                      std::to_string(p.batch_size) + "; pick a divisor");
  if (p.ppo_epochs <= 0) r.fail("ppo.ppo_epochs", "must be > 0");
  if (p.total_iterations < 0) r.fail("ppo.total_iterations", "must be >= 0 (0 = one pass)");
  if (p.learning_rate <= 0) r.fail("ppo.learning_rate", "must be > 0");
  if (p.init_kl_coef < 0) r.fail("ppo.init_kl_coef", "must be >= 0");
  if (p.kl_horizon <= 0) r.fail("ppo.kl_horizon", "must be > 0");
  if (p.gamma < 0 || p.gamma > 1) r.fail("ppo.gamma", "must be in [0, 1]");
  if (p.lam < 0 || p.lam > 1) r.fail("ppo.lam", "must be in [0, 1]");
  if (p.clip_range <= 0) r.fail("ppo.clip_range", "must be > 0");
  if (p.clip_range_value <= 0) r.fail("ppo.clip_range_value", "must be > 0");
  if (p.vf_coef < 0) r.fail("ppo.vf_coef", "must be >= 0");
  if (p.ratio_threshold < 0) r.fail("ppo.ratio_threshold", "must be >= 0 (0 = off)");
  if (p.max_grad_norm < 0) r.fail("ppo.max_grad_norm", "must be >= 0 (0 = off)");
}

void validate_risk(const RiskConfig& k, const Rules& r) {
  if (!(k.alpha > 0 && k.alpha <= 1)) r.fail("risk.alpha", "must satisfy 0 < alpha <= 1");
  if (k.n < 0) r.fail("risk.n", "must be >= 0");
  if (!(k.rho > 0 && k.rho <= 1)) r.fail("risk.rho", "must satisfy 0 < rho <= 1");
}

void validate_generate(const GenerateConfig& g, const Rules& r) {
  if (g.max_new_tokens <= 0) r.fail("generate.max_new_tokens", "must be > 0");
  if (g.min_new_tokens < 0 || g.min_new_tokens > g.max_new_tokens)
    r.fail("generate.min_new_tokens", "must be in [0, generate.max_new_tokens]");
  if (g.temperature <= 0) r.fail("generate.temperature", "must be > 0 (use generate.greedy for argmax)");
  if (g.top_k < 0) r.fail("generate.top_k", "must be >= 0 (0 = off)");
  if (!(g.top_p > 0 && g.top_p <= 1)) r.fail("generate.top_p", "must satisfy 0 < top_p <= 1");
  if (g.batch_size <= 0) r.fail("generate.batch_size", "must be > 0");
}

void validate_reward(const RewardConfig& w, const Rules& r) {
  if (w.batch_size <= 0) r.fail("reward.batch_size", "must be > 0");
  if (w.max_length <= 0) r.fail("reward.max_length", "must be > 0");
  if (w.label_index < 0) r.fail("reward.label_index", "must be >= 0");
}

void validate_eval(const EvalConfig& e, const Rules& r) {
  if (e.tail_quantile < 0 || e.tail_quantile > 1)
    r.fail("eval.tail_quantile", "must be in [0, 1] (0 = use eval.tail_threshold)");
  for (double a : e.cvar_alphas) {
    if (!(a > 0 && a <= 1)) r.fail("eval.cvar_alphas", "every alpha must satisfy 0 < alpha <= 1");
  }
  if (e.ppl_max_chars <= 0) r.fail("eval.ppl_max_chars", "must be > 0");
  if (e.ppl_batch_size <= 0) r.fail("eval.ppl_batch_size", "must be > 0");
  if (e.num_prompts < 0) r.fail("eval.num_prompts", "must be >= 0 (0 = all)");
  if (e.samples_per_prompt < 1) r.fail("eval.samples_per_prompt", "must be >= 1");
}

// pipeline.stages and pipeline.eval_splits are checked as choices; here: every override is a
// "section.key=VALUE". Whether it makes a valid config is checked by the pipeline, which applies it.
void validate_pipeline(const PipelineConfig& p, const Rules& r) {
  for (const auto& [stage, sets] : p.overrides) {
    for (const auto& s : sets) {
      if (s.find('=') == std::string::npos || s.find('.') > s.find('='))
        r.fail("pipeline." + stage, "'" + excerpt(s) + "' is not a \"section.key=VALUE\" override");
    }
  }
}

}  // namespace

void validate(const Config& c) {
  const Rules rules(c);
  check_choices(c, rules);  // model.dtype, data.format, ppo.kl_penalty, ...: see choice:: in config.h
  validate_run(c.run, rules);
  validate_data(c.data, rules);
  validate_sft(c.sft, rules);
  validate_lora(c, rules);
  validate_ppo(c.ppo, rules);
  validate_risk(c.risk, rules);
  validate_generate(c.generate, rules);
  validate_reward(c.reward, rules);
  validate_eval(c.eval, rules);
  validate_pipeline(c.pipeline, rules);
}

Config load_config(const std::string& file, const std::vector<std::string>& sets) {
  Config cfg;
  if (!file.empty()) apply_file(cfg, file);
  for (const auto& s : sets) apply_set(cfg, s);
  validate(cfg);
  return cfg;
}

json to_json(const Config& in) {
  Config cfg = in;
  json out = json::object();
  cfg.visit_sections([&](const char* sec, auto& s) {
    json o = json::object();
    s.visit_fields([&](const char* key, auto& field, const char*, const std::vector<std::string>& = {}) {
      o[key] = field;
    });
    out[sec] = o;
  });
  return out;
}

std::string config_reference_markdown() {
  Config cfg;
  std::ostringstream md;
  md << "| key | type | default | meaning |\n|---|---|---|---|\n";
  cfg.visit_sections([&](const char* sec, auto& s) {
    s.visit_fields([&](const char* key, auto& field, const char* doc, const std::vector<std::string>& choices = {}) {
      std::string type = type_name(field);
      type = type.substr(type.find(' ') + 1);
      std::string def = json(field).dump();
      std::string meaning;  // "a | b | c: doc" for a key with choices
      for (const auto& x : choices) meaning += (meaning.empty() ? "" : " | ") + x;
      meaning += (meaning.empty() ? "" : ": ") + std::string(doc);
      md << "| `" << sec << "." << key << "` | " << type << " | `" << def << "` | " << meaning << " |\n";
    });
  });
  return md.str();
}

}  // namespace rarlhf
