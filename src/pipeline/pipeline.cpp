// The stages of `rarlhf run` in order: see include/rarlhf/pipeline/pipeline.h. Each stage builds the
// command line of its child run: the subcommand, the run's own config arguments, the stage's start
// overrides (stages.cpp), the user's pipeline.<stage> overrides, then the stage's output folder.
#include "rarlhf/pipeline/pipeline.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/data/dataset.h"
#include "rarlhf/eval/report.h"
#include "rarlhf/model/lora.h"
#include "rarlhf/pipeline/child.h"
#include "rarlhf/pipeline/summary.h"

namespace rarlhf {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

void append_sets(std::vector<std::string>& args, const std::vector<std::string>& sets) {
  for (const auto& s : sets) args.insert(args.end(), {"--set", s});
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string stage_failure(const std::string& label, bool interrupted, int exit_code) {
  return "run: stage '" + label + "' " +
         (interrupted ? "was interrupted" : "failed (exit " + std::to_string(exit_code) + ")") +
         "; its output is above; rerun the same command to resume from it";
}

// An eval run's eval.json, with the pipeline's way to (re)make it.
json eval_json_of(const std::string& run_dir) {
  try {
    return read_eval_run_json(run_dir);
  } catch (const IoError& e) {
    throw IoError(std::string(e.what()) + " (in a pipeline: `rarlhf run ... --only eval`)");
  }
}

// Reads `files` (each in data.format) and writes them as one JSONL {"text","label"} file, so that
// stages reading a single data path can use several source files (the demo: UCI imdb + amazon).
void merge_text_files(const DataConfig& data, const std::vector<std::string>& files, const std::string& out,
                      const std::string& field) {
  std::ostringstream buf;
  int64_t n = 0;
  for (const auto& f : files) {
    const auto texts = read_texts(data, f);
    for (const auto& t : texts) {
      buf << json{{"text", t.text}, {"label", t.label}}.dump(-1, ' ', false, json::error_handler_t::replace)
          << "\n";
      ++n;
    }
    RARLHF_LOG_INFO("run: {}: {} texts from {}", field, texts.size(), f);
  }
  if (n == 0) throw ConfigError(field + ": no texts in " + std::to_string(files.size()) + " files");
  write_file_atomic(out, buf.str());
}

}  // namespace

Pipeline::Pipeline(Config cfg, std::vector<std::string> child_args)
    : cfg_(std::move(cfg)), root_(cfg_.run.out_dir), child_args_(std::move(child_args)) {
  check_stage_overrides();
}

void Pipeline::run(const std::vector<std::string>& stages, const Estimator& estimate) {
  forward_stop_signals_to_child();  // first: a stop while the data is merged must not kill the run
  merge_data_files();
  const auto t_start = Clock::now();
  const double expected = estimate ? estimate_stages(stages, estimate) : std::nan("");
  for (const auto& name : stages) run_stage(pipeline_stage(name));
  std::cout << "\nrun: " << stages.size() << " stage(s) in " << format_cell(seconds_since(t_start), 1) << " s";
  if (std::isfinite(expected)) std::cout << " (expected " << format_cell(expected, 0) << " s)";
  std::cout << " -> " << root_ << std::endl;
}

double Pipeline::estimate(const std::vector<std::string>& stages, const Estimator& estimate) {
  merge_data_files();
  return estimate_stages(stages, estimate);
}

double Pipeline::estimate_stages(const std::vector<std::string>& stages, const Estimator& estimate) const {
  std::vector<PlannedStage> plan;
  for (const auto& name : stages) plan.push_back(planned(pipeline_stage(name)));
  return estimate(plan);
}

PlannedStage Pipeline::planned(const PipelineStage& stage) const {
  PlannedStage p{&stage, config_of(stage), 0, ""};
  switch (stage.kind) {
    case StageKind::kTrain:
      p.runs = file_exists(stage_dir(stage.name) + "/DONE") ? 0 : 1;
      p.from = start_stage_of(stage);
      break;
    case StageKind::kEval:
      for (const auto& model : compared_models())
        for (const auto& split : cfg_.pipeline.eval_splits)
          p.runs += file_exists(eval_dir(stage, model.first, split) + "/DONE") ? 0 : 1;
      break;
    case StageKind::kCompare: p.runs = 1; break;
  }
  return p;
}

// Every stage's overrides, in the pipeline or not, must make a valid config before anything runs.
void Pipeline::check_stage_overrides() const {
  std::vector<std::string> checked;  // compare shares eval's key
  for (const auto& stage : pipeline_stages()) {
    if (contains(checked, stage.overrides_key)) continue;
    checked.push_back(stage.overrides_key);
    try {
      Config c = cfg_;
      for (const auto& s : overrides_of(stage)) apply_set(c, s);
      validate(c);
    } catch (const ConfigError& e) {
      throw ConfigError("pipeline." + stage.overrides_key + ": " + e.what());
    }
  }
}

// pipeline.train_files/test_files -> run.out_dir/data/{train,test}.jsonl, which every child then
// reads as data.train_path/test_path in JSONL.
void Pipeline::merge_data_files() {
  struct Merge {
    const std::vector<std::string>& files;
    std::string name, field, key;
  };
  const auto& P = cfg_.pipeline;
  std::vector<std::string> merged;
  for (const Merge& m : {Merge{P.train_files, "train", "pipeline.train_files", "data.train_path"},
                         Merge{P.test_files, "test", "pipeline.test_files", "data.test_path"}}) {
    if (m.files.empty()) continue;
    const std::string out = root_ + "/data/" + m.name + ".jsonl";
    make_dirs(root_ + "/data");
    merge_text_files(cfg_.data, m.files, out, m.field);
    const std::vector<std::string> sets = {m.key + "=" + out, "data.format=jsonl", "data.text_field=text",
                                           "data.label_field=label"};
    append_sets(child_args_, sets);
    merged.insert(merged.end(), sets.begin(), sets.end());
  }
  // After every merge (each reads its files in the configured format): config_of() then sees what
  // the children see.
  for (const auto& set : merged) apply_set(cfg_, set);
}

void Pipeline::run_stage(const PipelineStage& stage) {
  const auto& all = cfg_.pipeline.stages;
  const size_t position = std::find(all.begin(), all.end(), stage.name) - all.begin() + 1;
  std::cout << "\n[" << position << "/" << all.size() << "] " << stage.name << ": " << stage.description << std::endl;
  const auto t0 = Clock::now();
  switch (stage.kind) {
    case StageKind::kTrain:
      if (file_exists(stage_dir(stage.name) + "/DONE")) {
        std::cout << "  done already (" << stage_dir(stage.name) << "/DONE); skipped" << std::endl;
        return;
      }
      run_training_stage(stage);
      break;
    case StageKind::kEval: run_eval_stage(stage); break;
    case StageKind::kCompare: run_compare_stage(stage); break;
  }
  std::cout << "  " << stage.name << " finished in " << format_cell(seconds_since(t0), 1) << " s" << std::endl;
}

void Pipeline::run_training_stage(const PipelineStage& stage) {
  const std::string dir = stage_dir(stage.name);
  // The input policy must exist before a child spends minutes loading data.
  const std::string input = config_of(stage).model.path;
  if (!stage.from_scratch && starts_with(input, root_) && !is_model_dir(input))
    throw ConfigError("run: stage '" + stage.name + "' needs " + input + "; run the earlier stages first");
  std::vector<std::string> args = child_command(stage.subcommand);
  append_sets(args, start_overrides_of(stage));
  append_sets(args, overrides_of(stage));
  append_sets(args, {"run.out_dir=" + dir, "run.name=" + cfg_.run.name + "-" + stage.name});
  args.push_back("--resume");
  run_child(stage.name, args);
  // A child stopped by a signal sent to it alone checkpoints and exits 0 without DONE.
  if (!file_exists(dir + "/DONE")) throw StageFailed(stage_failure(stage.name, /*interrupted=*/true, 0), 1);
}

void Pipeline::run_eval_stage(const PipelineStage& stage) {
  for (const auto& model : compared_models())
    for (const auto& split : cfg_.pipeline.eval_splits) evaluate(stage, model, split);
}

// One eval run: run.out_dir/eval/<model>-<split>, marked DONE once its eval.json is there.
void Pipeline::evaluate(const PipelineStage& stage, const Model& model, const std::string& split) {
  const auto& [name, policy] = model;
  const std::string dir = eval_dir(stage, name, split);
  if (file_exists(dir + "/DONE")) {
    std::cout << "  " << name << " on " << split << ": done already; skipped" << std::endl;
    return;
  }
  if (!is_model_dir(policy) && starts_with(policy, root_))
    throw ConfigError("run: eval needs " + policy + "; run the '" + name + "' stage first");
  std::cout << "  " << name << " on the " << split << " split" << std::endl;
  std::vector<std::string> args = child_command(stage.subcommand);
  append_sets(args, overrides_of(stage));
  // run.out_dir = the eval folder: eval's prompt-score cache then sits in its parent, shared by
  // every model's eval (the prompts and reward are the same).
  append_sets(args, {"run.out_dir=" + dir});
  args.insert(args.end(), {"--model", policy, "--split", split, "--name", name, "--out", dir});
  run_child("eval (" + name + ", " + split + ")", args);
  if (!file_exists(dir + "/eval.json")) throw IoError("run: eval of " + name + " wrote no " + dir + "/eval.json");
  write_file_atomic(dir + "/DONE", "eval " + name + " " + split + "\n");
}

void Pipeline::run_compare_stage(const PipelineStage& stage) {
  const PipelineStage& eval = pipeline_stage("eval");  // the eval stage's runs: <model>-<split>
  const auto& splits = cfg_.pipeline.eval_splits;
  std::vector<SummaryRow> rows;
  std::vector<std::string> test_dirs, tail_dirs;
  for (const auto& [name, policy] : compared_models()) {
    SummaryRow row{name, nullptr, nullptr};
    if (contains(splits, "test")) {
      test_dirs.push_back(eval_dir(eval, name, "test"));
      row.test = eval_json_of(test_dirs.back());
    }
    if (contains(splits, "tail")) {
      tail_dirs.push_back(eval_dir(eval, name, "tail"));
      row.tail = eval_json_of(tail_dirs.back());
    }
    rows.push_back(std::move(row));
  }
  const std::string dir = stage_dir(stage.name);
  make_dirs(dir);
  compare_eval_runs(stage, test_dirs, dir + "/test");
  compare_eval_runs(stage, tail_dirs, dir + "/tail");
  const std::string table = summary_table(rows);
  write_file_atomic(root_ + "/summary.md", summary_markdown(cfg_.run.name, table, contains(splits, "test"), dir));
  std::cout << "\n" << table << "summary: " << root_ << "/summary.md" << std::endl;
}

// Overlay plots + eval's own comparison table of one split's runs (`rarlhf eval --compare`).
void Pipeline::compare_eval_runs(const PipelineStage& stage, const std::vector<std::string>& run_dirs,
                                 const std::string& out_dir) {
  if (run_dirs.empty()) return;
  std::vector<std::string> args = child_command(stage.subcommand);
  append_sets(args, overrides_of(stage));
  append_sets(args, {"run.out_dir=" + stage_dir(stage.name)});
  args.push_back("--compare");
  args.insert(args.end(), run_dirs.begin(), run_dirs.end());
  args.insert(args.end(), {"--out", out_dir});
  run_child(stage.name, args);
}

// The models compared: the policy the first training stage starts from ("base"; none when that
// stage trains from scratch; model.path when there is no training stage), then every training
// stage's policy, in pipeline order.
std::vector<Pipeline::Model> Pipeline::compared_models() const {
  std::vector<Model> trained;
  const PipelineStage* first = nullptr;
  for (const auto& stage : pipeline_stages()) {
    if (stage.kind != StageKind::kTrain || !in_pipeline(stage.name)) continue;
    if (!first) first = &stage;
    trained.push_back({stage.name, policy_dir(stage.name)});
  }
  std::vector<Model> models;
  if (!first) models.push_back({"base", cfg_.model.path});
  else if (!first->from_scratch) models.push_back({"base", config_of(*first).model.path});
  models.insert(models.end(), trained.begin(), trained.end());
  return models;
}

std::vector<std::string> Pipeline::overrides_of(const PipelineStage& stage) const {
  std::vector<std::string> sets = cfg_.pipeline.overrides_of(stage.overrides_key);
  // "{out_dir}" moves with the run folder, e.g. the merged test file as eval.ppl_path.
  for (auto& s : sets) {
    for (size_t at = s.find("{out_dir}"); at != std::string::npos; at = s.find("{out_dir}", at + 1))
      s.replace(at, 9, root_);
  }
  return sets;
}

// The stage's own start overrides, then the policy it starts from: the output of the first
// earlier training stage that is part of the pipeline (else what the config says).
std::vector<std::string> Pipeline::start_overrides_of(const PipelineStage& stage) const {
  std::vector<std::string> sets = stage.start_overrides;
  const std::string from = start_stage_of(stage);
  if (!from.empty()) sets.push_back("model.path=" + policy_dir(from));
  return sets;
}

std::string Pipeline::start_stage_of(const PipelineStage& stage) const {
  for (const auto& from : stage.starts_from)
    if (in_pipeline(from)) return from;
  return "";
}

Config Pipeline::config_of(const PipelineStage& stage) const {
  Config c = cfg_;
  for (const auto& s : start_overrides_of(stage)) apply_set(c, s);
  for (const auto& s : overrides_of(stage)) apply_set(c, s);
  return c;
}

std::vector<std::string> Pipeline::child_command(const std::string& subcommand) const {
  std::vector<std::string> args = {subcommand};
  args.insert(args.end(), child_args_.begin(), child_args_.end());
  return args;
}

void Pipeline::run_child(const std::string& label, const std::vector<std::string>& args) const {
  if (stop_signal_seen()) throw StageFailed(stage_failure(label, true, 0), 1);  // stopped before it started
  const int rc = run_self(args);
  if (rc != 0 || stop_signal_seen()) throw StageFailed(stage_failure(label, stop_signal_seen(), rc), rc == 0 ? 1 : rc);
}

bool Pipeline::in_pipeline(const std::string& stage) const { return contains(cfg_.pipeline.stages, stage); }

}  // namespace rarlhf
