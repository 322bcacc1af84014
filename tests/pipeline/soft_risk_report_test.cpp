// `rarlhf schedule` pieces: the schedule JSON (both rules, where alpha is reached), the table, and
// the PNG written through scripts/plot_schedule.py (skipped when /usr/bin/python3 lacks matplotlib).
#include "rarlhf/pipeline/soft_risk_report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"

namespace {

rarlhf::RiskConfig imdb_risk() {
  rarlhf::RiskConfig r;
  r.enabled = true;
  r.alpha = 0.4;
  r.n = 30;
  r.rho = 0.95;
  return r;
}

TEST(SoftRiskReport, JsonHoldsBothRules) {
  const auto j = rarlhf::soft_risk_schedule_json(128, 194, imdb_risk());
  ASSERT_EQ(j["keep_count"].size(), 194u);
  EXPECT_EQ(j["keep_count"][50].get<int64_t>(), 119);
  EXPECT_EQ(j["keep_count"][193].get<int64_t>(), 52);
  EXPECT_DOUBLE_EQ(j["alpha_now"][193].get<double>(), 52.0 / 128.0);
  EXPECT_EQ(j["alpha_reached_at"].get<int64_t>(), 184);  // k(184) = 52 = ceil(0.4 * 128), k(183) = 53
  EXPECT_EQ(j["other_schedule"].get<std::string>(), "legacy");
  EXPECT_EQ(j["other_keep_count"][184].get<int64_t>(), 64);  // legacy has not reached alpha at rho*M
  // Disabled risk still shows the schedule it would use, flagged in the table.
  auto off = imdb_risk();
  off.enabled = false;
  const auto j2 = rarlhf::soft_risk_schedule_json(128, 194, off);
  EXPECT_EQ(j2["keep_count"][193].get<int64_t>(), 52);
  const std::string table = rarlhf::soft_risk_schedule_table(j2);
  EXPECT_NE(table.find("risk.enabled is false"), std::string::npos);
  EXPECT_NE(table.find("\n    50         119     0.9297\n"), std::string::npos) << table.substr(0, 400);
}

TEST(SoftRiskReport, PlotWritesPng) {
  if (std::system("/usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "/usr/bin/python3 has no matplotlib";
  setenv("RARLHF_SCRIPTS_DIR", (std::string(RARLHF_SOURCE_DIR) + "/scripts").c_str(), 1);
  const std::string dir = std::filesystem::temp_directory_path() / ("rarlhf_sched_" + std::to_string(getpid()));
  const std::string png = dir + "/schedule.png";
  rarlhf::plot_soft_risk_schedule(rarlhf::soft_risk_schedule_json(128, 194, imdb_risk()), png);
  std::ifstream in(png, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  EXPECT_EQ(std::string(magic + 1, 3), "PNG");
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()), 1)
      << "temp files left next to the PNG";
  std::filesystem::remove_all(dir);
  // A wrong scripts folder is a clear error, not a crash.
  setenv("RARLHF_SCRIPTS_DIR", "/nonexistent", 1);
  EXPECT_THROW(rarlhf::plot_soft_risk_schedule(rarlhf::soft_risk_schedule_json(8, 10, imdb_risk()), png),
               rarlhf::IoError);
  unsetenv("RARLHF_SCRIPTS_DIR");
}

}  // namespace
