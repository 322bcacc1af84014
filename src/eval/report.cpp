// Eval run files and paper-table metrics: see include/rarlhf/eval/report.h.
#include "rarlhf/eval/report.h"

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"

namespace rarlhf {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

json summary_json(const Summary& s) {
  if (s.n == 0) return json{{"n", 0}};
  return json{{"n", s.n},       {"mean", s.mean}, {"std", s.std},       {"min", s.min},
              {"max", s.max},   {"q05", s.q05},   {"q25", s.q25},       {"median", s.median},
              {"q75", s.q75},   {"q95", s.q95}};
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

int run_shell(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  if (rc == -1 || !WIFEXITED(rc)) return -1;
  return WEXITSTATUS(rc);
}

std::string find_plot_script() {
  if (const char* env = std::getenv("RARLHF_PLOT_SCRIPT")) return file_exists(env) ? env : "";
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return "";
  fs::path dir = exe.parent_path();
  for (const fs::path& rel : {fs::path("../scripts/plot_eval.py"), fs::path("../../scripts/plot_eval.py"),
                              fs::path("../share/rarlhf/plot_eval.py")}) {
    fs::path p = (dir / rel).lexically_normal();
    if (file_exists(p.string())) return p.string();
  }
  return "";
}

std::string find_python() {
  if (const char* env = std::getenv("RARLHF_PYTHON")) return env;
  if (file_exists("/usr/bin/python3")) return "/usr/bin/python3";  // Debian's, with python3-matplotlib
  return "python3";
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
  m.tail = tail_split(scores, cfg.tail_threshold, cfg.tail_quantile);
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
  std::string content = read_file(path);
  std::vector<GenerationRecord> out;
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < content.size()) {
    size_t end = content.find('\n', pos);
    if (end == std::string::npos) end = content.size();
    std::string line = content.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
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
  }
  return out;
}

bool plot_eval_runs(const std::vector<std::string>& run_dirs, const std::string& out_dir, double tail_threshold) {
  std::string script = find_plot_script();
  if (script.empty()) {
    RARLHF_LOG_WARN("plots skipped: scripts/plot_eval.py not found; set RARLHF_PLOT_SCRIPT to its path");
    return false;
  }
  std::string python = find_python();
  if (run_shell(shell_quote(python) + " -c 'import matplotlib' >/dev/null 2>&1") != 0) {
    RARLHF_LOG_WARN("plots skipped: {} has no matplotlib (apt-get install python3-matplotlib, or set RARLHF_PYTHON)",
                    python);
    return false;
  }
  std::string cmd = shell_quote(python) + " " + shell_quote(script);
  for (const auto& d : run_dirs) cmd += " " + shell_quote(d);
  cmd += " --out " + shell_quote(out_dir);
  if (std::isfinite(tail_threshold)) {
    std::ostringstream t;
    t.precision(17);
    t << tail_threshold;
    cmd += " --tail-threshold " + shell_quote(t.str());
  }
  cmd += " >/dev/null";
  int rc = run_shell(cmd);
  if (rc != 0) {
    RARLHF_LOG_WARN("plots failed: {} exited with {} (its error is printed above)", script, rc);
    return false;
  }
  return true;
}

}  // namespace rarlhf
