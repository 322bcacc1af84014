// `rarlhf run --config FILE [--set k=v]... [--from STAGE] [--only STAGE] [--no-estimate | --estimate]`: the whole
// experiment (pretrain -> sft -> rlhf -> ra_rlhf -> eval -> compare) from one config, after printing
// its expected time (src/cli/run_estimate.cpp). The stages and their
// child runs are src/pipeline/pipeline.cpp; this command picks which stages run and records the
// run's config.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <iostream>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/pipeline/pipeline.h"

namespace rarlhf::cli {

namespace {

// pipeline.stages from --from on, or just --only.
std::vector<std::string> stages_to_run(const std::vector<std::string>& stages, const std::string& from,
                                       const std::string& only) {
  for (const auto& [flag, stage] : {std::pair<const char*, const std::string&>{"--from", from}, {"--only", only}}) {
    if (!stage.empty() && std::find(stages.begin(), stages.end(), stage) == stages.end())
      throw ConfigError(std::string(flag) + ": '" + stage + "' is not in pipeline.stages");
  }
  if (!only.empty()) return {only};
  if (from.empty()) return stages;
  return {std::find(stages.begin(), stages.end(), from), stages.end()};
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "run", "The whole experiment from one config: pretrain -> sft -> rlhf -> ra_rlhf -> eval -> compare");
  auto args = std::make_shared<ConfigArgs>();
  auto from = std::make_shared<std::string>();
  auto only = std::make_shared<std::string>();
  auto no_estimate = std::make_shared<bool>(false);
  auto estimate_only = std::make_shared<bool>(false);
  add_config_options(sub, *args);
  sub->add_option("--from", *from, "start at this stage (earlier ones must be done)");
  sub->add_option("--only", *only, "run only this stage");
  sub->add_flag("--no-estimate", *no_estimate,
                "skip the expected-time estimate (a few seconds timing the model's pieces of work) before the first stage");
  sub->add_flag("--estimate", *estimate_only,
                "print the expected time of the stages and stop (writes only the merged data files)");
  sub->callback([args, from, only, no_estimate, estimate_only] {
    const Config cfg = load_and_init(*args);
    Pipeline pipeline(cfg, config_args_of(*args));  // checks every stage's overrides first
    const auto stages = stages_to_run(cfg.pipeline.stages, *from, *only);
    DirLock run_dir_lock = claim_run_dir(cfg.run.out_dir, "rarlhf run");
    if (*estimate_only) {
      const auto strict = [](const std::vector<PlannedStage>& plan) { return estimate_run(plan, /*advisory=*/false); };
      if (!std::isfinite(pipeline.estimate(stages, strict))) std::cout << "run: every stage is done already" << std::endl;
      return;
    }
    write_run_info(cfg, cfg.run.out_dir);
    try {
      const auto advisory = [](const std::vector<PlannedStage>& plan) { return estimate_run(plan, /*advisory=*/true); };
      pipeline.run(stages, *no_estimate ? Pipeline::Estimator() : Pipeline::Estimator(advisory));
    } catch (const StageFailed& e) {
      // The run exits with the stage's status (128 + signal when interrupted), for shells and Slurm.
      run_dir_lock = DirLock();  // released cleanly before exit()
      std::cout.flush();
      std::cerr << "rarlhf: error: " << e.what() << "\n";
      std::exit(e.exit_code());
    }
  });
}

}  // namespace rarlhf::cli
