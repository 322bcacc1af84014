// Reward models: text in, one scalar per text out. The trainer and eval code only see this
// interface; make_reward() builds VADER (rule-based, CPU) or a Hugging Face sequence classifier
// (DistilBERT / BERT / RoBERTa, batched on CPU or GPU) from the `reward` config section.
// reward = sign * scale * raw, raw = the chosen logit or the VADER compound.
#pragma once
#include <c10/core/Device.h>

#include <memory>
#include <string>
#include <vector>

#include "rarlhf/config/config.h"

namespace rarlhf {

class RewardModel {
 public:
  virtual ~RewardModel() = default;
  // One score per text (the caller has already joined prompt+response when reward.input says so).
  virtual std::vector<double> score(const std::vector<std::string>& texts) = 0;
  virtual std::string describe() const = 0;  // e.g. "vader(/path/vader_lexicon.txt)"
};

// type "vader": needs lexicon; type "hf_classifier": needs path (label_index, batch_size,
// max_length checked against the model). Bad values -> ConfigError naming reward.<field>.
std::unique_ptr<RewardModel> make_reward(const RewardConfig& cfg, const at::Device& device);

}  // namespace rarlhf
