// `rarlhf sweep`: argument parsing and the plan (cells, shared stages, names, errors) by hand; the
// Pareto marking on a constructed example; the matched-KL comparison on a hand-worked manifest; and
// a 2 x 2 grid x 2 seeds sweep of a tiny GPT-2 run end to end by the binary: stopped with SIGTERM
// after its first cell and rerun, it finishes without redoing that cell, and its summary equals an
// aggregation by hand of the cells' eval.json and metrics.jsonl; --slurm writes job lines that are the same commands, and a task stopped by
// USR1 requeues itself; a rerun with other settings does not reuse finished cells.
#include "rarlhf/pipeline/sweep.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdlib>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <thread>

#include "cli_util.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/tiny_policy.h"

namespace rarlhf {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

TEST(SweepArgs, GridAndSeeds) {
  auto [k, v] = parse_grid_arg("ppo.init_kl_coef=0.05, 0.2,1");
  EXPECT_EQ(k, "ppo.init_kl_coef");
  EXPECT_EQ(v, (std::vector<std::string>{"0.05", "0.2", "1"}));
  auto [k2, v2] = parse_grid_arg("eval.cvar_alphas=[0.1,0.2],[0.4]");  // commas inside [] do not split
  EXPECT_EQ(k2, "eval.cvar_alphas");
  EXPECT_EQ(v2, (std::vector<std::string>{"[0.1,0.2]", "[0.4]"}));
  EXPECT_EQ(parse_grid_arg("eval.prompt_prefix=\"a, b\",x").second, (std::vector<std::string>{"\"a, b\"", "x"}));
  for (const char* bad : {"ppo.init_kl_coef", "=1,2", "ppo.lam=", "ppo.lam=1,,2", "ppo.lam=1,1"})
    EXPECT_THROW(parse_grid_arg(bad), ConfigError) << bad;
  EXPECT_EQ(parse_seeds("0-2"), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(parse_seeds("7,3, 3,0-1"), (std::vector<int64_t>{0, 1, 3, 7}));
  for (const char* bad : {"", "2-0", "a", "1-", "1.5", "0-99999"}) EXPECT_THROW(parse_seeds(bad), ConfigError) << bad;
}

TEST(SweepPlan, CellsSharedStagesAndErrors) {
  Config cfg;
  cfg.run.out_dir = "/sw";
  cfg.run.name = "x";
  SweepSpec spec;
  spec.seeds = {0, 1};
  spec.grid = {parse_grid_arg("ppo.init_kl_coef=0.05,0.2"), parse_grid_arg("risk.alpha=0.2,0.4")};
  // RL-only keys: sft (the config's stage before RL) runs once per seed, every cell starts from it.
  SweepPlan p = plan_sweep(cfg, spec);
  ASSERT_EQ(p.upstream.size(), 2u);
  EXPECT_EQ(p.upstream_stage, "sft");
  EXPECT_EQ(p.upstream[1].dir, "/sw/shared/seed1");
  EXPECT_EQ(p.upstream[1].sets, (std::vector<std::string>{"run.seed=1", "run.out_dir=/sw/shared/seed1",
                                                          "run.name=x-s1", "pipeline.stages=[\"sft\"]"}));
  EXPECT_EQ(p.trained, (std::vector<std::string>{"rlhf", "ra_rlhf"}));
  ASSERT_EQ(p.cells.size(), 8u);
  // Grid order: the last key fastest, seeds innermost.
  EXPECT_EQ(p.cells[0].point, "init_kl_coef_0.05__alpha_0.2");
  EXPECT_EQ(p.cells[1].point, "init_kl_coef_0.05__alpha_0.2");
  EXPECT_EQ(p.cells[1].seed, 1);
  EXPECT_EQ(p.cells[2].point, "init_kl_coef_0.05__alpha_0.4");
  EXPECT_EQ(p.cells[7].point, "init_kl_coef_0.2__alpha_0.4");
  EXPECT_EQ(p.cells[7].sets,
            (std::vector<std::string>{"ppo.init_kl_coef=0.2", "risk.alpha=0.4", "run.seed=1",
                                      "run.out_dir=/sw/cells/init_kl_coef_0.2__alpha_0.4/seed1",
                                      "run.name=x-init_kl_coef_0.2__alpha_0.4-s1",
                                      "pipeline.stages=[\"rlhf\",\"ra_rlhf\",\"eval\",\"compare\"]",
                                      "model.path=/sw/shared/seed1/sft/policy"}));
  // A key that changes SFT: every cell runs its own.
  SweepSpec sft = spec;
  sft.grid = {parse_grid_arg("sft.learning_rate=1e-5,2e-5")};
  sft.methods = {"ra_rlhf"};
  p = plan_sweep(cfg, sft);
  EXPECT_TRUE(p.upstream.empty());
  ASSERT_EQ(p.cells.size(), 4u);
  EXPECT_EQ(p.cells[0].sets[4], "pipeline.stages=[\"sft\",\"ra_rlhf\",\"eval\",\"compare\"]");
  EXPECT_EQ(p.cells[0].sets.size(), 5u);  // no model.path
  SweepSpec bad = spec;
  bad.grid = {parse_grid_arg("ppo.clip_rnage=0.1,0.2")};
  try {
    plan_sweep(cfg, bad);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("did you mean 'ppo.clip_range'"), std::string::npos) << e.what();
  }
  bad.grid = {parse_grid_arg("ppo.mini_batch_size=7,8")};  // 7 does not divide 128
  EXPECT_THROW(plan_sweep(cfg, bad), ConfigError);
  bad = spec;
  bad.methods = {"sft"};
  EXPECT_THROW(plan_sweep(cfg, bad), ConfigError);
  Config no_eval = cfg;
  no_eval.pipeline.stages = {"sft", "rlhf"};
  EXPECT_THROW(plan_sweep(no_eval, spec), ConfigError);
  Config no_test = cfg;  // the summary reads the test split's eval.json
  no_test.pipeline.eval_splits = {"tail"};
  EXPECT_THROW(plan_sweep(no_test, spec), ConfigError);
  // Each job records its config, its sets applied.
  p = plan_sweep(cfg, spec);
  const json c7 = json::parse(p.cells[7].config);
  EXPECT_EQ(c7["ppo"]["init_kl_coef"], 0.2);
  EXPECT_EQ(c7["risk"]["alpha"], 0.4);
  EXPECT_EQ(c7["run"]["seed"], 1);
  EXPECT_EQ(c7["model"]["path"], "/sw/shared/seed1/sft/policy");
  // A relative run.out_dir becomes absolute (job lines and manifests work from anywhere).
  Config rel = cfg;
  rel.run.out_dir = "runs/sw/";
  p = plan_sweep(rel, spec);
  EXPECT_EQ(p.root, (fs::current_path() / "runs/sw").string());
  EXPECT_EQ(p.cells[0].dir, p.root + "/cells/init_kl_coef_0.05__alpha_0.2/seed0");
}

// A(1,1) B(2,.5) C(.5,2) are the frontier; D(.9,.9) is beaten by A; E equals B (both kept); F has a
// NaN (never kept, dominates nothing) and G(0.4, 0.4) is beaten by D, itself dominated.
TEST(SweepPareto, MarksTheNonDominatedPoints) {
  const double nan = std::nan("");
  auto keep = non_dominated({{1, 1}, {2, 0.5}, {0.5, 2}, {0.9, 0.9}, {2, 0.5}, {nan, 3}, {0.4, 0.4}});
  EXPECT_EQ(keep, (std::vector<bool>{true, true, true, false, true, false, false}));
  EXPECT_TRUE(non_dominated({}).empty());
  EXPECT_EQ(non_dominated({{-1, -1}}), std::vector<bool>{true});
}

// Piecewise-linear through (0,1) (2,2) (4,3); equal x averaged; NaN points dropped; no extrapolation.
TEST(SweepMatchedKl, InterpolatesBetweenPointsAndNeverBeyond) {
  const double nan = std::nan("");
  const std::vector<std::array<double, 2>> curve = {{4, 3}, {0, 1}, {2, 1.5}, {2, 2.5}, {3, nan}};
  EXPECT_DOUBLE_EQ(interpolate_at(curve, 1), 1.5);
  EXPECT_DOUBLE_EQ(interpolate_at(curve, 3), 2.5);
  EXPECT_DOUBLE_EQ(interpolate_at(curve, 0), 1);
  EXPECT_DOUBLE_EQ(interpolate_at(curve, 4), 3);
  EXPECT_TRUE(std::isnan(interpolate_at(curve, 4.01)));
  EXPECT_TRUE(std::isnan(interpolate_at(curve, -0.5)));
  EXPECT_TRUE(std::isnan(interpolate_at(curve, nan)));
  EXPECT_DOUBLE_EQ(interpolate_at({{1, 7}}, 1), 7);
  EXPECT_TRUE(std::isnan(interpolate_at({{1, 7}}, 1.5)));
  EXPECT_TRUE(std::isnan(interpolate_at({}, 0)));
}

// A manifest naming its files (as scripts/slurm/grid.sh writes). Worked by hand, Δ = ra_rlhf - rlhf
// in (reward, tail, CVaR), every curve through sft at KL 0 (1, -1, -2):
// - seed 1, rlhf at KL 2 (2, 0, -1) and 4 (3, 1, 0); ra_rlhf at KL 3 (2.4, 0.8, -0.2) and 1
//   (1.6, -0.1, -1.2). rlhf's curve gives (2.5, 0.5, -0.5) at KL 3 and (1.5, -0.5, -1.5) at KL 1:
//   Δ (-0.1, +0.3, +0.3) and (+0.1, +0.4, +0.3). ra_rlhf's curve gives (2, 0.35, -0.7) at KL 2:
//   Δ (0, +0.35, +0.3); KL 4 is beyond ra_rlhf's 3.
// - seed 2, rlhf at KL 2 (2, 0, -1), ra_rlhf at KL 5 (2.2, 0.3, -0.9): KL 5 is beyond rlhf's 2;
//   ra_rlhf's curve gives (1.48, -0.48, -1.56) at KL 2: Δ (-0.52, -0.48, -0.56).
TEST(SweepMatchedKl, ComparesEachMethodWithTheBaselineAtItsOwnKl) {
  testing::TempDir tmp("matched");
  auto eval = [&](const std::string& name, double reward, double tail, double cvar) {
    return tmp.write(name, json({{"reward", {{"mean", reward}}}, {"tail", {{"reward", {{"mean", tail}}}, {"count", 3}}},
                                 {"cvar", {{"0.1", cvar}}}, {"perplexity", {{"mean_per_text", 10.0}}},
                                 {"dist", {{"dist2", 0.9}}}})
                               .dump());
  };
  auto kl = [&](const std::string& name, double k) {
    return tmp.write(name, json({{"objective/kl", 99.0}}).dump() + "\n" + json({{"objective/kl", k}}).dump() + "\n");
  };
  json cells = json::array();
  auto cell = [&](const std::string& point, int64_t seed, std::vector<double> rl, std::vector<double> ra, double kl_rl,
                  double kl_ra) {
    const std::string id = point + std::to_string(seed);
    json c = {{"point", point}, {"settings", {{"ppo.init_kl_coef", point}}}, {"seed", seed}};
    c["evals"] = {{"sft", eval(id + "-sft.json", 1.0, -1.0, -2.0)},
                  {"rlhf", eval(id + "-rl.json", rl[0], rl[1], rl[2])},
                  {"ra_rlhf", eval(id + "-ra.json", ra[0], ra[1], ra[2])}};
    c["metrics"] = {{"rlhf", kl(id + "-rl.jsonl", kl_rl)}, {"ra_rlhf", kl(id + "-ra.jsonl", kl_ra)}};
    cells.push_back(c);
  };
  cell("A", 1, {2.0, 0.0, -1.0}, {2.4, 0.8, -0.2}, 2, 3);
  cell("B", 1, {3.0, 1.0, 0.0}, {1.6, -0.1, -1.2}, 4, 1);
  cell("A", 2, {2.0, 0.0, -1.0}, {2.2, 0.3, -0.9}, 2, 5);
  tmp.write("sweep.json", json({{"grid", {{{"key", "ppo.init_kl_coef"}}}}, {"trained", {"rlhf", "ra_rlhf"}},
                                {"upstream_stage", "sft"}, {"reference", "sft"}, {"kl_last", 1}, {"cells", cells}})
                              .dump());
  aggregate_sweep(tmp.path(), /*plots=*/false);
  const json m = json::parse(testing::slurp(tmp.path("summary.json")))["matched_kl"];
  ASSERT_TRUE(m.is_object());
  EXPECT_EQ(m["baseline"], "rlhf");
  ASSERT_EQ(m["pairs"].size(), 6u);  // ra_rlhf's 3 points, then rlhf's 3
  const json& p1 = m["pairs"][1];    // cell B, seed 1: ra_rlhf at KL 1
  EXPECT_EQ(p1["at"], "ra_rlhf");
  EXPECT_EQ(p1["point"], "B");
  EXPECT_DOUBLE_EQ(p1["kl"].get<double>(), 1.0);
  EXPECT_NEAR(p1["baseline_value"]["tail"].get<double>(), -0.5, 1e-12);
  EXPECT_NEAR(p1["delta"]["cvar_0.1"].get<double>(), 0.3, 1e-12);
  EXPECT_TRUE(m["pairs"][2]["delta"]["tail"].is_null());  // seed 2: KL 5 beyond rlhf's 2
  const json& p5 = m["pairs"][5];                          // rlhf, seed 2, at KL 2
  EXPECT_EQ(p5["at"], "rlhf");
  EXPECT_NEAR(p5["model_value"]["reward"].get<double>(), 1.48, 1e-12);
  EXPECT_NEAR(p5["delta"]["tail"].get<double>(), -0.48, 1e-12);
  EXPECT_TRUE(m["pairs"][4]["delta"]["reward"].is_null());  // rlhf at KL 4, beyond ra_rlhf's 3
  const json& ra = m["methods"]["ra_rlhf"];
  EXPECT_EQ(ra["pairs"], 4);
  EXPECT_EQ(ra["seeds"], 2);
  EXPECT_EQ(ra["unmatched"], 2);
  auto mean_sd = [](std::vector<double> d) {
    double mu = 0, ss = 0;
    for (double x : d) mu += x / d.size();
    for (double x : d) ss += (x - mu) * (x - mu);
    return std::pair<double, double>{mu, std::sqrt(ss / (d.size() - 1))};
  };
  for (const auto& [key, d] : std::map<std::string, std::vector<double>>{{"reward", {-0.1, 0.1, 0, -0.52}},
                                                                         {"tail", {0.3, 0.4, 0.35, -0.48}},
                                                                         {"cvar_0.1", {0.3, 0.3, 0.3, -0.56}}}) {
    EXPECT_NEAR(ra["delta_mean"][key].get<double>(), mean_sd(d).first, 1e-12) << key;
    EXPECT_NEAR(ra["delta_std"][key].get<double>(), mean_sd(d).second, 1e-12) << key;
  }
  const std::string md = testing::slurp(tmp.path("summary.md"));
  EXPECT_NE(md.find("## At matched KL"), std::string::npos);
  EXPECT_NE(md.find("| ra_rlhf | A | 1 | 3.000 | 2.400 / 2.500 | -0.100 | 0.800 / 0.500 | +0.300 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| rlhf | A | 1 | 2.000 | 2.000 / 2.000 | +0.000 | 0.350 / 0.000 | +0.350 |"), std::string::npos) << md;
  EXPECT_NE(md.find("2 beyond the other method's largest KL"), std::string::npos) << md;
}

double sample_std(const std::vector<double>& x) {
  double m = 0;
  for (double v : x) m += v / x.size();
  double ss = 0;
  for (double v : x) ss += (v - m) * (v - m);
  return x.size() > 1 ? std::sqrt(ss / (x.size() - 1)) : 0.0;
}

class SweepCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(testing::kBinary)) GTEST_SKIP() << "rarlhf binary not built";
    if (!fs::exists(testing::shared_data("sentiment-lexicons/vader_lexicon.txt"))) GTEST_SKIP() << "needs ../shared/data";
    tmp_.emplace("sweep");
    root_ = tmp_->path();
    config_ = testing::write_tiny_rl_run(root_, 2);
    out_ = root_ + "/sw";
    args_ = {testing::kBinary, "sweep", "--config", config_, "--set", "run.out_dir=" + out_, "--set",
             "data.test_path=" + root_ + "/prompts.txt", "--set", "pipeline.stages=[\"rlhf\",\"ra_rlhf\",\"eval\"]",
             "--set", "pipeline.eval_splits=[\"test\"]", "--set", "eval.tail_threshold=0", "--set", "eval.plots=false",
             "--set", "logging.curves=false", "--set", "ppo.ppo_epochs=1", "--grid", "ppo.init_kl_coef=0.05,0.3",
             "--grid", "risk.alpha=0.25,0.5", "--seeds", "0-1", "--kl-last", "1"};
  }
  std::optional<testing::TempDir> tmp_;
  std::string root_, config_, out_;
  std::vector<std::string> args_;
};

TEST_F(SweepCliTest, StopResumeAndTheSummaryEqualsAnAggregationByHand) {
  const std::string first = out_ + "/cells/init_kl_coef_0.05__alpha_0.25/seed0";
  pid_t pid = testing::spawn(args_, {}, root_ + "/sweep1.log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  while (!fs::exists(first + "/SWEEP_DONE") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_TRUE(fs::exists(first + "/SWEEP_DONE")) << testing::slurp(root_ + "/sweep1.log");
  ::kill(pid, SIGTERM);  // stops the running cell, which checkpoints
  const int stopped = testing::wait_for(pid, std::chrono::seconds(120));
  const auto first_done = fs::last_write_time(first + "/SWEEP_DONE");
  EXPECT_NE(stopped, 0) << "seven cells were left: the stop must end the sweep early";
  EXPECT_NE(testing::slurp(root_ + "/sweep1.log").find("rerun the same command to resume"), std::string::npos)
      << testing::slurp(root_ + "/sweep1.log");
  ASSERT_EQ(testing::run(args_, {}, root_ + "/sweep2.log", 600), 0) << testing::slurp(root_ + "/sweep2.log");
  EXPECT_EQ(fs::last_write_time(first + "/SWEEP_DONE"), first_done);  // not redone
  EXPECT_NE(testing::slurp(root_ + "/sweep2.log").find("done already"), std::string::npos);

  // By hand: per (point, model) the mean and sample std over the 2 seeds of eval.json's numbers;
  // KL = the last iteration's objective/kl (--kl-last 1); the start policy ("base") has KL 0.
  const json summary = json::parse(testing::slurp(out_ + "/summary.json"));
  ASSERT_EQ(summary["groups"].size(), 4u * 3u);
  for (const auto& g : summary["groups"]) {
    const std::string point = g["point"], model = g["model"];
    std::vector<double> reward, tail, kl;
    for (int seed : {0, 1}) {
      const std::string cell = out_ + "/cells/" + point + "/seed" + std::to_string(seed);
      const json ej = json::parse(testing::slurp(cell + "/eval/" + model + "-test/eval.json"));
      reward.push_back(ej["reward"]["mean"].get<double>());
      tail.push_back(ej["tail"]["reward"]["mean"].get<double>());
      if (model == "base") {
        kl.push_back(0);
      } else {
        std::ifstream m(cell + "/" + model + "/metrics.jsonl");
        json last;
        for (std::string line; std::getline(m, line);) last = json::parse(line);
        kl.push_back(last["objective/kl"].get<double>());
      }
    }
    EXPECT_NEAR(g["mean"]["reward"].get<double>(), (reward[0] + reward[1]) / 2, 1e-12) << point << " " << model;
    EXPECT_NEAR(g["std"]["reward"].get<double>(), sample_std(reward), 1e-12) << point << " " << model;
    EXPECT_NEAR(g["mean"]["tail"].get<double>(), (tail[0] + tail[1]) / 2, 1e-12) << point << " " << model;
    EXPECT_NEAR(g["mean"]["kl"].get<double>(), (kl[0] + kl[1]) / 2, 1e-9) << point << " " << model;
    EXPECT_EQ(g["seeds"], json({0, 1}));
  }
  // The Pareto flags are non_dominated() over the groups' (reward, tail) means.
  std::vector<std::array<double, 2>> pts;
  for (const auto& g : summary["groups"]) pts.push_back({g["mean"]["reward"].get<double>(), g["mean"]["tail"].get<double>()});
  const auto keep = non_dominated(pts);
  for (size_t i = 0; i < keep.size(); ++i) EXPECT_EQ(summary["groups"][i]["pareto_reward_tail"].get<bool>(), keep[i]) << i;
  const std::string csv = testing::slurp(out_ + "/summary.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 13);  // header + 12 groups
  const std::string cells_csv = testing::slurp(out_ + "/cells.csv");
  EXPECT_EQ(std::count(cells_csv.begin(), cells_csv.end(), '\n'), 1 + 24);  // 4 points x 2 seeds x 3 models
  EXPECT_NE(testing::slurp(out_ + "/summary.md").find("| init_kl_coef_0.3__alpha_0.5 | 0.3 | 0.5 | ra_rlhf | 2 |"),
            std::string::npos);

  // --slurm: the same cells as job lines; running one line as its array task would gives that cell.
  std::vector<std::string> slurm = args_;
  slurm.push_back("--slurm");
  ASSERT_EQ(testing::run(slurm, {}, root_ + "/slurm.log", 60), 0) << testing::slurp(root_ + "/slurm.log");
  const std::string cells = testing::slurp(out_ + "/slurm/cells.txt");
  EXPECT_EQ(std::count(cells.begin(), cells.end(), '\n'), 8);
  EXPECT_TRUE(testing::slurp(out_ + "/slurm/upstream.txt").empty());  // no stage before RL in this config
  EXPECT_NE(cells.find("--set run.out_dir=" + first + " "), std::string::npos) << cells;
  EXPECT_NE(testing::slurp(out_ + "/slurm/submit.sh").find("--array=0-7"), std::string::npos);
  const int rc = testing::run({"bash", out_ + "/slurm/sweep.sbatch", out_ + "/slurm/cells.txt"}, {{"SLURM_ARRAY_TASK_ID", "0"}},
                              root_ + "/task0.log", 120);
  EXPECT_EQ(rc, 0) << testing::slurp(root_ + "/task0.log");
  EXPECT_NE(testing::slurp(root_ + "/task0.log").find("done already"), std::string::npos);  // that finished cell

  // A rerun that would give a finished cell other settings stops before running anything, naming
  // the cell and the key (the cells' SWEEP_DONE holds their config).
  std::vector<std::string> changed = args_;
  changed.insert(changed.end(), {"--set", "ppo.lam=0.9"});
  EXPECT_NE(testing::run(changed, {}, root_ + "/changed.log", 60), 0);
  const std::string changed_log = testing::slurp(root_ + "/changed.log");
  EXPECT_NE(changed_log.find(first + " was finished with other settings"), std::string::npos) << changed_log;
  EXPECT_NE(changed_log.find("ppo.lam"), std::string::npos) << changed_log;
  EXPECT_EQ(json::parse(testing::slurp(first + "/SWEEP_DONE"))["run"]["out_dir"], first);

  // A Slurm task stopped by the time limit's USR1: the run checkpoints, the task requeues itself
  // (a fake scontrol records it) and is not marked done; the requeued task finishes the cell.
  const std::string out2 = root_ + "/sw2";
  std::vector<std::string> slurm2 = slurm;
  slurm2.insert(slurm2.end(), {"--set", "run.out_dir=" + out2});
  ASSERT_EQ(testing::run(slurm2, {}, root_ + "/slurm2.log", 60), 0) << testing::slurp(root_ + "/slurm2.log");
  fs::create_directories(root_ + "/bin");
  {
    std::ofstream f(root_ + "/bin/scontrol");
    f << "#!/bin/sh\necho \"$*\" >> " << root_ << "/scontrol.log\n";
  }
  fs::permissions(root_ + "/bin/scontrol", fs::perms::owner_all);
  const std::map<std::string, std::string> task_env = {{"SLURM_ARRAY_TASK_ID", "0"}, {"SLURM_ARRAY_JOB_ID", "5000"},
                                                       {"PATH", root_ + "/bin:" + std::getenv("PATH")}};
  const std::string cell2 = out2 + "/cells/init_kl_coef_0.05__alpha_0.25/seed0";
  pid_t task = testing::spawn({"bash", out2 + "/slurm/sweep.sbatch", out2 + "/slurm/cells.txt"}, task_env,
                              root_ + "/task_stop.log");
  const auto started = std::chrono::steady_clock::now() + std::chrono::minutes(1);
  while (!fs::exists(cell2 + "/rlhf") && std::chrono::steady_clock::now() < started)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  ::kill(task, SIGUSR1);
  EXPECT_EQ(testing::wait_for(task, std::chrono::seconds(120)), 0) << testing::slurp(root_ + "/task_stop.log");
  EXPECT_EQ(testing::slurp(root_ + "/scontrol.log"), "requeue 5000_0\n") << testing::slurp(root_ + "/task_stop.log");
  EXPECT_FALSE(fs::exists(cell2 + "/SWEEP_DONE"));
  ASSERT_EQ(testing::run({"bash", out2 + "/slurm/sweep.sbatch", out2 + "/slurm/cells.txt"}, task_env,
                         root_ + "/task_again.log", 300),
            0)
      << testing::slurp(root_ + "/task_again.log");
  EXPECT_EQ(testing::slurp(root_ + "/scontrol.log"), "requeue 5000_0\n");  // not again
  EXPECT_EQ(json::parse(testing::slurp(cell2 + "/SWEEP_DONE"))["run"]["out_dir"], cell2);

  if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") != 0) {
    GTEST_LOG_(INFO) << "no matplotlib: the plots are not checked";
    return;
  }
  // The plots: pareto.png / frontier.png from summary.json; `rarlhf plot` over the two seeds of one
  // training stage gives one group whose curve (its CSV) is the seeds' mean and sample std.
  std::vector<std::string> again = args_;
  again.insert(again.end(), {"--aggregate-only", "--set", "eval.plots=true"});
  ASSERT_EQ(testing::run(again, {}, root_ + "/aggregate.log", 120), 0) << testing::slurp(root_ + "/aggregate.log");
  EXPECT_TRUE(fs::file_size(out_ + "/pareto.png") > 1000);
  EXPECT_TRUE(fs::file_size(out_ + "/frontier.png") > 1000);
  const std::string cell = out_ + "/cells/init_kl_coef_0.3__alpha_0.5";
  ASSERT_EQ(testing::run({testing::kBinary, "plot", "--run", cell + "/seed0/ra_rlhf", cell + "/seed1/ra_rlhf", "--out",
                          root_ + "/curves.png"},
                         {}, root_ + "/plot.log", 120),
            0)
      << testing::slurp(root_ + "/plot.log");
  EXPECT_TRUE(fs::file_size(root_ + "/curves.png") > 1000);
  std::map<int64_t, std::vector<double>> kl;
  for (int seed : {0, 1}) {
    std::ifstream m(cell + "/seed" + std::to_string(seed) + "/ra_rlhf/metrics.jsonl");
    for (std::string line; std::getline(m, line);) {
      const json r = json::parse(line);
      kl[r["iteration"].get<int64_t>()].push_back(r["objective/kl"].get<double>());
    }
  }
  std::ifstream csv_in(root_ + "/curves.csv");
  size_t rows = 0;
  for (std::string line; std::getline(csv_in, line);) {
    if (line.rfind("objective/kl,", 0) != 0) continue;
    std::stringstream ss(line);
    std::vector<std::string> f;
    for (std::string x; std::getline(ss, x, ',');) f.push_back(x);
    ASSERT_EQ(f.size(), 6u) << line;
    EXPECT_EQ(f[1], "init_kl_coef_0.3__alpha_0.5/ra_rlhf");
    const auto& v = kl.at(std::stoll(f[2]));
    EXPECT_NEAR(std::stod(f[3]), (v[0] + v[1]) / 2, 1e-9) << line;
    EXPECT_NEAR(std::stod(f[4]), sample_std(v), 1e-9) << line;
    EXPECT_EQ(f[5], "2");
    ++rows;
  }
  EXPECT_EQ(rows, kl.size());
}

}  // namespace
}  // namespace rarlhf
