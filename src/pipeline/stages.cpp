// The stage table of `rarlhf run`: see include/rarlhf/pipeline/stages.h. Adding a stage is one row
// here, its name in kPipelineStages (config.h) and, when it takes overrides, one key in
// PipelineConfig::visit_fields.
#include "rarlhf/pipeline/stages.h"

#include "rarlhf/common/error.h"

namespace rarlhf {

const std::vector<PipelineStage>& pipeline_stages() {
  static const std::vector<PipelineStage> kStages = {
      {"pretrain", StageKind::kTrain, "sft", "pre-training the policy from scratch (sft, sft.from_scratch=true)",
       {"sft.from_scratch=true"}, {}, "pretrain", /*from_scratch=*/true},
      {"sft", StageKind::kTrain, "sft", "supervised fine-tuning of the policy",
       {"sft.from_scratch=false"}, {"pretrain"}, "sft"},
      {"rlhf", StageKind::kTrain, "train", "PPO, risk-neutral (train, risk.enabled=false)",
       {"risk.enabled=false"}, {"sft", "pretrain"}, "rlhf"},
      {"ra_rlhf", StageKind::kTrain, "train", "RA-RLHF, soft-risk PPO (train, risk.enabled=true)",
       {"risk.enabled=true"}, {"sft", "pretrain"}, "ra_rlhf"},
      {"eval", StageKind::kEval, "eval", "evaluating every model on the test and tail splits", {}, {}, "eval"},
      // The compare runs read eval folders with the eval stage's settings (plots, tail threshold).
      {"compare", StageKind::kCompare, "eval", "summary table and overlay plots", {}, {}, "eval"},
  };
  return kStages;
}

const PipelineStage& pipeline_stage(const std::string& name) {
  for (const auto& s : pipeline_stages())
    if (s.name == name) return s;
  throw ConfigError("pipeline.stages: '" + name + "' is not a stage; see `rarlhf config --doc`");
}

}  // namespace rarlhf
