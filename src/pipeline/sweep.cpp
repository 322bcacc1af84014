// `rarlhf sweep`: see include/rarlhf/pipeline/sweep.h.
#include "rarlhf/pipeline/sweep.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/process.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/common/text_lines.h"
#include "rarlhf/eval/report.h"
#include "rarlhf/pipeline/child.h"
#include "rarlhf/pipeline/stages.h"

namespace rarlhf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr const char* kDoneMarker = "SWEEP_DONE";

// Sections whose keys cannot change the stages before RL (pretrain, sft).
const std::set<std::string> kRlOnlySections = {"ppo", "risk", "generate", "reward", "eval", "logging"};

// A value as part of a folder name: letters, digits, '.', '-' kept, the rest '_'.
std::string name_part(const std::string& s) {
  std::string out;
  for (char c : s) out += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') ? c : '_';
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out.empty() ? "_" : out;
}

std::string json_array(const std::vector<std::string>& v) { return json(v).dump(); }

bool is_training_stage(const std::string& name) {
  for (const auto& s : pipeline_stages())
    if (s.name == name) return s.kind == StageKind::kTrain;
  return false;
}

double mean_of(const std::vector<double>& x) {
  double s = 0;
  size_t n = 0;
  for (double v : x)
    if (std::isfinite(v)) s += v, ++n;
  return n ? s / static_cast<double>(n) : NAN;
}

// Sample standard deviation (n - 1) of the finite values; NaN (no spread measured) for fewer than 2.
double std_of(const std::vector<double>& x) {
  const double m = mean_of(x);
  double ss = 0;
  size_t n = 0;
  for (double v : x)
    if (std::isfinite(v)) ss += (v - m) * (v - m), ++n;
  return n < 2 ? NAN : std::sqrt(ss / static_cast<double>(n - 1));
}

std::string csv_cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string number_cell(double v) {
  if (!std::isfinite(v)) return "";
  std::ostringstream os;
  os.precision(10);
  os << v;
  return os.str();
}

// Mean objective/kl over the last `n` records of a training stage's metrics.jsonl (NaN when absent).
size_t finite_count(const std::vector<double>& x) {
  return static_cast<size_t>(std::count_if(x.begin(), x.end(), [](double v) { return std::isfinite(v); }));
}

double last_kl(const std::string& metrics_path, int64_t n) {
  if (!file_exists(metrics_path)) return NAN;
  std::vector<double> kl;
  for_each_line(read_file(metrics_path), [&](int64_t, const std::string& line) {
    const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!j.is_discarded() && j.contains("objective/kl") && j["objective/kl"].is_number())
      kl.push_back(j["objective/kl"].get<double>());
    return true;
  });
  if (kl.empty()) return NAN;
  const size_t from = kl.size() > static_cast<size_t>(n) ? kl.size() - static_cast<size_t>(n) : 0;
  return mean_of(std::vector<double>(kl.begin() + static_cast<std::ptrdiff_t>(from), kl.end()));
}

}  // namespace

std::pair<std::string, std::vector<std::string>> parse_grid_arg(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 == arg.size())
    throw ConfigError("--grid: '" + excerpt(arg) + "' is not KEY=V1,V2,... (e.g. --grid ppo.init_kl_coef=0.05,0.2)");
  const std::string key = trim(arg.substr(0, eq));
  std::vector<std::string> values;
  std::string cur;
  int depth = 0;
  bool quoted = false;
  for (size_t i = eq + 1; i <= arg.size(); ++i) {
    const char c = i < arg.size() ? arg[i] : ',';
    if (quoted) {
      cur += c;
      if (c == '\\' && i + 1 < arg.size()) cur += arg[++i];
      else if (c == '"') quoted = false;
      continue;
    }
    if (c == ',' && depth == 0) {
      const std::string v = trim(cur);
      if (v.empty()) throw ConfigError("--grid " + key + ": an empty value in '" + excerpt(arg) + "'");
      if (std::find(values.begin(), values.end(), v) != values.end())
        throw ConfigError("--grid " + key + ": value " + v + " is given twice");
      values.push_back(v);
      cur.clear();
      continue;
    }
    if (c == '"') quoted = true;
    if (c == '[' || c == '{') ++depth;
    if (c == ']' || c == '}') --depth;
    cur += c;
  }
  return {key, values};
}

std::vector<int64_t> parse_seeds(const std::string& arg) {
  std::set<int64_t> seeds;
  auto bad = [&] { return ConfigError("--seeds: '" + excerpt(arg) + "' is not a list like 0-2 or 0,3,7"); };
  std::stringstream ss(arg);
  for (std::string part; std::getline(ss, part, ',');) {
    part = trim(part);
    const size_t dash = part.find('-', 1);
    try {
      size_t used = 0;
      if (dash == std::string::npos) {
        const long long v = std::stoll(part, &used);
        if (used != part.size()) throw bad();
        seeds.insert(v);
      } else {
        const std::string a = part.substr(0, dash), b = part.substr(dash + 1);
        const long long lo = std::stoll(a, &used);
        if (used != a.size()) throw bad();
        const long long hi = std::stoll(b, &used);
        if (used != b.size() || hi < lo || hi - lo > 10000) throw bad();
        for (long long v = lo; v <= hi; ++v) seeds.insert(v);
      }
    } catch (const std::logic_error&) {
      throw bad();
    }
  }
  if (seeds.empty()) throw bad();
  return {seeds.begin(), seeds.end()};
}

SweepPlan plan_sweep(const Config& cfg, const SweepSpec& spec) {
  if (spec.seeds.empty()) throw ConfigError("--seeds: no seed given");
  const auto& stages = cfg.pipeline.stages;
  auto in_stages = [&](const std::string& s) { return std::find(stages.begin(), stages.end(), s) != stages.end(); };
  if (!in_stages("eval"))
    throw ConfigError("pipeline.stages: the sweep aggregates the eval stage's results, and " +
                      json_array(stages) + " has none; add \"eval\"");
  const auto& splits = cfg.pipeline.eval_splits;
  if (std::find(splits.begin(), splits.end(), "test") == splits.end())
    throw ConfigError("pipeline.eval_splits: the sweep aggregates the test split's eval.json, and " +
                      json_array(splits) + " has none; add \"test\"");
  SweepPlan plan;
  std::vector<std::string> methods = spec.methods;
  if (methods.empty()) {
    for (const auto& s : stages)
      if (s == "rlhf" || s == "ra_rlhf") methods.push_back(s);
  }
  for (const auto& m : methods) {
    if (!is_training_stage(m) || m == "pretrain" || m == "sft")
      throw ConfigError("--methods: '" + excerpt(m) + "' is not an RL training stage; use rlhf and/or ra_rlhf");
  }
  std::vector<std::string> upstream;
  for (const auto& s : stages)
    if (s == "pretrain" || s == "sft") upstream.push_back(s);
  for (const auto& s : pipeline_stages())  // pipeline order
    if (std::find(methods.begin(), methods.end(), s.name) != methods.end()) plan.trained.push_back(s.name);

  // Every grid value must make a valid config on its own (the cells combine them).
  bool shared = !upstream.empty();
  std::set<std::string> keys;
  for (const auto& [key, values] : spec.grid) {
    if (!keys.insert(key).second) throw ConfigError("--grid: " + key + " is given twice; list its values once");
    if (key == "run.seed") throw ConfigError("--grid run.seed: seeds are --seeds");
    if (key == "run.out_dir" || key == "pipeline.stages")
      throw ConfigError("--grid " + key + ": the sweep sets this itself for every cell");
    for (const auto& v : values) {
      try {
        Config c = cfg;
        apply_set(c, key + "=" + v);
        validate(c);
      } catch (const ConfigError& e) {
        throw ConfigError("--grid " + key + "=" + excerpt(v) + ": " + e.what());
      }
    }
    if (!kRlOnlySections.count(key.substr(0, key.find('.')))) shared = false;
  }

  // Absolute folders: the manifest, the Slurm job lines and --aggregate work from any directory.
  std::string root = fs::absolute(cfg.run.out_dir).lexically_normal().string();
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  plan.root = root;
  if (shared) {
    plan.upstream_stage = upstream.back();
    for (int64_t s : spec.seeds) {
      SweepJob j;
      j.seed = s;
      j.dir = root + "/shared/seed" + std::to_string(s);
      j.sets = {"run.seed=" + std::to_string(s), "run.out_dir=" + j.dir,
                "run.name=" + cfg.run.name + "-s" + std::to_string(s), "pipeline.stages=" + json_array(upstream)};
      plan.upstream.push_back(std::move(j));
    }
  }
  // The policy the cells' RL stages start from is also their KL reference (model.ref_path aside).
  plan.reference = !cfg.model.ref_path.empty() ? "" : shared ? plan.upstream_stage : upstream.empty() ? "base" : upstream.back();
  std::vector<std::string> cell_stages = shared ? std::vector<std::string>{} : upstream;
  cell_stages.insert(cell_stages.end(), plan.trained.begin(), plan.trained.end());
  cell_stages.push_back("eval");
  if (in_stages("compare")) cell_stages.push_back("compare");

  // Grid points: the cartesian product, the last key varying fastest.
  std::vector<std::vector<std::pair<std::string, std::string>>> points = {{}};
  for (const auto& [key, values] : spec.grid) {
    std::vector<std::vector<std::pair<std::string, std::string>>> next;
    for (const auto& p : points) {
      for (const auto& v : values) {
        auto q = p;
        q.emplace_back(key, v);
        next.push_back(std::move(q));
      }
    }
    points = std::move(next);
  }
  std::set<std::string> names;
  for (const auto& settings : points) {
    std::string name;
    for (const auto& [k, v] : settings) {
      if (!name.empty()) name += "__";
      name += name_part(k.substr(k.rfind('.') + 1)) + "_" + name_part(v);
    }
    if (name.empty()) name = "default";
    const std::string base = name;
    for (int i = 2; !names.insert(name).second; ++i) name = base + "-" + std::to_string(i);
    for (int64_t s : spec.seeds) {
      SweepJob j;
      j.point = name;
      j.settings = settings;
      j.seed = s;
      j.dir = root + "/cells/" + name + "/seed" + std::to_string(s);
      for (const auto& [k, v] : settings) j.sets.push_back(k + "=" + v);
      j.sets.insert(j.sets.end(), {"run.seed=" + std::to_string(s), "run.out_dir=" + j.dir,
                                   "run.name=" + cfg.run.name + "-" + name + "-s" + std::to_string(s),
                                   "pipeline.stages=" + json_array(cell_stages)});
      if (shared) {
        j.sets.push_back("model.path=" + root + "/shared/seed" + std::to_string(s) + "/" + plan.upstream_stage +
                         "/policy");
      }
      plan.cells.push_back(std::move(j));
    }
  }
  // What each run is: the config with its sets applied (SWEEP_DONE holds it, so a rerun with other
  // settings does not take an old result for its own).
  for (auto* jobs : {&plan.upstream, &plan.cells}) {
    for (auto& j : *jobs) {
      Config c = cfg;
      for (const auto& set : j.sets) apply_set(c, set);
      j.config = to_json(c).dump();
    }
  }
  return plan;
}

json plan_json(const SweepPlan& plan, const SweepSpec& spec) {
  auto jobs = [](const std::vector<SweepJob>& v) {
    json a = json::array();
    for (const auto& j : v) {
      json settings = json::object();
      for (const auto& [k, val] : j.settings) settings[k] = val;
      a.push_back({{"point", j.point}, {"settings", settings}, {"seed", j.seed}, {"dir", j.dir}, {"sets", j.sets}});
    }
    return a;
  };
  json grid = json::array();
  for (const auto& [k, v] : spec.grid) grid.push_back({{"key", k}, {"values", v}});
  return {{"grid", grid},
          {"seeds", spec.seeds},
          {"trained", plan.trained},
          {"reference", plan.reference},
          {"kl_last", spec.kl_last},
          {"upstream_stage", plan.upstream_stage},
          {"upstream", jobs(plan.upstream)},
          {"cells", jobs(plan.cells)}};
}

static bool sweep_job_done(const SweepJob& job) {
  const std::string marker = job.dir + "/" + kDoneMarker;
  if (!file_exists(marker)) return false;
  const json had = json::parse(read_file(marker), nullptr, /*allow_exceptions=*/false);
  if (had.is_discarded() || !had.is_object()) {  // an older sweep's marker: no settings recorded
    RARLHF_LOG_WARN("sweep: {} records no settings; taken as done with this command's", marker);
    return true;
  }
  const json want = json::parse(job.config);
  if (had == want) return true;
  const json patch = json::diff(had, want);
  std::string key = patch.empty() ? "" : patch[0].value("path", std::string());  // "/ppo/lam"
  std::replace(key.begin(), key.end(), '/', '.');
  throw ConfigError("sweep: " + job.dir + " was finished with other settings than this command gives it (first: " +
                    (key.empty() ? std::string("?") : key.substr(1)) + "; " + kDoneMarker +
                    " holds them); use another run.out_dir, or delete that folder to redo it");
}

int run_sweep_jobs(const SweepPlan& plan, const std::vector<std::string>& base_args) {
  forward_stop_signals_to_child();
  std::vector<const SweepJob*> all;
  for (const auto& j : plan.upstream) all.push_back(&j);
  for (const auto& j : plan.cells) all.push_back(&j);
  std::vector<bool> finished;  // checked up front: a mismatch stops the sweep before it runs anything
  for (const auto* j : all) finished.push_back(sweep_job_done(*j));
  size_t done = static_cast<size_t>(std::count(finished.begin(), finished.end(), true));
  std::cout << "sweep: " << all.size() << " runs (" << plan.upstream.size() << " shared, " << plan.cells.size()
            << " cells), " << done << " done already" << std::endl;
  const auto t0 = std::chrono::steady_clock::now();
  size_t ran = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    const SweepJob& j = *all[i];
    const std::string what = j.point.empty() ? "shared stages, seed " + std::to_string(j.seed)
                                             : j.point + ", seed " + std::to_string(j.seed);
    if (finished[i]) continue;
    const size_t left = all.size() - done;
    std::string eta;
    if (ran > 0) {
      const double per = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / ran;
      eta = ", ETA " + format_cell(per * static_cast<double>(left) / 60.0, 1) + " min";
    }
    std::cout << "\nsweep [" << done + 1 << "/" << all.size() << "] " << what << " -> " << j.dir << eta << std::endl;
    std::vector<std::string> args = {"run"};
    args.insert(args.end(), base_args.begin(), base_args.end());
    for (const auto& s : j.sets) args.insert(args.end(), {"--set", s});
    if (stop_signal_seen()) return 1;
    const int rc = run_self(args);
    if (rc != 0 || stop_signal_seen()) {
      std::cerr << "rarlhf: error: sweep: " << what << " "
                << (stop_signal_seen() ? "was interrupted" : "failed (exit " + std::to_string(rc) + ")")
                << "; rerun the same command to resume from it" << std::endl;
      return rc != 0 ? rc : 1;
    }
    write_file_atomic(j.dir + "/" + kDoneMarker, j.config + "\n");
    ++done;
    ++ran;
  }
  return 0;
}

std::string write_sweep_slurm(const SweepPlan& plan, const std::vector<std::string>& base_args, const std::string& root,
                              const std::string& binary) {
  const std::string dir = root + "/slurm";
  make_dirs(dir);
  const std::string cwd = fs::current_path().string();  // where --config and the other paths resolve
  auto lines = [&](const std::vector<SweepJob>& jobs) {
    std::string out;
    for (const auto& j : jobs) {
      std::string cmd = shell_quote(binary) + " run";
      for (const auto& a : base_args) cmd += " " + shell_quote(a);
      for (const auto& s : j.sets) cmd += " --set " + shell_quote(s);
      const std::string marker = shell_quote(j.dir + "/" + kDoneMarker);
      out += "cd " + shell_quote(cwd) + " && " + cmd + " && printf '%s\\n' " + shell_quote(j.config) + " > " +
             marker + ".tmp && mv " + marker + ".tmp " + marker + "\n";
    }
    return out;
  };
  write_file_atomic(dir + "/upstream.txt", lines(plan.upstream));
  write_file_atomic(dir + "/cells.txt", lines(plan.cells));
  write_file_atomic(dir + "/sweep.sbatch", R"SH(#!/usr/bin/env bash
# One array task = one line of the jobs file given as $1 (written by `rarlhf sweep --slurm`).
# Before the time limit Slurm sends USR1 to this shell (--signal=B:USR1@120); it passes the signal
# on to the run, which checkpoints and stops, and requeues the task, which then resumes the run.
#SBATCH --output=slurm-%x-%A_%a.out
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@120
#SBATCH --requeue
set -uo pipefail
line=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$1")
[ -n "$line" ] || { echo "sweep.sbatch: no line $((SLURM_ARRAY_TASK_ID + 1)) in $1" >&2; exit 1; }
echo "sweep.sbatch: $line (restart ${SLURM_RESTART_COUNT:-0})"
set -m  # the run gets its own process group, signalled as a whole
stopped=0
bash -c "trap '' USR1; $line" &
child=$!
trap 'stopped=1; kill -USR1 -- "-$child" 2>/dev/null' USR1
while :; do
  wait "$child"
  rc=$?
  kill -0 "$child" 2>/dev/null || break  # else the trap ended the wait: the run is still stopping
done
if [ "$rc" -ne 0 ] && [ "$stopped" = 1 ]; then
  task=${SLURM_ARRAY_JOB_ID:-${SLURM_JOB_ID:-?}}_${SLURM_ARRAY_TASK_ID}
  echo "sweep.sbatch: stopped before the end (checkpointed); requeueing $task"
  scontrol requeue "$task" || { echo "sweep.sbatch: scontrol requeue $task failed; resubmit to resume" >&2; exit 1; }
  exit 0
fi
exit "$rc"
)SH");
  const std::string q = shell_quote(dir);
  std::string submit =
      "#!/usr/bin/env bash\n"
      "# Submits the sweep: the shared stages (one array task per seed), then the cells (one task per\n"
      "# grid point x seed) once those are done. Extra sbatch options (partition, account, time, GPUs)\n"
      "# come from RARLHF_SBATCH_OPTS. RARLHF_DRY_RUN=1 prints the sbatch commands only.\n"
      "set -euo pipefail\n"
      "read -ra opts <<<\"${RARLHF_SBATCH_OPTS:-}\"\n"
      "sb() { if [ \"${RARLHF_DRY_RUN:-0}\" = 1 ]; then echo sbatch \"$@\" >&2; echo JOB; else sbatch --parsable \"$@\"; fi; }\n"
      "dep=()\n";
  if (!plan.upstream.empty()) {
    submit += "up=$(sb ${opts[@]+\"${opts[@]}\"} --job-name=rarlhf-sweep-shared --array=0-" +
              std::to_string(plan.upstream.size() - 1) + " " + q + "/sweep.sbatch " + q + "/upstream.txt)\n" +
              "dep=(--dependency=afterok:${up%%;*})\n";
  }
  submit += "sb ${opts[@]+\"${opts[@]}\"} ${dep[@]+\"${dep[@]}\"} --job-name=rarlhf-sweep-cells --array=0-" +
            std::to_string(plan.cells.size() - 1) + " " + q + "/sweep.sbatch " + q + "/cells.txt\n";
  write_file_atomic(dir + "/submit.sh", submit);
  fs::permissions(dir + "/submit.sh", fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);
  fs::permissions(dir + "/sweep.sbatch", fs::perms::owner_exec | fs::perms::group_exec, fs::perm_options::add);
  return dir + "/submit.sh";
}

std::vector<bool> non_dominated(const std::vector<std::array<double, 2>>& points) {
  std::vector<bool> keep(points.size(), false);
  for (size_t i = 0; i < points.size(); ++i) {
    const auto& p = points[i];
    if (!std::isfinite(p[0]) || !std::isfinite(p[1])) continue;
    bool dominated = false;
    for (size_t j = 0; j < points.size() && !dominated; ++j) {
      const auto& q = points[j];
      if (j == i || !std::isfinite(q[0]) || !std::isfinite(q[1])) continue;
      dominated = q[0] >= p[0] && q[1] >= p[1] && (q[0] > p[0] || q[1] > p[1]);
    }
    keep[i] = !dominated;
  }
  return keep;
}

double interpolate_at(std::vector<std::array<double, 2>> points, double x) {
  points.erase(std::remove_if(points.begin(), points.end(),
                              [](const auto& p) { return !std::isfinite(p[0]) || !std::isfinite(p[1]); }),
               points.end());
  std::sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a[0] < b[0]; });
  std::vector<std::array<double, 2>> curve;  // distinct x, y averaged over equal x
  for (size_t i = 0; i < points.size();) {
    size_t j = i;
    double y = 0;
    while (j < points.size() && points[j][0] == points[i][0]) y += points[j++][1];
    curve.push_back({points[i][0], y / static_cast<double>(j - i)});
    i = j;
  }
  if (curve.empty() || !std::isfinite(x) || x < curve.front()[0] || x > curve.back()[0]) return NAN;
  for (size_t i = 0; i + 1 < curve.size(); ++i) {
    if (x <= curve[i + 1][0]) {
      const double t = (x - curve[i][0]) / (curve[i + 1][0] - curve[i][0]);
      return curve[i][1] + t * (curve[i + 1][1] - curve[i][1]);
    }
  }
  return curve.back()[1];  // one point, x equal to it
}

namespace {

// One (cell, model) with a test-split eval.json.
struct SweepRow {
  std::string point, model;
  json settings;
  int64_t seed = 0;
  std::map<std::string, double> v;
};

double metric_of(const SweepRow& r, const std::string& m) { return r.v.count(m) ? r.v.at(m) : NAN; }

// A number for summary.json: null where there is none (NaN).
json finite_or_null(double x) { return std::isfinite(x) ? json(x) : json(nullptr); }

struct SweepRead {
  std::vector<std::string> keys, trained, cvar_keys;
  std::string upstream_stage, reference;
  int64_t kl_last = 10;
  size_t cells = 0, cells_seen = 0;
  std::vector<SweepRow> rows;
};

// The manifest's cells that have an eval, as rows. A manifest field of the wrong shape is an
// IoError naming the file and the field.
SweepRead read_sweep(const std::string& root, int64_t kl_last_override) {
  const std::string manifest_path = root + "/sweep.json";
  if (!file_exists(manifest_path)) throw IoError(manifest_path + ": no sweep manifest; run `rarlhf sweep` first");
  json manifest;
  try {
    manifest = json::parse(read_file(manifest_path));
  } catch (const json::exception& e) {
    throw IoError(manifest_path + ": not JSON (" + std::string(e.what()) + ")");
  }
  SweepRead out;
  std::string where = "the top level";
  auto malformed = [&](const std::string& what) {
    return IoError(manifest_path + ": " + where + ": " + what +
                   "; a manifest is what `rarlhf sweep` or scripts/slurm/grid.sh writes");
  };
  try {
    if (!manifest.is_object()) throw std::invalid_argument("not an object");
    for (const auto& g : manifest.at("grid")) out.keys.push_back(g.at("key").get<std::string>());
    out.trained = manifest.at("trained").get<std::vector<std::string>>();
    out.upstream_stage = manifest.value("upstream_stage", std::string());
    out.reference = manifest.value("reference", std::string());
    out.kl_last = kl_last_override > 0 ? kl_last_override : manifest.value("kl_last", int64_t{10});
    const std::string base = manifest.value("base", std::string());
    auto resolve = [&](const std::string& p) { return base.empty() || p.empty() || p[0] == '/' ? p : base + "/" + p; };
    const json& cells = manifest.at("cells");
    if (!cells.is_array()) throw std::invalid_argument("\"cells\" is not an array");
    out.cells = cells.size();
    for (size_t ci = 0; ci < cells.size(); ++ci) {
      const json& c = cells[ci];
      where = "cells[" + std::to_string(ci) + "]";
      const std::string dir = resolve(c.value("dir", std::string())), eval_dir = dir + "/eval";
      std::vector<std::pair<std::string, std::string>> evals;  // model, eval.json
      std::map<std::string, std::string> metrics_of;           // trained model -> metrics.jsonl
      if (c.contains("evals")) {  // a manifest naming its files (scripts/slurm/grid.sh)
        for (auto it = c["evals"].begin(); it != c["evals"].end(); ++it) {
          const std::string path = resolve(it->get<std::string>());
          if (file_exists(path)) evals.emplace_back(it.key(), path);
        }
        if (c.contains("metrics"))
          for (auto it = c["metrics"].begin(); it != c["metrics"].end(); ++it)
            metrics_of[it.key()] = resolve(it->get<std::string>());
      } else if (fs::is_directory(eval_dir)) {  // a sweep cell: <dir>/eval/<model>-test/eval.json
        for (const auto& e : fs::directory_iterator(eval_dir)) {
          const std::string n = e.path().filename().string();
          if (n.size() > 5 && n.compare(n.size() - 5, 5, "-test") == 0 && file_exists(e.path().string() + "/eval.json"))
            evals.emplace_back(n.substr(0, n.size() - 5), e.path().string() + "/eval.json");
        }
        std::sort(evals.begin(), evals.end());
        for (const auto& m : out.trained) metrics_of[m] = dir + "/" + m + "/metrics.jsonl";
      }
      if (evals.empty()) continue;
      ++out.cells_seen;
      for (const auto& [raw_model, path] : evals) {
        json ej;
        try {
          ej = json::parse(read_file(path));
        } catch (const json::exception& e) {
          throw IoError(path + ": not JSON (" + std::string(e.what()) + "); rerun the sweep to redo that eval");
        }
        SweepRow r;
        r.point = c.at("point").get<std::string>();
        r.settings = c.at("settings");
        r.seed = c.at("seed").get<int64_t>();
        r.model = raw_model == "base" && !out.upstream_stage.empty() ? out.upstream_stage : raw_model;
        r.v["reward"] = json_number_at(ej, {"reward", "mean"});
        r.v["tail"] = json_number_at(ej, {"tail", "reward", "mean"});
        r.v["tail_count"] = json_number_at(ej, {"tail", "count"});
        if (ej.contains("cvar") && ej["cvar"].is_object()) {
          for (auto it = ej["cvar"].begin(); it != ej["cvar"].end(); ++it) {
            if (std::find(out.cvar_keys.begin(), out.cvar_keys.end(), it.key()) == out.cvar_keys.end())
              out.cvar_keys.push_back(it.key());
            r.v["cvar_" + it.key()] = it->is_number() ? it->get<double>() : NAN;
          }
        }
        r.v["perplexity"] = json_number_at(ej, {"perplexity", "mean_per_text"});
        r.v["dist2"] = json_number_at(ej, {"dist", "dist2"});
        // The trained stages' own KL; the policy they start from is their reference: KL 0 by
        // definition; any other model (a baseline, the pre-trained policy before SFT) has no KL to
        // that reference here.
        const bool is_trained = metrics_of.count(r.model) > 0;
        r.v["kl"] = is_trained ? last_kl(metrics_of.at(r.model), out.kl_last) : r.model == out.reference ? 0.0 : NAN;
        out.rows.push_back(std::move(r));
      }
    }
  } catch (const json::exception& e) {
    throw malformed(e.what());
  } catch (const std::invalid_argument& e) {
    throw malformed(e.what());
  }
  if (out.rows.empty())
    throw IoError(root + ": no cell has a finished eval yet (cells/*/seed*/eval/*-test/eval.json)");
  return out;
}

}  // namespace

std::string aggregate_sweep(const std::string& root, bool plots, int64_t kl_last_override) {
  SweepRead read = read_sweep(root, kl_last_override);
  const auto& keys = read.keys;
  const auto& trained = read.trained;
  const std::string& reference = read.reference;
  const int64_t kl_last = read.kl_last;
  const size_t cells_seen = read.cells_seen;
  std::vector<SweepRow>& rows = read.rows;
  std::vector<std::string>& cvar_keys = read.cvar_keys;
  std::sort(cvar_keys.begin(), cvar_keys.end(), [](const std::string& a, const std::string& b) {
    return std::stod(a) < std::stod(b);
  });
  std::vector<std::string> metrics = {"reward", "tail", "tail_count"};
  for (const auto& k : cvar_keys) metrics.push_back("cvar_" + k);
  metrics.insert(metrics.end(), {"perplexity", "dist2", "kl"});
  const std::string cvar_main = std::find(cvar_keys.begin(), cvar_keys.end(), "0.1") != cvar_keys.end()
                                    ? "0.1"
                                    : (cvar_keys.empty() ? "" : cvar_keys.front());

  // cells.csv: the raw rows.
  std::ostringstream cells_csv;
  cells_csv << "point";
  for (const auto& k : keys) cells_csv << "," << csv_cell(k);
  cells_csv << ",model,seed";
  for (const auto& m : metrics) cells_csv << "," << m;
  cells_csv << "\n";
  for (const auto& r : rows) {
    cells_csv << csv_cell(r.point);
    for (const auto& k : keys) cells_csv << "," << csv_cell(r.settings.value(k, std::string()));
    cells_csv << "," << csv_cell(r.model) << "," << r.seed;
    for (const auto& m : metrics) cells_csv << "," << number_cell(metric_of(r, m));
    cells_csv << "\n";
  }

  // Groups (point, model) in manifest order, models as first seen.
  struct Group {
    std::string point, model;
    json settings;
    std::vector<int64_t> seeds;
    std::map<std::string, std::vector<double>> values;
    std::map<std::string, double> mean, sd;
  };
  std::vector<Group> groups;
  for (const auto& r : rows) {
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const Group& g) { return g.point == r.point && g.model == r.model; });
    if (it == groups.end()) {
      groups.push_back({r.point, r.model, r.settings, {}, {}, {}, {}});
      it = groups.end() - 1;
    }
    it->seeds.push_back(r.seed);
    for (const auto& m : metrics) it->values[m].push_back(metric_of(r, m));
  }
  // Models in pipeline order: the start policy, the stages before RL, then the trained ones.
  std::vector<std::string> model_order = {"base", "pretrain", "sft"};
  model_order.insert(model_order.end(), trained.begin(), trained.end());
  for (const auto& g : groups)
    if (std::find(model_order.begin(), model_order.end(), g.model) == model_order.end()) model_order.push_back(g.model);
  std::stable_sort(groups.begin(), groups.end(), [&](const Group& a, const Group& b) {
    return std::find(model_order.begin(), model_order.end(), a.model) <
           std::find(model_order.begin(), model_order.end(), b.model);
  });
  for (auto& g : groups) {
    for (const auto& m : metrics) {
      g.mean[m] = mean_of(g.values[m]);
      g.sd[m] = std_of(g.values[m]);
    }
  }
  auto flags = [&](const std::string& a, const std::string& b, bool per_model, bool minimise_b) {
    std::vector<bool> out(groups.size(), false);
    for (const auto& model : per_model ? model_order : std::vector<std::string>{""}) {
      std::vector<size_t> idx;
      std::vector<std::array<double, 2>> pts;
      for (size_t i = 0; i < groups.size(); ++i) {
        if (per_model && groups[i].model != model) continue;
        idx.push_back(i);
        pts.push_back({groups[i].mean[a], minimise_b ? -groups[i].mean[b] : groups[i].mean[b]});
      }
      const auto keep = non_dominated(pts);
      for (size_t k = 0; k < idx.size(); ++k) out[idx[k]] = keep[k];
    }
    return out;
  };
  const auto pareto_tail = flags("reward", "tail", false, false);
  const auto pareto_cvar = cvar_main.empty() ? std::vector<bool>(groups.size(), false)
                                             : flags("reward", "cvar_" + cvar_main, false, false);
  const auto frontier_reward_kl = flags("reward", "kl", true, true);
  const auto frontier_tail_kl = flags("tail", "kl", true, true);

  std::ostringstream sum_csv;
  sum_csv << "point";
  for (const auto& k : keys) sum_csv << "," << csv_cell(k);
  sum_csv << ",model,seeds";
  for (const auto& m : metrics) sum_csv << "," << m << "_mean," << m << "_std";
  sum_csv << ",pareto_reward_tail,pareto_reward_cvar,frontier_reward_kl,frontier_tail_kl\n";
  json groups_json = json::array();
  for (size_t i = 0; i < groups.size(); ++i) {
    const Group& g = groups[i];
    sum_csv << csv_cell(g.point);
    for (const auto& k : keys) sum_csv << "," << csv_cell(g.settings.value(k, std::string()));
    sum_csv << "," << csv_cell(g.model) << "," << g.seeds.size();
    json mean = json::object(), sd = json::object(), count = json::object();
    for (const auto& m : metrics) {
      sum_csv << "," << number_cell(g.mean.at(m)) << "," << number_cell(g.sd.at(m));
      mean[m] = finite_or_null(g.mean.at(m));
      sd[m] = finite_or_null(g.sd.at(m));
      count[m] = finite_count(g.values.at(m));  // the seeds with a number (mean and std are over those)
    }
    sum_csv << "," << pareto_tail[i] << "," << pareto_cvar[i] << "," << frontier_reward_kl[i] << ","
            << frontier_tail_kl[i] << "\n";
    groups_json.push_back({{"point", g.point}, {"settings", g.settings}, {"model", g.model}, {"seeds", g.seeds},
                           {"mean", mean}, {"std", sd}, {"n", count}, {"pareto_reward_tail", bool(pareto_tail[i])},
                           {"pareto_reward_cvar", bool(pareto_cvar[i])},
                           {"frontier_reward_kl", bool(frontier_reward_kl[i])},
                           {"frontier_tail_kl", bool(frontier_tail_kl[i])}});
  }

  // summary.md
  auto pm = [](double m, double s, int prec) {
    if (!std::isfinite(m)) return std::string("-");
    return format_cell(m, prec) + (std::isfinite(s) ? " ± " + format_cell(s, prec) : "");
  };
  std::ostringstream md;
  std::vector<std::string> head = {"point"};
  head.insert(head.end(), keys.begin(), keys.end());
  head.insert(head.end(), {"model", "seeds", "reward", "tail reward", "CVaR_" + (cvar_main.empty() ? "-" : cvar_main),
                           "PPL", "KL (last " + std::to_string(kl_last) + ")", "Pareto"});
  std::ostringstream table;
  table << "|";
  for (const auto& h : head) table << " " << h << " |";
  table << "\n|";
  for (size_t i = 0; i < head.size(); ++i) table << "---|";
  table << "\n";
  for (size_t i = 0; i < groups.size(); ++i) {
    const Group& g = groups[i];
    table << "| " << g.point << " |";
    for (const auto& k : keys) table << " " << g.settings.value(k, std::string("-")) << " |";
    table << " " << g.model << " | " << g.seeds.size() << " | " << pm(g.mean.at("reward"), g.sd.at("reward"), 3) << " | "
          << pm(g.mean.at("tail"), g.sd.at("tail"), 3) << " | "
          << (cvar_main.empty() ? "-" : pm(g.mean.at("cvar_" + cvar_main), g.sd.at("cvar_" + cvar_main), 3)) << " | "
          << pm(g.mean.at("perplexity"), g.sd.at("perplexity"), 2) << " | " << pm(g.mean.at("kl"), g.sd.at("kl"), 3)
          << " | " << (pareto_tail[i] ? "★" : "") << " |\n";
  }
  // At matched KL: every method after the first against the first (the baseline) in the same seed,
  // both ways: each point of one method against the other's metrics interpolated in KL through its
  // grid points and the reference (KL 0). Δ is always method - baseline.
  json matched = nullptr;
  std::ostringstream matched_md;
  if (trained.size() >= 2) {
    const std::string& baseline = trained.front();
    std::vector<std::pair<std::string, std::string>> compared = {{"reward", "reward"}, {"tail", "tail reward"}};
    if (!cvar_main.empty()) compared.push_back({"cvar_" + cvar_main, "CVaR_" + cvar_main});
    // `curve_model`'s metric m in this seed at KL x, through its points and the reference's.
    auto curve_at = [&](const std::string& curve_model, int64_t seed, const std::string& m, double x) {
      std::vector<std::array<double, 2>> curve;
      for (const auto& b : rows)
        if (b.seed == seed && (b.model == curve_model || (!reference.empty() && b.model == reference)))
          curve.push_back({metric_of(b, "kl"), metric_of(b, m)});
      return interpolate_at(curve, x);
    };
    auto cell = [](double x, bool sign) {
      return !std::isfinite(x) ? std::string("-") : (sign && x >= 0 ? "+" : "") + format_cell(x, 3);
    };
    json pairs = json::array(), means = json::object();
    for (size_t ti = 1; ti < trained.size(); ++ti) {
      const std::string& model = trained[ti];
      matched_md << "| at the KL of | point | seed | KL | ";
      for (const auto& [m, label] : compared)
        matched_md << label << ": " << model << " / " << baseline << " | Δ " << label << " | ";
      matched_md << "\n|---|---|---|---|";
      for (size_t i = 0; i < compared.size(); ++i) matched_md << "---|---|";
      matched_md << "\n";
      std::map<std::string, std::vector<double>> deltas;
      std::set<int64_t> seeds_matched;
      size_t matched_n = 0, unmatched = 0;
      for (const std::string& own : {model, baseline}) {
        const std::string& other = own == model ? baseline : model;
        for (const auto& r : rows) {
          if (r.model != own || !std::isfinite(metric_of(r, "kl"))) continue;
          const double kl = metric_of(r, "kl");
          json mv = json::object(), bv = json::object(), delta = json::object();
          bool in_range = false;
          matched_md << "| " << own << " | " << r.point << " | " << r.seed << " | " << format_cell(kl, 3) << " | ";
          for (const auto& [m, label] : compared) {
            const double mine = metric_of(r, m), theirs = curve_at(other, r.seed, m, kl);
            const double vm = own == model ? mine : theirs, vb = own == model ? theirs : mine, d = vm - vb;
            mv[m] = finite_or_null(vm);
            bv[m] = finite_or_null(vb);
            delta[m] = finite_or_null(d);
            if (std::isfinite(d)) in_range = true, deltas[m].push_back(d);
            matched_md << cell(vm, false) << " / " << cell(vb, false) << " | " << cell(d, true) << " | ";
          }
          matched_md << "\n";
          if (in_range) {
            ++matched_n;
            seeds_matched.insert(r.seed);
          } else {
            ++unmatched;
          }
          pairs.push_back({{"at", own}, {"model", model}, {"baseline", baseline}, {"point", r.point}, {"seed", r.seed},
                           {"kl", kl}, {"model_value", mv}, {"baseline_value", bv}, {"delta", delta}});
        }
      }
      json mj = {{"pairs", matched_n}, {"seeds", seeds_matched.size()}, {"unmatched", unmatched}};
      matched_md << "\n" << model << " − " << baseline << " at matched KL, mean ± sample std over " << matched_n
                 << " (point, seed) pairs from " << seeds_matched.size() << " seeds";
      for (const auto& [m, label] : compared) {
        const auto& d = deltas[m];
        mj["delta_mean"][m] = finite_or_null(mean_of(d));
        mj["delta_std"][m] = finite_or_null(std_of(d));
        matched_md << (m == compared.front().first ? ": " : ", ") << "Δ " << label << " "
                   << pm(mean_of(d), std_of(d), 3);
      }
      matched_md << "; " << unmatched << " beyond the other method's largest KL (unmatched).\n\n";
      means[model] = mj;
    }
    matched = {{"baseline", baseline}, {"reference", reference}, {"pairs", pairs}, {"methods", means}};
  }

  md << "# Sweep " << root << "\n\n"
     << cells_seen << " of " << read.cells << " cells evaluated; mean ± sample std over seeds "
     << "(test split; tail reward = the test prompts of the tail; KL = mean objective/kl over each training "
     << "stage's last " << kl_last << " iterations, 0 for " << (reference.empty() ? "none" : reference)
     << ", their KL reference). "
     << "★ = not dominated in (reward, tail reward) by any other row. Files: cells.csv (one row per seed), "
     << "summary.csv, summary.json, pareto.png, frontier.png.\n\n"
     << table.str();
  if (!matched.is_null())
    md << "\n## At matched KL\n\nEach point of one method against the other method in the same seed at "
       << "the same KL: the other's metric interpolated linearly in KL between its grid points"
       << (reference.empty() ? std::string() : " and " + reference + " (KL 0)")
       << ", never extrapolated. Δ = method − " << trained.front() << ".\n\n"
       << matched_md.str();
  write_file_atomic(root + "/cells.csv", cells_csv.str());
  write_file_atomic(root + "/summary.csv", sum_csv.str());
  write_file_atomic(root + "/summary.md", md.str());
  const json summary = {{"root", root}, {"grid_keys", keys}, {"cvar_key", cvar_main}, {"kl_last", kl_last},
                        {"cells", read.cells}, {"cells_evaluated", cells_seen},
                        {"groups", groups_json}, {"matched_kl", matched}};
  write_file_atomic(root + "/summary.json", summary.dump(2) + "\n");
  if (plots) {
    try {
      run_plot_script(find_bundled_script("plot_sweep.py"), {root + "/summary.json", "--out", root}, /*quiet=*/true);
    } catch (const IoError& e) {
      RARLHF_LOG_WARN("sweep plots skipped: {}", e.what());
    }
  }
  return table.str();
}

}  // namespace rarlhf
