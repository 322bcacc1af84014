// `rarlhf sweep`: a grid of settings x seeds as one command. Each (grid point, seed) is one
// `rarlhf run` of the config (a cell: its training stages = the chosen methods, then eval), run one
// after another with progress and skipped once done, or emitted as Slurm array jobs. When no grid
// key can change the stages before RL (pretrain, sft: only ppo./risk./generate./reward./eval./
// logging. keys vary), those run once per seed and every cell of that seed starts from their policy.
// Then every cell's eval.json (test split) and the last iterations' KL of its training stages are
// aggregated into summary.csv / summary.md (mean +- std over seeds), with the Pareto-optimal
// settings marked, each method compared with the first at matched KL, and drawn by
// scripts/plot_sweep.py. Layout under run.out_dir:
//   sweep.json                  the manifest (grid, seeds, methods, jobs)
//   shared/seed<S>/             the stages before RL, when shared
//   cells/<point>/seed<S>/      one `rarlhf run` (its own summary.md, eval/, DONE-marked stages)
//   cells.csv                   one row per (point, model, seed)
//   summary.csv, summary.md     one row per (point, model): mean +- std over seeds, Pareto flags
//   summary.json, pareto.png, frontier.png
#pragma once
#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "rarlhf/config/config.h"

namespace rarlhf {

struct SweepSpec {
  std::vector<std::pair<std::string, std::vector<std::string>>> grid;  // key -> values (JSON text)
  std::vector<int64_t> seeds;
  std::vector<std::string> methods;  // training stages of the cells ("" = the config's rlhf/ra_rlhf)
  int64_t kl_last = 10;              // KL = mean objective/kl over a training stage's last N iterations
};

// "KEY=V1,V2,..." -> (KEY, values); commas inside [], {} or "" do not split. ConfigError naming --grid.
std::pair<std::string, std::vector<std::string>> parse_grid_arg(const std::string& arg);
// "0-2" | "0,3,7" | "4" -> seeds, ascending, distinct. ConfigError naming --seeds.
std::vector<int64_t> parse_seeds(const std::string& arg);

// One `rarlhf run` of the sweep: a cell (point x seed) or a shared upstream run (point "").
struct SweepJob {
  std::string point;                                   // folder name of the grid point ("" = shared)
  std::vector<std::pair<std::string, std::string>> settings;  // grid key -> value
  int64_t seed = 0;
  std::string dir;
  std::vector<std::string> sets;  // --set overrides after the user's (grid, seed, out_dir, stages, ...)
  std::string config;             // the run's config (JSON, the sets applied): what SWEEP_DONE records
};

struct SweepPlan {
  std::vector<SweepJob> upstream;  // run first (empty when the stages before RL are not shared)
  std::vector<SweepJob> cells;     // points in grid order (the last key fastest), seeds innermost
  std::vector<std::string> trained;  // the cells' training stages, in pipeline order
  std::string upstream_stage;        // the shared run's last training stage ("" = not shared)
  std::string reference;             // the model whose KL to the cells' reference is 0 ("" = model.ref_path)
  std::string root;                  // run.out_dir, absolute
};

// The plan for `cfg` (run.out_dir, made absolute, is the sweep's root). ConfigError when a grid key
// is unknown or a value does not make a valid config, a method is not a training stage, or the
// config's pipeline.stages has no eval stage or pipeline.eval_splits no test split.
SweepPlan plan_sweep(const Config& cfg, const SweepSpec& spec);
nlohmann::json plan_json(const SweepPlan& plan, const SweepSpec& spec);

// Runs every job not yet done (marked by <dir>/SWEEP_DONE, which holds the job's config) as a child
// `rarlhf run <base_args> <job.sets>`, in order, printing progress; StageFailed-style exit via the
// returned status: 0 = all done, else the failing child's status (the sweep stops there; rerun to
// resume). ConfigError, before anything runs, when a job's SWEEP_DONE holds another config.
int run_sweep_jobs(const SweepPlan& plan, const std::vector<std::string>& base_args);

// Writes root/slurm/{upstream,cells}.txt (one `cd <cwd> && rarlhf run ...` line per array task),
// root/slurm/sweep.sbatch (runs line SLURM_ARRAY_TASK_ID + 1 of the file it is given; on the time
// limit's USR1 the run checkpoints and the task requeues itself) and root/slurm/submit.sh (submits
// the upstream array, then the cells array after it). Returns submit.sh's path.
std::string write_sweep_slurm(const SweepPlan& plan, const std::vector<std::string>& base_args,
                              const std::string& root, const std::string& binary);

// Non-dominated points when every coordinate is maximised (a point with a NaN is never kept and
// dominates nothing; equal points keep each other).
std::vector<bool> non_dominated(const std::vector<std::array<double, 2>>& points);

// y at x of the piecewise-linear curve through points (x, y): points with a NaN are dropped, equal
// x's y averaged; NaN when x lies outside the points' x range (no extrapolation) or none is left.
double interpolate_at(std::vector<std::array<double, 2>> points, double x);

// Reads every cell of the manifest root/sweep.json that has finished (a cell either names its files,
// "evals": {model: eval.json}, "metrics": {model: metrics.jsonl}, as scripts/slurm/grid.sh writes
// them, or is a sweep cell folder; relative paths are relative to the manifest's "base", else to
// the working directory), writes cells.csv, summary.csv, summary.md and summary.json, and draws the
// plots (plots = true; matplotlib optional). With two or more trained methods, summary.md/.json also
// compare them at matched KL: each (point, seed) of a method after the first and of the first (the
// baseline) is set against the other method of the same seed, whose reward, tail reward and CVaR are
// interpolated in KL (interpolate_at) through its grid points and the KL reference (KL 0); Δ is
// method - baseline; a point beyond the other's largest KL is listed unmatched. kl_last > 0 replaces the manifest's. Returns the
// markdown table. IoError naming the manifest and field when it is malformed, or when no cell has
// an eval.json yet.
std::string aggregate_sweep(const std::string& root, bool plots, int64_t kl_last = 0);

}  // namespace rarlhf
