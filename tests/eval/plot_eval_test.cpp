// scripts/plot_eval.py end to end: its quantile_curve.csv (an independent Python implementation)
// must equal eval/metrics quantile_curve on the paper's IMDB prompt scores, and both PNGs must be
// written. Skipped when Debian's /usr/bin/python3 has no matplotlib.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "rarlhf/common/fs.h"
#include "rarlhf/data/csv.h"
#include "rarlhf/data/dataset.h"
#include "rarlhf/eval/metrics.h"

namespace rarlhf {
namespace {

namespace fs = std::filesystem;

int run(const std::string& cmd) {
  int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

bool have_matplotlib() { return run("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") == 0; }

bool is_png(const std::string& path) {
  if (!file_exists(path)) return false;
  std::string head = read_file(path).substr(0, 8);
  return head == std::string("\x89PNG\r\n\x1a\n", 8);
}

TEST(PlotEval, QuantileCsvMatchesLibraryAndPngsAreWritten) {
  if (!have_matplotlib()) GTEST_SKIP() << "/usr/bin/python3 has no matplotlib";
  DataConfig c;
  c.format = "csv";
  c.text_field = "review";
  c.label_field = "";
  c.score_field = "score";
  auto ex = read_texts(c, std::string(RARLHF_SOURCE_DIR) + "/../shared/data/imdb-rarlhf/tails_neg_texts_200char.csv");
  ASSERT_GT(ex.size(), 1000u);

  fs::path root = fs::temp_directory_path() / ("rarlhf_plot_test_" + std::to_string(::getpid()));
  fs::remove_all(root);
  std::vector<std::vector<double>> expected;
  std::vector<std::string> names = {"base \"model\"", "tuned"};
  std::string dirs;
  for (size_t m = 0; m < names.size(); ++m) {
    fs::path dir = root / ("run" + std::to_string(m));
    fs::create_directories(dir);
    std::vector<double> scores, rewards;
    std::ofstream gen(dir / "generations.jsonl");
    for (size_t i = 0; i < ex.size(); ++i) {
      double s = ex[i].given_score;
      double r = std::sin(0.37 * i + m) + (m ? 0.5 : -0.2) * s;
      scores.push_back(s);
      rewards.push_back(r);
      gen << nlohmann::json{{"prompt", ex[i].text.substr(0, 40)}, {"response", "..."}, {"prompt_score", s},
                            {"reward", r}}
                 .dump()
          << "\n";
    }
    std::ofstream(dir / "eval.json") << nlohmann::json{{"name", names[m]}}.dump();
    expected.push_back(quantile_curve(scores, rewards, 100));
    dirs += " " + dir.string();
  }
  std::string script = std::string(RARLHF_SOURCE_DIR) + "/scripts/plot_eval.py";
  std::string out = (root / "plots").string();
  ASSERT_EQ(run("/usr/bin/python3 " + script + dirs + " --out " + out + " --tail-threshold -2.5 >/dev/null"), 0);
  EXPECT_TRUE(is_png(out + "/reward_hist.png"));
  EXPECT_TRUE(is_png(out + "/quantile_plot.png"));

  CsvReader csv(read_file(out + "/quantile_curve.csv"), "quantile_curve.csv");
  std::vector<std::string> row;
  ASSERT_EQ(csv.next(row), CsvReader::Status::kRecord);
  EXPECT_EQ(row, (std::vector<std::string>{"q_percent", names[0], names[1]}));
  for (int q = 1; q <= 100; ++q) {
    ASSERT_EQ(csv.next(row), CsvReader::Status::kRecord);
    ASSERT_EQ(row.size(), 3u);
    EXPECT_EQ(std::stoi(row[0]), q);
    for (size_t m = 0; m < 2; ++m) EXPECT_NEAR(std::stod(row[m + 1]), expected[m][q - 1], 1e-9) << q;
  }
  // A folder without generations.jsonl is a one-line error, exit 1.
  EXPECT_EQ(run("/usr/bin/python3 " + script + " " + root.string() + "/nothing --out " + out + " 2>/dev/null"), 1);
  fs::remove_all(root);
}

// scripts/plot_training.py groups the tasks of a Slurm array (runs/<name>/<array job>_<task>, as
// scripts/slurm writes them) as seeds of one run; its CSV quotes a label with a comma. Mean and
// std by hand: objective/kl 1 and 3 at iteration 0 -> mean 2, sample std sqrt(2).
TEST(PlotTraining, ArrayTasksAreTheSeedsOfOneGroup) {
  if (!have_matplotlib()) GTEST_SKIP() << "/usr/bin/python3 has no matplotlib";
  fs::path root = fs::temp_directory_path() / ("rarlhf_plot_training_test_" + std::to_string(::getpid()));
  fs::remove_all(root);
  const std::vector<std::pair<std::string, double>> runs = {
      {"imdb-rlhf/4001_0", 1.0}, {"imdb-rlhf/4001_1", 3.0}, {"imdb-rlhf/4002_0", 10.0}, {"a,b", 5.0}};
  std::string dirs;
  for (const auto& [name, kl] : runs) {
    fs::create_directories(root / name);
    std::ofstream(root / name / "metrics.jsonl") << nlohmann::json{{"iteration", 0}, {"objective/kl", kl}}.dump() << "\n";
    dirs += " '" + (root / name).string() + "'";
  }
  const std::string script = std::string(RARLHF_SOURCE_DIR) + "/scripts/plot_training.py";
  const std::string csv_path = (root / "curves.csv").string();
  ASSERT_EQ(run("/usr/bin/python3 " + script + dirs + " --out " + (root / "curves.png").string() + " --csv " + csv_path +
                " >/dev/null"),
            0);
  EXPECT_TRUE(is_png((root / "curves.png").string()));
  CsvReader csv(read_file(csv_path), "curves.csv");
  std::vector<std::string> row;
  ASSERT_EQ(csv.next(row), CsvReader::Status::kRecord);
  std::map<std::string, std::vector<std::string>> kl_rows;
  while (csv.next(row) == CsvReader::Status::kRecord)
    if (row.at(0) == "objective/kl") kl_rows[row.at(1)] = row;
  ASSERT_EQ(kl_rows.size(), 3u);
  const auto& two = kl_rows.at("imdb-rlhf/4001");
  EXPECT_DOUBLE_EQ(std::stod(two.at(3)), 2.0);
  EXPECT_NEAR(std::stod(two.at(4)), std::sqrt(2.0), 1e-12);
  EXPECT_EQ(two.at(5), "2");
  EXPECT_EQ(kl_rows.at("imdb-rlhf/4002").at(5), "1");
  EXPECT_DOUBLE_EQ(std::stod(kl_rows.at("a,b").at(3)), 5.0);
  fs::remove_all(root);
}

}  // namespace
}  // namespace rarlhf
