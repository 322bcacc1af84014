// The pipeline's pieces without child runs: the stage table against config.h's stage names and
// pipeline.<stage> keys, overrides keyed by stage through JSON, the up-front check of every stage's
// overrides, the summary table, and the shared process helpers (shell quoting, the plot launcher).
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "rarlhf/common/error.h"
#include "rarlhf/common/process.h"
#include "rarlhf/config/config.h"
#include "rarlhf/eval/report.h"
#include "rarlhf/pipeline/pipeline.h"
#include "rarlhf/pipeline/stages.h"
#include "rarlhf/pipeline/summary.h"

namespace rarlhf {
namespace {

using nlohmann::json;

// The keys of PipelineConfig that hold a stage's overrides (every array key but the four others).
std::set<std::string> override_keys() {
  std::set<std::string> keys;
  PipelineConfig p;
  p.visit_fields([&](const char* key, auto&, const char*, const std::vector<std::string>& = {}) { keys.insert(key); });
  for (const char* other : {"stages", "train_files", "test_files", "eval_splits"}) EXPECT_EQ(keys.erase(other), 1u);
  return keys;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(PipelineStages, TableNamesAreTheConfigsStageNamesInOrder) {
  std::vector<std::string> names;
  for (const auto& s : pipeline_stages()) names.push_back(s.name);
  EXPECT_EQ(names, kPipelineStages);
  // The default stages are valid ones.
  for (const auto& s : PipelineConfig{}.stages) EXPECT_EQ(pipeline_stage(s).name, s);
  EXPECT_NE(error_of([] { pipeline_stage("rlfh"); }).find("pipeline.stages: 'rlfh'"), std::string::npos);
}

TEST(PipelineStages, EveryOverridesKeyIsAConfigKeyAndEveryConfigKeyAStage) {
  const auto keys = override_keys();
  std::set<std::string> used;
  for (const auto& s : pipeline_stages()) {
    EXPECT_TRUE(keys.count(s.overrides_key)) << s.name << " reads pipeline." << s.overrides_key;
    used.insert(s.overrides_key);
  }
  EXPECT_EQ(used, keys) << "a pipeline.<stage> key no stage reads";
  for (const auto& k : keys) EXPECT_EQ(pipeline_stage(k).overrides_key, k);
}

TEST(PipelineStages, ChainsStartFromEarlierTrainingStages) {
  for (const auto& s : pipeline_stages()) {
    for (const auto& from : s.starts_from) {
      const auto& src = pipeline_stage(from);
      EXPECT_EQ(src.kind, StageKind::kTrain) << s.name << " starts from " << from;
      EXPECT_LT(std::find(kPipelineStages.begin(), kPipelineStages.end(), from),
                std::find(kPipelineStages.begin(), kPipelineStages.end(), s.name));
    }
  }
  EXPECT_TRUE(pipeline_stage("pretrain").from_scratch);
  EXPECT_EQ(pipeline_stage("ra_rlhf").start_overrides, std::vector<std::string>{"risk.enabled=true"});
}

TEST(PipelineConfig, OverridesAreKeyedByStageInJson) {
  Config cfg;
  apply_set(cfg, "pipeline.rlhf=[\"ppo.clip_range=0.1\"]");
  EXPECT_EQ(cfg.pipeline.overrides_of("rlhf"), std::vector<std::string>{"ppo.clip_range=0.1"});
  EXPECT_TRUE(cfg.pipeline.overrides_of("compare").empty());
  const json j = to_json(cfg);
  EXPECT_EQ(j["pipeline"]["rlhf"], json::array({"ppo.clip_range=0.1"}));
  EXPECT_EQ(j["pipeline"]["sft"], json::array());
  Config back;
  apply_json(back, j, "round trip");
  EXPECT_EQ(to_json(back), j);
}

TEST(PipelineConfig, ValidateNamesTheStageKey) {
  Config cfg;
  cfg.pipeline.stages = {"sft", "rlfh"};
  EXPECT_EQ(error_of([&] { validate(cfg); }),
            "pipeline.stages: 'rlfh' is not one of pretrain, sft, rlhf, ra_rlhf, eval, compare; did you mean 'rlhf'?");
  cfg = Config{};
  cfg.pipeline.overrides["ra_rlhf"] = {"risk.alpha"};
  EXPECT_NE(error_of([&] { validate(cfg); }).find("pipeline.ra_rlhf: 'risk.alpha' is not"), std::string::npos);
  // From a --set, the error names it.
  cfg = Config{};
  apply_set(cfg, "pipeline.stages=[\"sft\", \"evl\"]");
  EXPECT_EQ(error_of([&] { validate(cfg); }).rfind("--set: pipeline.stages: 'evl' is not one of", 0), 0u);
}

TEST(Pipeline, ChecksEveryStagesOverridesBeforeRunning) {
  Config cfg;
  cfg.pipeline.stages = {"sft"};  // the check covers stages that are not in the pipeline too
  cfg.pipeline.overrides["eval"] = {"eval.split=middle"};
  const std::string e = error_of([&] { Pipeline p(cfg, {}); });
  EXPECT_EQ(e.rfind("pipeline.eval: ", 0), 0u) << e;
  EXPECT_NE(e.find("eval.split: 'middle' is not one of"), std::string::npos) << e;
  cfg.pipeline.overrides["eval"] = {"ppo.clip_rnage=0.1"};
  EXPECT_NE(error_of([&] { Pipeline p(cfg, {}); }).find("pipeline.eval: --set: ppo.clip_rnage: unknown key"),
            std::string::npos);
  cfg.pipeline.overrides["eval"] = {"eval.ppl_path={out_dir}/data/test.jsonl"};
  EXPECT_EQ(error_of([&] { Pipeline p(cfg, {}); }), "");
}

TEST(PipelineSummary, TableTakesTailRewardFromTheTailSplitElseTheTestRun) {
  const json test = {{"reward", {{"mean", 1.23456}}},
                     {"tail", {{"reward", {{"mean", -0.5}}}}},
                     {"cvar", {{"0.1", -2.0}}},
                     {"perplexity", {{"mean_per_text", 40.123}}},
                     {"dist", {{"dist1", 0.5}, {"dist2", 0.75}, {"dist3", 0.875}}}};
  const json tail = {{"reward", {{"mean", -0.25}}}};
  const std::string md = summary_table({{"sft", test, nullptr}, {"rlhf", test, tail}, {"base", nullptr, tail}});
  EXPECT_NE(md.find("| sft | 1.235 | -0.500 | -2.000 | 40.12 | 0.500 | 0.750 | 0.875 |\n"), std::string::npos) << md;
  EXPECT_NE(md.find("| rlhf | 1.235 | -0.250 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| base | - | -0.250 | - | - | - | - | - |\n"), std::string::npos) << md;
  EXPECT_NE(summary_markdown("demo", md, false, "out/compare").find("from the tail split"), std::string::npos);
  EXPECT_NE(error_of([] { read_eval_run_json("/nonexistent/run"); }).find("/nonexistent/run/eval.json: missing"),
            std::string::npos);
}

TEST(Process, ShellQuoteLeavesSafeWordsAndQuotesTheRest) {
  EXPECT_EQ(shell_quote("runs/demo-1/eval.json"), "runs/demo-1/eval.json");
  EXPECT_EQ(shell_quote("model.path=/a/b"), "model.path=/a/b");
  EXPECT_EQ(shell_quote(""), "''");
  EXPECT_EQ(shell_quote("a b"), "'a b'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("sft.label_filter=\"\""), "'sft.label_filter=\"\"'");
  EXPECT_EQ(shell_quote("$(rm -rf x)"), "'$(rm -rf x)'");
}

TEST(Process, PlotLauncherNamesWhatIsMissing) {
  ::setenv("RARLHF_PYTHON", "/nonexistent/python3", 1);
  EXPECT_NE(error_of([] { run_plot_script("plot.py", {"--out", "x"}); }).find("cannot import matplotlib"),
            std::string::npos);
  ::unsetenv("RARLHF_PYTHON");
  ::setenv("RARLHF_SCRIPTS_DIR", "/nonexistent", 1);
  EXPECT_NE(error_of([] { find_bundled_script("plot_eval.py"); }).find("RARLHF_SCRIPTS_DIR=/nonexistent: no plot_eval.py"),
            std::string::npos);
  ::unsetenv("RARLHF_SCRIPTS_DIR");
  EXPECT_NE(find_bundled_script("plot_eval.py").find("scripts/plot_eval.py"), std::string::npos);  // build-*/../scripts
}

}  // namespace
}  // namespace rarlhf
