// See fake_rewards.h.
#include "support/fake_rewards.h"

#include <cmath>

namespace rarlhf::testing {

WordReward::WordReward(std::vector<std::pair<std::string, double>> values, std::string name, double nan_after)
    : values_(std::move(values)), name_(std::move(name)), nan_after_(nan_after) {}

std::vector<double> WordReward::score(const std::vector<std::string>& texts) {
  std::vector<double> out;
  for (const auto& t : texts) {
    double s = 0;
    for (const auto& [w, v] : values_) {
      for (size_t p = t.find(w); p != std::string::npos; p = t.find(w, p + 1)) s += v;
    }
    out.push_back(s);
  }
  if (nan_after_ >= 0 && calls_++ >= nan_after_ && !out.empty()) out[0] = std::nan("");
  return out;
}

std::vector<double> RecordingReward::score(const std::vector<std::string>& texts) {
  seen.insert(seen.end(), texts.begin(), texts.end());
  return inner_->score(texts);
}

}  // namespace rarlhf::testing
