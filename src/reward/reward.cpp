// The reward factory and two of the reward models: VADER compound and a decoder-family (Llama,
// GPT-2, GPT-NeoX, ...) classifier logit, each mapped through reward = sign * scale * raw
// (reward.h). The BERT-family classifier reward is in hf_classifier.cpp.
#include "rarlhf/reward/reward.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "rarlhf/common/error.h"
#include "rarlhf/model/decoder_classifier.h"
#include "rarlhf/reward/hf_classifier.h"
#include "rarlhf/reward/vader.h"
#include "reward_internal.h"
#include "rarlhf/text/tokenizer.h"

namespace rarlhf {

namespace reward_detail {
std::string num(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}
}  // namespace reward_detail

namespace {

using reward_detail::num;

class VaderReward : public RewardModel {
 public:
  explicit VaderReward(const RewardConfig& cfg) : cfg_(cfg), vader_(Vader::from_file(cfg.lexicon)) {}
  std::vector<double> score(const std::vector<std::string>& texts) override {
    std::vector<double> out(texts.size());
    for (size_t i = 0; i < texts.size(); ++i) out[i] = cfg_.sign * cfg_.scale * vader_.compound(texts[i]);
    return out;
  }
  std::string describe() const override {
    return "vader(" + cfg_.lexicon + ", sign " + num(cfg_.sign) + ", scale " + num(cfg_.scale) + ")";
  }

 private:
  RewardConfig cfg_;
  Vader vader_;
};

// *ForSequenceClassification of a causal family: the directory's own tokenizer with its specials (as
// transformers' text-classification pipeline encodes), truncated, right-padded with the model's pad id.
class DecoderClassifierReward : public RewardModel {
 public:
  DecoderClassifierReward(const RewardConfig& cfg, const at::Device& device)
      : cfg_(cfg), model_(DecoderClassifier::load(cfg.path, device)), tok_(load_tokenizer(cfg.path)) {
    if (cfg.label_index < 0 || cfg.label_index >= model_.num_labels())
      throw ConfigError("reward.label_index: " + std::to_string(cfg.label_index) + " is outside [0, " +
                        std::to_string(model_.num_labels()) + ") for " + cfg.path);
    max_tokens_ = std::min<int64_t>(cfg.max_length, model_.max_tokens());
  }
  std::vector<double> score(const std::vector<std::string>& texts) override {
    const int64_t n = static_cast<int64_t>(texts.size());
    std::vector<double> out(n);
    for (int64_t start = 0; start < n; start += cfg_.batch_size) {
      const int64_t end = std::min(n, start + cfg_.batch_size);
      std::vector<std::vector<int64_t>> enc;
      int64_t width = 1;
      for (int64_t i = start; i < end; ++i) {
        auto ids = tok_->encode(texts[i], /*add_special_tokens=*/true);
        if (static_cast<int64_t>(ids.size()) > max_tokens_) ids.resize(max_tokens_);
        width = std::max<int64_t>(width, ids.size());
        enc.push_back(std::move(ids));
      }
      at::Tensor ids = at::full({end - start, width}, model_.pad_id(), at::kLong);
      at::Tensor mask = at::zeros({end - start, width}, at::kLong);
      for (int64_t r = 0; r < end - start; ++r) {
        const auto& e = enc[r];
        if (e.empty()) continue;
        std::memcpy(ids[r].data_ptr<int64_t>(), e.data(), e.size() * sizeof(int64_t));
        mask[r].narrow(0, 0, e.size()).fill_(1);
      }
      at::Tensor l = model_.forward(ids, mask).select(1, cfg_.label_index).to(at::kCPU, at::kDouble).contiguous();
      for (int64_t r = 0; r < end - start; ++r) out[start + r] = cfg_.sign * cfg_.scale * l.data_ptr<double>()[r];
    }
    return out;
  }
  std::string describe() const override {
    return "hf_classifier(" + cfg_.path + ", " + model_.config().model_type + " decoder, label " +
           std::to_string(cfg_.label_index) + ", sign " + num(cfg_.sign) + ", scale " + num(cfg_.scale) +
           ", max_tokens " + std::to_string(max_tokens_) + ", device " + model_.device().str() + ")";
  }

 private:
  RewardConfig cfg_;
  DecoderClassifier model_;
  std::shared_ptr<const Tokenizer> tok_;
  int64_t max_tokens_ = 0;
};

}  // namespace

std::unique_ptr<RewardModel> make_reward(const RewardConfig& cfg, const at::Device& device) {
  if (!std::isfinite(cfg.sign) || !std::isfinite(cfg.scale))
    throw ConfigError("reward.sign / reward.scale: must be finite numbers");
  if (cfg.type == choice::RewardType::kVader) {
    if (cfg.lexicon.empty())
      throw ConfigError("reward.lexicon: empty; set it to a vader_lexicon.txt (scripts/fetch_assets.sh puts one at "
                        "assets/vader/vader_lexicon.txt)");
    return std::make_unique<VaderReward>(cfg);
  }
  if (cfg.type == choice::RewardType::kHfClassifier) {
    if (cfg.path.empty())
      throw ConfigError("reward.path: empty; set it to a Hugging Face classifier directory (config.json, "
                        "model.safetensors, tokenizer files)");
    if (cfg.batch_size < 1) throw ConfigError("reward.batch_size: must be >= 1");
    if (cfg.max_length < 2) throw ConfigError("reward.max_length: must be >= 2 (room for the special tokens)");
    if (DecoderClassifier::is_decoder_dir(cfg.path)) return std::make_unique<DecoderClassifierReward>(cfg, device);
    return std::make_unique<ClassifierReward>(cfg, device);
  }
  throw ConfigError("reward.type: \"" + cfg.type + "\" is unknown; use " + choice::RewardType::kVader + " or " +
                    choice::RewardType::kHfClassifier);
}

}  // namespace rarlhf
