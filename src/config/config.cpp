// JSON <-> Config mapping, layering, validation and the generated reference.
// Every struct's visit_fields() is the single list of keys: the readers, the writer, the
// unknown-key check and the markdown reference all walk it, so they cannot drift apart.
#include "rarlhf/config/config.h"

#include <cmath>
#include <filesystem>
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

[[noreturn]] void type_error(const std::string& origin, const std::string& path, const char* want,
                             const json& got) {
  throw ConfigError(origin + ": " + path + ": expected " + want + ", got " + kind_of(got) + " (" +
                    got.dump() + ")");
}

void read_value(bool& out, const json& j, const std::string& o, const std::string& p) {
  if (!j.is_boolean()) type_error(o, p, type_name(out), j);
  out = j.get<bool>();
}
void read_value(int64_t& out, const json& j, const std::string& o, const std::string& p) {
  if (j.is_number_integer() || j.is_number_unsigned()) {
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
  s.visit_fields([&](const char* key, auto&, const char*) { names.emplace_back(key); });
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
  throw ConfigError(origin + ": " + path + ": unknown key" + hint);
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
        s.visit_fields([&](const char* key, auto& field, const char*) {
          if (f.key() != key) return;
          known = true;
          read_value(field, f.value(), origin, sec + "." + f.key());
        });
        if (!known) unknown_key(cfg, origin, sec + "." + f.key(), names);
      }
    });
    if (!found) {
      // Name the whole dotted key, so `rsik.alpha` suggests `risk.alpha`.
      if (it.value().is_object() && !it.value().empty()) {
        std::string full = sec + "." + it.value().begin().key();
        std::string g = did_you_mean(full, all_dotted(cfg));
        if (!g.empty()) throw ConfigError(origin + ": " + full + ": unknown key; did you mean '" + g + "'?");
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
      j = json::parse(read_file(p));
    } catch (const json::parse_error& e) {
      throw ConfigError(p + ": not valid JSON (" + std::string(e.what()) + "); fix the syntax");
    }
    if (!j.is_object()) throw ConfigError(p + ": the top level must be a JSON object");
    if (j.contains("extends")) {
      if (!j["extends"].is_string()) type_error(p, "extends", "a string (a path)", j["extends"]);
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
    throw ConfigError("--set " + assignment + ": expected KEY=VALUE, e.g. --set ppo.clip_range=0.1");
  }
  std::string key = trim(assignment.substr(0, eq));
  std::string raw = assignment.substr(eq + 1);
  json value;
  try {
    value = json::parse(raw);
  } catch (const json::parse_error&) {
    value = raw;  // not JSON: a bare string such as --set run.name=seed1
  }
  auto parts = split(key, '.');
  if (parts.size() != 2 || parts[0].empty() || parts[1].empty()) {
    std::string g = did_you_mean(key, all_dotted(cfg));
    throw ConfigError("--set " + key + ": keys are SECTION.FIELD" +
                      (g.empty() ? std::string("; run `rarlhf config --doc` for the list")
                                 : "; did you mean '" + g + "'?"));
  }
  json j;
  j[parts[0]][parts[1]] = value;
  apply_json(cfg, j, "--set");
}

void validate(const Config& c) {
  auto bad = [](const std::string& field, const std::string& what) {
    throw ConfigError(field + ": " + what);
  };
  auto one_of = [&](const std::string& field, const std::string& v,
                    std::initializer_list<const char*> allowed) {
    std::vector<std::string> a(allowed.begin(), allowed.end());
    for (auto& x : a) {
      if (v == x) return;
    }
    std::string list;
    for (auto& x : a) list += (list.empty() ? "" : ", ") + x;
    std::string g = did_you_mean(v, a);
    bad(field, "'" + v + "' is not one of " + list + (g.empty() ? "" : "; did you mean '" + g + "'?"));
  };
  if (c.run.threads < 0) bad("run.threads", "must be >= 0 (0 = all cores)");
  if (c.run.save_every < 0) bad("run.save_every", "must be >= 0 (0 = only at the end)");
  if (!(c.run.device == "auto" || c.run.device == "cpu" || starts_with(c.run.device, "cuda")))
    bad("run.device", "'" + c.run.device + "' is not auto, cpu, cuda or cuda:N");
  one_of("model.dtype", c.model.dtype, {"float32", "bfloat16", "float16"});
  one_of("data.format", c.data.format,
         {"jsonl", "csv", "lines", "imdb_dir", "jigsaw_csv", "rtp_jsonl", "uci_json"});
  one_of("data.on_error", c.data.on_error, {"skip", "fail"});
  if (c.data.prompt_tokens <= 0) bad("data.prompt_tokens", "must be > 0");
  if (c.data.min_chars < 0) bad("data.min_chars", "must be >= 0");
  if (c.data.max_examples < 0) bad("data.max_examples", "must be >= 0 (0 = all)");
  one_of("risk.selection", c.risk.selection, {"lowest", "random"});
  for (auto [field, share] : {std::pair<const char*, double>{"data.train_resample_share", c.data.train_resample_share},
                              std::pair<const char*, double>{"data.test_resample_share", c.data.test_resample_share}}) {
    if (share < 0 || share >= 1) bad(field, "must be in [0, 1) (0 = no resampling)");
    if (share > 0 && c.data.resample_label.empty())
      bad(field, "is set but data.resample_label is empty; name the label whose share it fixes");
  }
  if (c.sft.learning_rate <= 0) bad("sft.learning_rate", "must be > 0");
  if (c.sft.epochs <= 0) bad("sft.epochs", "must be > 0");
  if (c.sft.batch_size <= 0) bad("sft.batch_size", "must be > 0");
  if (c.sft.grad_accum <= 0) bad("sft.grad_accum", "must be > 0");
  if (c.sft.seq_length < 2) bad("sft.seq_length", "must be >= 2");
  if (c.sft.eval_fraction < 0 || c.sft.eval_fraction >= 1)
    bad("sft.eval_fraction", "must be in [0, 1)");
  const auto& p = c.ppo;
  if (p.batch_size <= 0) bad("ppo.batch_size", "must be > 0");
  if (p.mini_batch_size <= 0) bad("ppo.mini_batch_size", "must be > 0");
  if (p.batch_size % p.mini_batch_size != 0)
    bad("ppo.mini_batch_size", std::to_string(p.mini_batch_size) + " does not divide ppo.batch_size " +
                                   std::to_string(p.batch_size) + "; pick a divisor");
  if (p.ppo_epochs <= 0) bad("ppo.ppo_epochs", "must be > 0");
  if (p.total_iterations < 0) bad("ppo.total_iterations", "must be >= 0 (0 = one pass)");
  if (p.learning_rate <= 0) bad("ppo.learning_rate", "must be > 0");
  if (p.init_kl_coef < 0) bad("ppo.init_kl_coef", "must be >= 0");
  if (p.kl_horizon <= 0) bad("ppo.kl_horizon", "must be > 0");
  one_of("ppo.kl_penalty", p.kl_penalty, {"k1", "k3"});
  if (p.gamma < 0 || p.gamma > 1) bad("ppo.gamma", "must be in [0, 1]");
  if (p.lam < 0 || p.lam > 1) bad("ppo.lam", "must be in [0, 1]");
  if (p.clip_range <= 0) bad("ppo.clip_range", "must be > 0");
  if (p.clip_range_value <= 0) bad("ppo.clip_range_value", "must be > 0");
  if (p.vf_coef < 0) bad("ppo.vf_coef", "must be >= 0");
  if (p.ratio_threshold < 0) bad("ppo.ratio_threshold", "must be >= 0 (0 = off)");
  if (p.max_grad_norm < 0) bad("ppo.max_grad_norm", "must be >= 0 (0 = off)");
  const auto& r = c.risk;
  if (!(r.alpha > 0 && r.alpha <= 1)) bad("risk.alpha", "must satisfy 0 < alpha <= 1");
  if (r.n < 0) bad("risk.n", "must be >= 0");
  if (!(r.rho > 0 && r.rho <= 1)) bad("risk.rho", "must satisfy 0 < rho <= 1");
  one_of("risk.schedule", r.schedule, {"paper", "legacy"});
  const auto& g = c.generate;
  if (g.max_new_tokens <= 0) bad("generate.max_new_tokens", "must be > 0");
  if (g.min_new_tokens < 0 || g.min_new_tokens > g.max_new_tokens)
    bad("generate.min_new_tokens", "must be in [0, generate.max_new_tokens]");
  if (g.temperature <= 0) bad("generate.temperature", "must be > 0 (use generate.greedy for argmax)");
  if (g.top_k < 0) bad("generate.top_k", "must be >= 0 (0 = off)");
  if (!(g.top_p > 0 && g.top_p <= 1)) bad("generate.top_p", "must satisfy 0 < top_p <= 1");
  if (g.batch_size <= 0) bad("generate.batch_size", "must be > 0");
  one_of("reward.type", c.reward.type, {"vader", "hf_classifier"});
  one_of("reward.input", c.reward.input, {"prompt+response", "response"});
  if (c.reward.batch_size <= 0) bad("reward.batch_size", "must be > 0");
  if (c.reward.max_length <= 0) bad("reward.max_length", "must be > 0");
  if (c.reward.label_index < 0) bad("reward.label_index", "must be >= 0");
  one_of("eval.split", c.eval.split, {"test", "tail"});
  if (c.eval.tail_quantile < 0 || c.eval.tail_quantile > 1)
    bad("eval.tail_quantile", "must be in [0, 1] (0 = use eval.tail_threshold)");
  for (double a : c.eval.cvar_alphas) {
    if (!(a > 0 && a <= 1)) bad("eval.cvar_alphas", "every alpha must satisfy 0 < alpha <= 1");
  }
  if (c.eval.ppl_max_chars <= 0) bad("eval.ppl_max_chars", "must be > 0");
  if (c.eval.ppl_batch_size <= 0) bad("eval.ppl_batch_size", "must be > 0");
  if (c.eval.num_prompts < 0) bad("eval.num_prompts", "must be >= 0 (0 = all)");
  one_of("logging.level", c.logging.level, {"trace", "debug", "info", "warn", "error", "off"});
  for (const auto& st : c.pipeline.stages)
    one_of("pipeline.stages", st, {"pretrain", "sft", "rlhf", "ra_rlhf", "eval", "compare"});
  for (const auto& sp : c.pipeline.eval_splits) one_of("pipeline.eval_splits", sp, {"test", "tail"});
  auto sets_ok = [&](const char* field, const std::vector<std::string>& sets) {
    for (const auto& s : sets) {
      if (s.find('=') == std::string::npos || s.find('.') > s.find('='))
        bad(field, "'" + s + "' is not a \"section.key=VALUE\" override");
    }
  };
  sets_ok("pipeline.pretrain", c.pipeline.pretrain);
  sets_ok("pipeline.sft", c.pipeline.sft);
  sets_ok("pipeline.rlhf", c.pipeline.rlhf);
  sets_ok("pipeline.ra_rlhf", c.pipeline.ra_rlhf);
  sets_ok("pipeline.eval", c.pipeline.eval);
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
    s.visit_fields([&](const char* key, auto& field, const char*) { o[key] = field; });
    out[sec] = o;
  });
  return out;
}

std::string config_reference_markdown() {
  Config cfg;
  std::ostringstream md;
  md << "| key | type | default | meaning |\n|---|---|---|---|\n";
  cfg.visit_sections([&](const char* sec, auto& s) {
    s.visit_fields([&](const char* key, auto& field, const char* doc) {
      std::string type = type_name(field);
      type = type.substr(type.find(' ') + 1);
      std::string def = json(field).dump();
      md << "| `" << sec << "." << key << "` | " << type << " | `" << def << "` | " << doc << " |\n";
    });
  });
  return md.str();
}

}  // namespace rarlhf
