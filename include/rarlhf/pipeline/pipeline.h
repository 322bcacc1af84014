// `rarlhf run`: the whole experiment from one config, the stages of pipeline.stages in order
// (pretrain -> sft -> rlhf -> ra_rlhf -> eval -> compare; the table is pipeline/stages.h). Training
// and eval stages are child runs of this binary (pipeline/child.h). A stage folder with DONE is
// skipped and an interrupted one resumed (children get --resume), so rerunning the same command
// continues the run. The compare stage writes run.out_dir/summary.md (pipeline/summary.h).
#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "rarlhf/common/error.h"
#include "rarlhf/config/config.h"
#include "rarlhf/pipeline/stages.h"

namespace rarlhf {

// A stage's child run failed or was stopped. exit_code: what the whole run should exit with (the
// child's status, 128 + signal when a signal ended it; 1 when the child exited 0 without finishing).
class StageFailed : public Error {
 public:
  StageFailed(const std::string& what, int exit_code) : Error(what), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// A stage about to run, as its child runs will see it (for the time estimate printed first).
struct PlannedStage {
  const PipelineStage* stage = nullptr;
  Config cfg;        // the run's config + the stage's start overrides + pipeline.<stage>
  int64_t runs = 0;  // child runs still to do: 1 for a training stage not DONE, eval: (model, split)
                     // pairs without DONE; 0 = done already
  std::string from;  // a training stage: the stage whose policy it starts from ("" = cfg.model.path)
};

class Pipeline {
 public:
  // Called once the data files are merged, before the first stage: returns the expected seconds of
  // the stages (NaN = no estimate), printed again beside the measured time at the end.
  using Estimator = std::function<double(const std::vector<PlannedStage>&)>;

  // cfg: the resolved config. child_args: given first to every child run so that it resolves the
  // same config (--config FILE, --set k=v..., --log-level L). ConfigError naming pipeline.<stage>
  // when a stage's overrides do not make a valid config: checked here, before anything runs.
  Pipeline(Config cfg, std::vector<std::string> child_args);

  // Runs `stages` (entries of pipeline.stages) in order into run.out_dir, after merging
  // pipeline.train_files/test_files. StageFailed when a child fails or is stopped; ConfigError when
  // a stage's input is missing (an earlier stage not run yet); IoError.
  void run(const std::vector<std::string>& stages, const Estimator& estimate = nullptr);

  // Merges the data files and returns what `estimate` makes of `stages`, running none of them.
  double estimate(const std::vector<std::string>& stages, const Estimator& estimate);

 private:
  using Model = std::pair<std::string, std::string>;  // (name in tables, policy directory)

  void check_stage_overrides() const;
  PlannedStage planned(const PipelineStage& stage) const;
  double estimate_stages(const std::vector<std::string>& stages, const Estimator& estimate) const;
  void merge_data_files();
  void run_stage(const PipelineStage& stage);
  void run_training_stage(const PipelineStage& stage);
  void run_eval_stage(const PipelineStage& stage);
  void evaluate(const PipelineStage& stage, const Model& model, const std::string& split);
  void run_compare_stage(const PipelineStage& stage);
  void compare_eval_runs(const PipelineStage& stage, const std::vector<std::string>& run_dirs,
                         const std::string& out_dir);

  std::vector<Model> compared_models() const;
  std::vector<std::string> overrides_of(const PipelineStage& stage) const;        // "{out_dir}" filled in
  std::vector<std::string> start_overrides_of(const PipelineStage& stage) const;  // + the policy chain
  // The first of stage.starts_from that is in pipeline.stages ("" = none: the config's model.path).
  std::string start_stage_of(const PipelineStage& stage) const;
  Config config_of(const PipelineStage& stage) const;  // cfg + start + stage overrides, as the child sees it
  std::vector<std::string> child_command(const std::string& subcommand) const;
  void run_child(const std::string& label, const std::vector<std::string>& args) const;
  bool in_pipeline(const std::string& stage) const;
  std::string stage_dir(const std::string& stage) const { return root_ + "/" + stage; }
  std::string policy_dir(const std::string& stage) const { return stage_dir(stage) + "/policy"; }
  // One eval run's folder: <eval stage>/<model>-<split>.
  std::string eval_dir(const PipelineStage& stage, const std::string& model, const std::string& split) const {
    return stage_dir(stage.name) + "/" + model + "-" + split;
  }

  Config cfg_;
  std::string root_;                     // run.out_dir
  std::vector<std::string> child_args_;  // + the merged data files' --set, once merged
};

}  // namespace rarlhf
