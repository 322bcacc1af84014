// The stages of `rarlhf run`, one table: what each stage runs, what it is for, and the overrides it
// starts with. Stage names are config.h's kPipelineStages, in the same order (tests/pipeline checks
// that the two agree); a stage's own overrides are pipeline.<overrides_key>. Torch-free.
#pragma once
#include <string>
#include <vector>

namespace rarlhf {

enum class StageKind {
  kTrain,    // trains run.out_dir/<stage>/policy with a child `rarlhf sft|train`
  kEval,     // a child `rarlhf eval` per model and split (pipeline.eval_splits)
  kCompare,  // summary.md, plus a child `rarlhf eval --compare` per split for the overlay plots
};

struct PipelineStage {
  std::string name;                          // the pipeline.stages entry and its folder in run.out_dir
  StageKind kind;
  std::string subcommand;                    // the child runs: `rarlhf <subcommand> ...`
  std::string description;                   // printed when the stage starts
  std::vector<std::string> start_overrides;  // --set overrides before pipeline.<overrides_key>
  std::vector<std::string> starts_from;      // model.path = the policy of the first of these that is
                                             // in pipeline.stages ([] or none there = model.path)
  std::string overrides_key;                 // pipeline.<key>: the user's overrides of this stage
  bool from_scratch = false;                 // new weights; model.path gives only the architecture
};

// Every stage, in pipeline order (the order of kPipelineStages).
const std::vector<PipelineStage>& pipeline_stages();

// The row of `name`; ConfigError naming pipeline.stages when there is none.
const PipelineStage& pipeline_stage(const std::string& name);

}  // namespace rarlhf
