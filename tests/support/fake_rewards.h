// Test support: reward models with known answers, for the trainer, evaluator and distributed tests.
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "rarlhf/reward/reward.h"

namespace rarlhf::testing {

// score(text) = sum over `values` of value * (occurrences of the word in text): deterministic and
// text-only, so every rank and every rerun agrees. With nan_after >= 0, from call number nan_after
// (0-based) on, the first score of each batch is NaN (a reward model gone bad).
class WordReward : public RewardModel {
 public:
  WordReward(std::vector<std::pair<std::string, double>> values, std::string name, double nan_after = -1);
  std::vector<double> score(const std::vector<std::string>& texts) override;
  std::string describe() const override { return name_; }

 private:
  std::vector<std::pair<std::string, double>> values_;
  std::string name_;
  double nan_after_;
  int calls_ = 0;
};

// Another reward model that also records every text it is asked to score, in order.
class RecordingReward : public RewardModel {
 public:
  explicit RecordingReward(std::unique_ptr<RewardModel> inner) : inner_(std::move(inner)) {}
  std::vector<double> score(const std::vector<std::string>& texts) override;
  std::string describe() const override { return inner_->describe(); }
  std::vector<std::string> seen;

 private:
  std::unique_ptr<RewardModel> inner_;
};

}  // namespace rarlhf::testing
