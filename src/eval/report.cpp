// Eval run files and paper-table metrics: see include/rarlhf/eval/report.h.
#include "rarlhf/eval/report.h"

#include <cstdlib>
#include <filesystem>
#include <iomanip>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/process.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/common/text_lines.h"

namespace rarlhf {
namespace {

using nlohmann::json;

json summary_json(const Summary& s) {
  if (s.n == 0) return json{{"n", 0}};
  return json{{"n", s.n},       {"mean", s.mean}, {"std", s.std},       {"min", s.min},
              {"max", s.max},   {"q05", s.q05},   {"q25", s.q25},       {"median", s.median},
              {"q75", s.q75},   {"q95", s.q95}};
}

// $RARLHF_PLOT_SCRIPT names plot_eval.py itself (it predates RARLHF_SCRIPTS_DIR; kept for setups
// that use it), else the bundled script is looked up like every other.
std::string plot_eval_script() {
  if (const char* env = std::getenv("RARLHF_PLOT_SCRIPT")) {
    if (!file_exists(env))
      throw IoError(std::string("RARLHF_PLOT_SCRIPT=") + env + ": no such file; point it at scripts/plot_eval.py");
    return env;
  }
  return find_bundled_script("plot_eval.py");
}

}  // namespace

EvalMetrics compute_eval_metrics(const std::vector<GenerationRecord>& records, const EvalConfig& cfg,
                                 const std::vector<TextNll>* per_text_nll) {
  if (records.empty()) throw std::invalid_argument("compute_eval_metrics: no generations");
  EvalMetrics m;
  std::vector<double> rewards, scores;
  std::map<std::string, std::vector<std::string>> by_prompt;
  for (size_t i = 0; i < records.size(); ++i) {
    const auto& r = records[i];
    if (!std::isfinite(r.reward) || !std::isfinite(r.prompt_score)) {
      throw IoError("generation " + std::to_string(i) + ": reward or prompt_score is not finite; the reward model "
                    "returned NaN/inf (check reward.* settings)");
    }
    rewards.push_back(r.reward);
    scores.push_back(r.prompt_score);
    by_prompt[r.prompt].push_back(r.response);
  }
  m.generations = static_cast<int64_t>(records.size());
  m.prompts = static_cast<int64_t>(by_prompt.size());
  m.reward = summarize(rewards);
  m.prompt_score = summarize(scores);
  m.tail_quantile = cfg.tail_quantile;
  if (cfg.tail_quantile > 0 && m.prompts < m.generations) {
    // Several generations of a prompt (eval.samples_per_prompt): the quantile is over prompts, and
    // a prompt's generations are in the tail or out of it together.
    std::vector<std::string> names;
    std::vector<double> prompt_scores;
    std::map<std::string, size_t> index_of;
    for (size_t i = 0; i < records.size(); ++i) {
      if (index_of.emplace(records[i].prompt, names.size()).second) {
        names.push_back(records[i].prompt);
        prompt_scores.push_back(scores[i]);
      }
    }
    const TailSplit by_prompt_tail = tail_split(prompt_scores, cfg.tail_threshold, cfg.tail_quantile);
    std::vector<bool> in_tail(names.size(), false);
    for (size_t p : by_prompt_tail.indices) in_tail[p] = true;
    m.tail.threshold = by_prompt_tail.threshold;
    for (size_t i = 0; i < records.size(); ++i)
      if (in_tail[index_of.at(records[i].prompt)]) m.tail.indices.push_back(i);
  } else {
    m.tail = tail_split(scores, cfg.tail_threshold, cfg.tail_quantile);
  }
  std::vector<double> tail_rewards;
  for (size_t i : m.tail.indices) tail_rewards.push_back(rewards[i]);
  m.tail_reward = summarize(tail_rewards);
  for (double a : cfg.cvar_alphas) m.cvar.emplace_back(a, cvar(rewards, a));
  std::vector<std::vector<std::string>> pooled;
  for (auto& kv : by_prompt) pooled.push_back(std::move(kv.second));
  m.dist = dist_n(pooled);
  m.quantile_curve = quantile_curve(scores, rewards, 100);
  if (per_text_nll && !per_text_nll->empty()) {
    m.perplexity = perplexity(*per_text_nll);
    m.has_perplexity = true;
  }
  return m;
}

json eval_metrics_json(const EvalMetrics& m, const std::string& name) {
  json cv = json::object();
  for (const auto& [alpha, v] : m.cvar) {
    std::ostringstream key;
    key << alpha;
    cv[key.str()] = v;
  }
  json ppl = nullptr;
  if (m.has_perplexity) {
    ppl = json{{"mean_per_text", m.perplexity.mean_per_text},
               {"corpus", m.perplexity.corpus},
               {"texts", m.perplexity.texts},
               {"tokens", m.perplexity.tokens}};
  }
  return json{{"name", name},
              {"generations", m.generations},
              {"prompts", m.prompts},
              {"reward", summary_json(m.reward)},
              {"prompt_score", summary_json(m.prompt_score)},
              {"tail",
               {{"threshold", m.tail.threshold},
                {"quantile", m.tail_quantile > 0 ? json(m.tail_quantile) : json(nullptr)},
                {"count", m.tail.indices.size()},
                {"reward", summary_json(m.tail_reward)}}},
              {"cvar", cv},
              {"dist", {{"dist1", m.dist.dist1}, {"dist2", m.dist.dist2}, {"dist3", m.dist.dist3}}},
              {"perplexity", ppl},
              {"quantile_curve", m.quantile_curve}};
}

void write_eval_run(const std::string& dir, const std::string& name, const std::vector<GenerationRecord>& records,
                    const EvalMetrics& metrics, const json& extra) {
  make_dirs(dir);
  write_file_atomic(dir + "/generations.jsonl", [&](std::ostream& out) {
    for (const auto& r : records) {
      // Invalid UTF-8 (a prompt cut inside a character) is replaced, not thrown: the file stays JSON.
      out << json{{"prompt", r.prompt},
                  {"response", r.response},
                  {"prompt_score", r.prompt_score},
                  {"reward", r.reward},
                  {"label", r.label}}
                 .dump(-1, ' ', false, json::error_handler_t::replace)
          << "\n";
    }
  });
  json doc = eval_metrics_json(metrics, name);
  if (extra.is_object()) {
    for (auto it = extra.begin(); it != extra.end(); ++it) doc[it.key()] = it.value();
  }
  write_file_atomic(dir + "/eval.json", doc.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
}

std::vector<GenerationRecord> read_generations(const std::string& path) {
  std::vector<GenerationRecord> out;
  for_each_line(read_file(path), [&](int64_t line_no, const std::string& line) {
    std::string where = path + ":" + std::to_string(line_no);
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw IoError(where + ": not a JSON object; regenerate the eval run");
    GenerationRecord r;
    auto str = [&](const char* key, std::string& dst, bool required) {
      auto it = j.find(key);
      if (it == j.end() || it->is_null()) {
        if (required) throw IoError(where + ": no '" + key + "'");
        return;
      }
      if (!it->is_string()) throw IoError(where + ": '" + key + "' is not a string");
      dst = it->get<std::string>();
    };
    auto num = [&](const char* key, double& dst) {
      auto it = j.find(key);
      if (it == j.end() || !it->is_number()) throw IoError(where + ": '" + key + "' is missing or not a number");
      dst = it->get<double>();
    };
    str("prompt", r.prompt, true);
    str("response", r.response, true);
    str("label", r.label, false);
    num("prompt_score", r.prompt_score);
    num("reward", r.reward);
    out.push_back(std::move(r));
  });
  return out;
}

json read_eval_run_json(const std::string& run_dir) {
  const std::string path = run_dir + "/eval.json";
  if (!file_exists(path)) throw IoError(path + ": missing; run `rarlhf eval` for this run first");
  json j = json::parse(read_file(path), nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw IoError(path + ": not a JSON object; re-run `rarlhf eval`");
  if (!j.contains("name") || !j["name"].is_string()) j["name"] = std::filesystem::path(run_dir).filename().string();
  return j;
}

double json_number_at(const json& j, std::initializer_list<const char*> keys) {
  const json* cur = &j;
  for (const char* k : keys) {
    if (!cur->is_object() || !cur->contains(k)) return NAN;
    cur = &(*cur)[k];
  }
  return cur->is_number() ? cur->get<double>() : NAN;
}

std::string format_cell(double x, int precision) {
  if (!std::isfinite(x)) return "-";
  std::ostringstream o;
  o << std::fixed << std::setprecision(precision) << x;
  return o.str();
}

bool plot_eval_runs(const std::vector<std::string>& run_dirs, const std::string& out_dir, double tail_threshold) {
  std::vector<std::string> args = run_dirs;
  args.insert(args.end(), {"--out", out_dir});
  if (std::isfinite(tail_threshold)) {
    std::ostringstream t;
    t.precision(17);
    t << tail_threshold;
    args.insert(args.end(), {"--tail-threshold", t.str()});
  }
  try {
    run_plot_script(plot_eval_script(), args, /*quiet=*/true);
  } catch (const IoError& e) {
    RARLHF_LOG_WARN("plots skipped: {}", e.what());  // plots are optional; the numbers are written
    return false;
  }
  return true;
}

std::string training_curves_csv(const std::string& out_png) {
  return (ends_with(out_png, ".png") ? out_png.substr(0, out_png.size() - 4) : out_png) + ".csv";
}

void draw_training_curves(const std::vector<std::string>& run_dirs, const std::string& out_png,
                          const std::string& title, bool quiet) {
  std::vector<std::string> args = run_dirs;
  args.insert(args.end(), {"--out", out_png, "--csv", training_curves_csv(out_png)});
  if (!title.empty()) args.insert(args.end(), {"--title", title});
  run_plot_script(find_bundled_script("plot_training.py"), args, quiet);
}

bool plot_training_curves(const std::vector<std::string>& run_dirs, const std::string& out_png) {
  try {
    draw_training_curves(run_dirs, out_png);
  } catch (const IoError& e) {
    RARLHF_LOG_WARN("training curves skipped: {}", e.what());
    return false;
  }
  return true;
}

}  // namespace rarlhf
