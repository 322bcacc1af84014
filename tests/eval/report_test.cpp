// Eval run files and table metrics on a hand-worked set of generations: reward, tail, CVaR,
// Dist-n pooled per prompt, eval.json fields, generations.jsonl round trip, plotting.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/eval/report.h"

namespace rarlhf {
namespace {

// Removes this process's temp folder after the last test.
struct RemoveTempDir : ::testing::Environment {
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(
        std::filesystem::temp_directory_path() / ("rarlhf_report_test_" + std::to_string(::getpid())), ec);
  }
};
[[maybe_unused]] ::testing::Environment* const kRemoveTempDir = ::testing::AddGlobalTestEnvironment(new RemoveTempDir);

namespace fs = std::filesystem;

std::vector<GenerationRecord> hand_records() {
  return {
      {"p1", "good good", "neg", -3.0, 1.0},
      {"p1", "bad film", "neg", -3.0, -1.0},
      {"p2", "fine", "pos", 0.5, 2.0},
      {"p3", "meh ok", "neg", -2.6, 0.0},
  };
}

fs::path temp_dir(const std::string& name) {
  fs::path p = fs::temp_directory_path() / ("rarlhf_report_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(p);
  fs::create_directories(p);
  return p;
}

TEST(Report, MetricsHandWorked) {
  EvalConfig cfg;
  cfg.tail_threshold = -2.5;
  cfg.cvar_alphas = {0.25, 0.5};
  EvalMetrics m = compute_eval_metrics(hand_records(), cfg);
  EXPECT_EQ(m.generations, 4);
  EXPECT_EQ(m.prompts, 3);
  EXPECT_DOUBLE_EQ(m.reward.mean, 0.5);
  EXPECT_EQ(m.tail.indices, (std::vector<size_t>{0, 1, 3}));  // prompt score <= -2.5
  EXPECT_EQ(m.tail_reward.n, 3);
  EXPECT_DOUBLE_EQ(m.tail_reward.mean, 0.0);
  ASSERT_EQ(m.cvar.size(), 2u);
  EXPECT_DOUBLE_EQ(m.cvar[0].second, -1.0);  // sorted -1 0 1 2: worst 1 of 4
  EXPECT_DOUBLE_EQ(m.cvar[1].second, -0.5);  // worst 2 of 4
  // p1 pools "good good" + "bad film": 4 words, 3 unigrams, 2 bigrams; p2 1/1; p3 2/2, 1/2.
  EXPECT_DOUBLE_EQ(m.dist.dist1, (0.75 + 1.0 + 1.0) / 3);
  EXPECT_DOUBLE_EQ(m.dist.dist2, (0.5 + 0.0 + 0.5) / 3);
  EXPECT_DOUBLE_EQ(m.dist.dist3, 0.0);
  ASSERT_EQ(m.quantile_curve.size(), 100u);
  EXPECT_DOUBLE_EQ(m.quantile_curve[0], 1.0);    // worst 1 prompt: first of the two -3.0 ties
  EXPECT_DOUBLE_EQ(m.quantile_curve[49], 0.0);   // worst 2: (1 + -1) / 2
  EXPECT_DOUBLE_EQ(m.quantile_curve[99], 0.5);
  EXPECT_FALSE(m.has_perplexity);

  cfg.tail_quantile = 0.5;
  std::vector<TextNll> nll = {{2.0, 2}};
  m = compute_eval_metrics(hand_records(), cfg, &nll);
  // The quantile is over the 3 prompts (p1 has two generations): the worst ceil(1.5) = 2 are p1
  // (-3.0) and p3 (-2.6), with all their generations.
  EXPECT_EQ(m.tail.indices, (std::vector<size_t>{0, 1, 3}));
  EXPECT_DOUBLE_EQ(m.tail.threshold, -2.6);
  ASSERT_TRUE(m.has_perplexity);
  EXPECT_DOUBLE_EQ(m.perplexity.corpus, std::exp(1.0));

  auto bad = hand_records();
  bad[2].reward = NAN;
  EXPECT_THROW(compute_eval_metrics(bad, cfg), IoError);
  EXPECT_THROW(compute_eval_metrics({}, cfg), std::invalid_argument);
}

// eval.samples_per_prompt = 2 on 3 prompts: a quantile tail of 0.5 is ceil(1.5) = 2 prompts, i.e.
// 4 generations (a quantile over the 6 generations would take 3 and split a prompt's pair).
TEST(Report, QuantileTailKeepsEachPromptsGenerationsTogether) {
  std::vector<GenerationRecord> r = {
      {"a", "x", "neg", -1.0, 1.0}, {"a", "y", "neg", -1.0, 3.0}, {"b", "x", "pos", 2.0, 5.0},
      {"b", "y", "pos", 2.0, 7.0},  {"c", "x", "neg", 0.0, -2.0}, {"c", "y", "neg", 0.0, -4.0},
  };
  EvalConfig cfg;
  cfg.tail_quantile = 0.5;
  const EvalMetrics m = compute_eval_metrics(r, cfg);
  EXPECT_EQ(m.prompts, 3);
  EXPECT_EQ(m.tail.indices, (std::vector<size_t>{0, 1, 4, 5}));  // a (-1.0) and c (0.0)
  EXPECT_DOUBLE_EQ(m.tail.threshold, 0.0);
  EXPECT_DOUBLE_EQ(m.tail_reward.mean, (1.0 + 3.0 - 2.0 - 4.0) / 4);
}

TEST(Report, WriteReadRoundTripAndEvalJson) {
  EvalConfig cfg;
  cfg.cvar_alphas = {0.25};
  auto records = hand_records();
  records.push_back({"cut \xE2\x82", "x", "", -1.0, 0.25});  // a prompt cut inside a character
  EvalMetrics m = compute_eval_metrics(records, cfg);
  fs::path dir = temp_dir("run");
  write_eval_run(dir.string(), "RA-RLHF seed 1", records, m, nlohmann::json{{"seed", 1}});
  auto back = read_generations((dir / "generations.jsonl").string());
  ASSERT_EQ(back.size(), records.size());
  for (size_t i = 0; i + 1 < records.size(); ++i) {
    EXPECT_EQ(back[i].prompt, records[i].prompt);
    EXPECT_EQ(back[i].response, records[i].response);
    EXPECT_EQ(back[i].label, records[i].label);
    EXPECT_EQ(back[i].prompt_score, records[i].prompt_score);
    EXPECT_EQ(back[i].reward, records[i].reward);
  }
  EXPECT_EQ(back.back().prompt, "cut \xEF\xBF\xBD");  // invalid bytes -> U+FFFD
  auto doc = nlohmann::json::parse(read_file((dir / "eval.json").string()));
  EXPECT_EQ(doc["name"], "RA-RLHF seed 1");
  EXPECT_EQ(doc["seed"], 1);
  EXPECT_EQ(doc["generations"], 5);
  EXPECT_DOUBLE_EQ(doc["reward"]["mean"].get<double>(), 2.25 / 5);
  EXPECT_EQ(doc["tail"]["count"], 3);
  EXPECT_DOUBLE_EQ(doc["tail"]["threshold"].get<double>(), -2.5);
  EXPECT_TRUE(doc["tail"]["quantile"].is_null());
  EXPECT_DOUBLE_EQ(doc["cvar"]["0.25"].get<double>(), cvar({1, -1, 2, 0, 0.25}, 0.25));
  EXPECT_TRUE(doc["perplexity"].is_null());
  EXPECT_EQ(doc["quantile_curve"].size(), 100u);

  std::ofstream(dir / "broken.jsonl") << "{\"prompt\":\"a\",\"response\":\"b\",\"prompt_score\":1,\"reward\":2}\n"
                                      << "{\"prompt\":\"a\",\"response\":\"b\",\"reward\":2}\n";
  try {
    read_generations((dir / "broken.jsonl").string());
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("broken.jsonl:2: 'prompt_score'"), std::string::npos) << e.what();
  }
}

TEST(Report, PlotEvalRunsWritesPngsOrDeclines) {
  EvalConfig cfg;
  fs::path a = temp_dir("a"), b = temp_dir("b"), out = temp_dir("plots");
  auto records = hand_records();
  write_eval_run(a.string(), "SFT", records, compute_eval_metrics(records, cfg), nullptr);
  for (auto& r : records) r.reward += 1.0;
  write_eval_run(b.string(), "RLHF", records, compute_eval_metrics(records, cfg), nullptr);

  ::setenv("RARLHF_PLOT_SCRIPT", "/nonexistent/plot_eval.py", 1);
  EXPECT_FALSE(plot_eval_runs({a.string()}, out.string()));
  ::unsetenv("RARLHF_PLOT_SCRIPT");
  if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "no matplotlib";
  }
  // Found next to the test binary (build-*/../scripts/plot_eval.py).
  ASSERT_TRUE(plot_eval_runs({a.string(), b.string()}, out.string(), -2.5));
  EXPECT_TRUE(file_exists((out / "reward_hist.png").string()));
  EXPECT_TRUE(file_exists((out / "quantile_plot.png").string()));
  std::string csv = read_file((out / "quantile_curve.csv").string());
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "q_percent,\"SFT\",\"RLHF\"");
  fs::remove_all(a.parent_path());
}

}  // namespace
}  // namespace rarlhf
