// Soft-risk schedule: the paper's worked examples (reference/ra-rlhf.md §1.1), the legacy rule,
// float-ceiling pitfalls and the invariants over a grid of settings.
#include "rarlhf/rl/soft_risk.h"

#include <gtest/gtest.h>

#include <cmath>

#include "rarlhf/common/error.h"

namespace {

using rarlhf::RiskConfig;
using rarlhf::soft_risk_keep_count;

RiskConfig risk(double alpha, int64_t n = 30, double rho = 0.95, const char* schedule = "paper") {
  RiskConfig r;
  r.enabled = true;
  r.alpha = alpha;
  r.n = n;
  r.rho = rho;
  r.schedule = schedule;
  return r;
}

TEST(SoftRisk, ImdbWorkedExample) {
  // B=128, alpha=.4, n=30, rho=.95, M=194 -> ceil(rho M) = 185, K = 0.6 / 155.
  const RiskConfig r = risk(0.4);
  for (int64_t m = 0; m <= 30; ++m) EXPECT_EQ(soft_risk_keep_count(m, 128, 194, r), 128) << m;
  EXPECT_EQ(soft_risk_keep_count(50, 128, 194, r), 119);
  EXPECT_EQ(soft_risk_keep_count(100, 128, 194, r), 94);
  EXPECT_EQ(soft_risk_keep_count(150, 128, 194, r), 69);
  for (int64_t m = 184; m < 194; ++m) EXPECT_EQ(soft_risk_keep_count(m, 128, 194, r), 52) << m;
  // Hand-computed: m=31 -> ceil(128 * (1 - 0.6/155)) = ceil(127.50) = 128; m=32 -> ceil(127.009) = 128;
  // m=33 -> ceil(126.51) = 127; m=183 -> ceil(128 * (1 - 0.6*153/155)) = ceil(52.19) = 53.
  EXPECT_EQ(soft_risk_keep_count(31, 128, 194, r), 128);
  EXPECT_EQ(soft_risk_keep_count(33, 128, 194, r), 127);
  EXPECT_EQ(soft_risk_keep_count(183, 128, 194, r), 53);
}

TEST(SoftRisk, JigsawWorkedExample) {
  // alpha=.2, M=288 -> ceil(rho M) = 274.
  const RiskConfig r = risk(0.2);
  EXPECT_EQ(soft_risk_keep_count(100, 128, 288, r), 99);
  EXPECT_EQ(soft_risk_keep_count(200, 128, 288, r), 57);
  EXPECT_EQ(soft_risk_keep_count(287, 128, 288, r), 26);
  EXPECT_EQ(soft_risk_keep_count(274, 128, 288, r), 26);
  EXPECT_EQ(soft_risk_keep_count(273, 128, 288, r), 27);  // ceil(128 * (1 - 0.8*243/244)) = ceil(26.02)
}

TEST(SoftRisk, FloatCeilPitfalls) {
  // ceil(0.4 * 128) = ceil(51.2) = 52 (and never 53).
  EXPECT_EQ(soft_risk_keep_count(193, 128, 194, risk(0.4)), 52);
  // 0.07 * 100 evaluates to 7.000000000000001: the floor is 7, a naive ceil gives 8.
  EXPECT_GT(0.07 * 100.0, 7.0);
  EXPECT_EQ(rarlhf::ceil_tolerant(0.07 * 100.0), 7);
  EXPECT_EQ(soft_risk_keep_count(99, 100, 100, risk(0.07, 0)), 7);
  // Inside the drop: alpha=.05, B=10, n=0, M=20 -> ceil(rho M) = 19, m=8:
  // 10 * (1 - 0.95 * 8/19) = 6 exactly, but evaluates to 6.000000000000001 -> must be 6, not 7.
  EXPECT_GT(10.0 * (1.0 - 0.95 * 8.0 / 19.0), 6.0);
  EXPECT_EQ(soft_risk_keep_count(8, 10, 20, risk(0.05, 0)), 6);
  // m=14: 10 * (1 - 0.95 * 14/19) = 3 (evaluates to 3.0000000000000004).
  EXPECT_EQ(soft_risk_keep_count(14, 10, 20, risk(0.05, 0)), 3);
  // ceil(rho * M) for rho * M integral: 0.95 * 20 = 19 -> the floor is reached exactly at m = 19.
  EXPECT_EQ(soft_risk_keep_count(19, 100, 20, risk(0.5, 0)), 50);
  EXPECT_EQ(soft_risk_keep_count(18, 100, 20, risk(0.5, 0)), 53);  // ceil(100 * (1 - 0.5 * 18/19)) = ceil(52.63)
  // Exact integers stay themselves; genuine fractions still round up.
  EXPECT_EQ(rarlhf::ceil_tolerant(3.0), 3);
  EXPECT_EQ(rarlhf::ceil_tolerant(3.001), 4);
  EXPECT_EQ(rarlhf::ceil_tolerant(-2.5), -2);
}

TEST(SoftRisk, LegacyRule) {
  // m <= n -> B, else ceil(B * max(alpha, 1 - (1-alpha)(m-n)/(rho M))): with n = 30 it has not
  // reached alpha at rho*M = 184.3 (m=184: 1 - 0.6*154/184.3 = 0.49864 -> ceil(63.826) = 64).
  const RiskConfig r = risk(0.4, 30, 0.95, "legacy");
  EXPECT_EQ(soft_risk_keep_count(30, 128, 194, r), 128);
  EXPECT_EQ(soft_risk_keep_count(184, 128, 194, r), 64);
  EXPECT_EQ(soft_risk_keep_count(100, 128, 194, r), 99);  // 128 * (1 - 0.6*70/184.3) = 98.83 -> 99
}

TEST(SoftRisk, InvariantsOverGrid) {
  for (const char* schedule : {"paper", "legacy"})
    for (double alpha : {0.05, 0.2, 0.3, 0.4, 0.5, 0.9, 1.0})
      for (int64_t n : {0, 1, 30, 300})
        for (double rho : {0.1, 0.5, 0.95, 1.0})
          for (int64_t B : {1, 7, 8, 128})
            for (int64_t M : {1, 10, 194, 288}) {
              const RiskConfig r = risk(alpha, n, rho, schedule);
              const int64_t a100 = std::lround(alpha * 100);  // exact: ceil(a100 * B / 100) in integers
              const int64_t k_min = (a100 * B + 99) / 100;
              int64_t prev = B;
              for (int64_t m = 0; m < M; ++m) {
                const int64_t k = soft_risk_keep_count(m, B, M, r);
                ASSERT_LE(k, prev) << schedule << " a=" << alpha << " n=" << n << " rho=" << rho << " m=" << m;
                ASSERT_GE(k, k_min);
                ASSERT_LE(k, B);
                if (m <= n) ASSERT_EQ(k, B);
                if (alpha == 1.0) ASSERT_EQ(k, B);
                if (std::string(schedule) == "paper" && m > n &&
                    m >= static_cast<int64_t>(std::ceil(rho * M - 1e-9)))
                  ASSERT_EQ(k, k_min);
                prev = k;
              }
            }
}

TEST(SoftRisk, DisabledKeepsFullBatch) {
  RiskConfig r = risk(0.2);
  r.enabled = false;
  EXPECT_EQ(soft_risk_keep_count(287, 128, 288, r), 128);
  r.enabled = true;
  const auto ks = rarlhf::soft_risk_schedule(128, 288, r);
  ASSERT_EQ(ks.size(), 288u);
  EXPECT_EQ(ks.front(), 128);
  EXPECT_EQ(ks[100], 99);
  EXPECT_EQ(ks.back(), 26);
}

TEST(SoftRisk, RejectsBadSettings) {
  EXPECT_THROW(soft_risk_keep_count(0, 0, 10, risk(0.4)), rarlhf::ConfigError);
  EXPECT_THROW(soft_risk_keep_count(0, 8, 0, risk(0.4)), rarlhf::ConfigError);
  EXPECT_THROW(soft_risk_keep_count(-1, 8, 10, risk(0.4)), rarlhf::ConfigError);
  EXPECT_THROW(soft_risk_keep_count(0, 8, 10, risk(0.0)), rarlhf::ConfigError);
  EXPECT_THROW(soft_risk_keep_count(0, 8, 10, risk(1.5)), rarlhf::ConfigError);
  EXPECT_THROW(soft_risk_keep_count(0, 8, 10, risk(0.4, -1)), rarlhf::ConfigError);
  EXPECT_THROW(soft_risk_keep_count(0, 8, 10, risk(0.4, 3, 0.0)), rarlhf::ConfigError);
  EXPECT_THROW(soft_risk_keep_count(0, 8, 10, risk(0.4, 3, 0.9, "linear")), rarlhf::ConfigError);
  try {
    soft_risk_keep_count(0, 8, 10, risk(1.5));
  } catch (const rarlhf::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("risk.alpha"), std::string::npos);
  }
}

}  // namespace
