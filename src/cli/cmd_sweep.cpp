// `rarlhf sweep --config FILE [--set k=v]... --grid KEY=V1,V2 [--grid ...] --seeds 0-2
// [--methods rlhf,ra_rlhf] [--kl-last N] [--slurm | --aggregate-only]` or `rarlhf sweep --aggregate
// DIR`: a grid of settings x seeds
// as `rarlhf run` cells under run.out_dir, then one summary with the Pareto-optimal settings
// marked. The plan, the queue and the aggregation are src/pipeline/sweep.cpp.
#include <filesystem>
#include <iostream>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/pipeline/sweep.h"

namespace rarlhf::cli {

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  for (const auto& part : split(s, ','))
    if (!trim(part).empty()) out.push_back(trim(part));
  return out;
}

}  // namespace

void add_sweep_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "sweep", "Settings x seeds as rarlhf run cells under run.out_dir, aggregated: summary.md/.csv, Pareto plot");
  auto args = std::make_shared<ConfigArgs>();
  auto grid = std::make_shared<std::vector<std::string>>();
  auto seeds = std::make_shared<std::string>("0");
  auto methods = std::make_shared<std::string>();
  auto kl_last = std::make_shared<int64_t>(10);
  auto slurm = std::make_shared<bool>(false);
  auto aggregate_only = std::make_shared<bool>(false);
  auto aggregate_dir = std::make_shared<std::string>();
  add_config_options(sub, *args);
  sub->add_option("--grid", *grid, "KEY=V1,V2,...: values of one config key (repeat for a product grid)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--seeds", *seeds, "run.seed values: 0-2 or 0,3,7 (default 0)");
  sub->add_option("--methods", *methods, "RL stages of each cell, e.g. rlhf,ra_rlhf (default: the config's)");
  sub->add_option("--kl-last", *kl_last, "KL column = mean objective/kl over a stage's last N iterations (default 10)");
  sub->add_flag("--slurm", *slurm, "write run.out_dir/slurm/ (job files, sweep.sbatch, submit.sh) instead of running");
  sub->add_flag("--aggregate-only", *aggregate_only, "only aggregate the cells already finished");
  sub->add_option("--aggregate", *aggregate_dir,
                  "aggregate the manifest DIR/sweep.json alone (no config needed; e.g. the folder scripts/slurm/grid.sh names)");
  sub->callback([=] {
    if (*kl_last < 1) throw ConfigError("--kl-last: must be >= 1");
    // --kl-last given: it replaces the manifest's (an aggregation of finished cells may choose anew).
    auto kl_last_given = [=] { return sub->count("--kl-last") > 0 ? *kl_last : int64_t{0}; };
    if (!aggregate_dir->empty()) {
      if (*slurm || *aggregate_only || !grid->empty())
        throw ConfigError("--aggregate DIR: reads DIR/sweep.json alone; drop --slurm, --aggregate-only and --grid");
      const std::string table = aggregate_sweep(*aggregate_dir, /*plots=*/true, kl_last_given());
      std::cout << table << "sweep: " << *aggregate_dir << "/summary.md" << std::endl;
      return;
    }
    if (*slurm && *aggregate_only) throw ConfigError("--slurm and --aggregate-only: choose one");
    const Config cfg = load_and_init(*args);
    SweepSpec spec;
    for (const auto& g : *grid) spec.grid.push_back(parse_grid_arg(g));
    spec.seeds = parse_seeds(*seeds);
    spec.methods = split_commas(*methods);
    spec.kl_last = *kl_last;
    const SweepPlan plan = plan_sweep(cfg, spec);
    const std::string root = plan.root;
    DirLock lock = claim_run_dir(root, "rarlhf sweep");
    if (!*aggregate_only) {
      make_dirs(root);
      write_file_atomic(root + "/sweep.json", plan_json(plan, spec).dump(2) + "\n");
    }
    if (*slurm) {
      const std::string submit = write_sweep_slurm(plan, config_args_of(*args), root,
                                                   std::filesystem::read_symlink("/proc/self/exe").string());
      std::cout << "sweep: " << plan.upstream.size() + plan.cells.size() << " jobs written; submit with " << submit
                << ", then aggregate with the same command and --aggregate-only" << std::endl;
      return;
    }
    if (!*aggregate_only) {
      const int rc = run_sweep_jobs(plan, config_args_of(*args));
      if (rc != 0) {
        lock = DirLock();
        std::cout.flush();
        std::exit(rc);
      }
    }
    const std::string table = aggregate_sweep(root, cfg.eval.plots, kl_last_given());
    std::cout << "\n" << table << "sweep: " << root << "/summary.md" << std::endl;
  });
}

}  // namespace rarlhf::cli
