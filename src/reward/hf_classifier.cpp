// ClassifierReward (include/rarlhf/reward/hf_classifier.h): a BERT, DistilBERT or RoBERTa sequence
// classifier's logit as the reward, texts encoded the way Hugging Face tokenizers encode them for
// these models (specials, truncation, right padding).
#include "rarlhf/reward/hf_classifier.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "rarlhf/common/error.h"
#include "rarlhf/common/log.h"
#include "rarlhf/text/bpe_tokenizer.h"
#include "rarlhf/text/wordpiece.h"
#include "reward_internal.h"

namespace rarlhf {

using reward_detail::num;

ClassifierReward::ClassifierReward(const RewardConfig& cfg, const at::Device& device) : cfg_(cfg) {
  model_ = SequenceClassifier::load(cfg.path, device);
  const ClassifierConfig& mc = model_.config();
  if (cfg.label_index < 0 || cfg.label_index >= mc.num_labels)
    throw ConfigError("reward.label_index: " + std::to_string(cfg.label_index) + " is outside [0, " +
                      std::to_string(mc.num_labels) + ") for " + cfg.path + " (" + std::to_string(mc.num_labels) +
                      " labels)");
  if (mc.arch == ClassifierArch::kRoberta) {
    bpe_ = std::make_unique<BpeTokenizer>(BpeTokenizer::from_dir(cfg.path));
    bos_ = bpe_->token_to_id("<s>");
    eos_ = bpe_->token_to_id("</s>");
    if (bos_ < 0 || eos_ < 0)
      throw IoError(cfg.path + ": the RoBERTa vocab has no <s> or </s> token; is this a RoBERTa tokenizer?");
    pad_ = mc.pad_token_id;  // positions are computed from it, so it must be the config's id
    int64_t vocab_pad = bpe_->token_to_id("<pad>");
    if (vocab_pad >= 0 && vocab_pad != pad_)
      RARLHF_LOG_WARN("{}: config.json pad_token_id {} differs from the vocab's <pad> {}; using {}", cfg.path, pad_,
                      vocab_pad, pad_);
  } else {
    wordpiece_ = std::make_unique<WordPieceTokenizer>(WordPieceTokenizer::from_dir(cfg.path));
    pad_ = wordpiece_->pad_id();
  }
  max_tokens_ = std::min<int64_t>(cfg.max_length, mc.max_tokens());
}

ClassifierReward::~ClassifierReward() = default;

std::vector<int64_t> ClassifierReward::encode(const std::string& text) const {
  if (wordpiece_) return wordpiece_->encode(text, max_tokens_);
  std::vector<int64_t> body = bpe_->encode(text);
  std::vector<int64_t> ids;
  ids.reserve(std::min<size_t>(body.size(), max_tokens_) + 2);
  ids.push_back(bos_);
  for (size_t i = 0; i < body.size() && static_cast<int64_t>(ids.size()) < max_tokens_ - 1; ++i) ids.push_back(body[i]);
  ids.push_back(eos_);
  return ids;
}

at::Tensor ClassifierReward::logits(const std::vector<std::string>& texts) const {
  const int64_t n = static_cast<int64_t>(texts.size());
  at::Tensor out = at::empty({n, model_.config().num_labels}, at::kFloat);
  std::vector<std::vector<int64_t>> enc(n);
  for (int64_t i = 0; i < n; ++i) enc[i] = encode(texts[i]);
  // Batches of similar length waste less on padding; results do not depend on the grouping.
  std::vector<int64_t> order(n);
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return enc[a].size() < enc[b].size(); });
  for (int64_t start = 0; start < n; start += cfg_.batch_size) {
    const int64_t end = std::min(n, start + cfg_.batch_size);
    int64_t width = 1;
    for (int64_t i = start; i < end; ++i) width = std::max<int64_t>(width, enc[order[i]].size());
    // Right padding, as Hugging Face tokenizers pad these models.
    at::Tensor ids = at::full({end - start, width}, pad_, at::kLong);
    at::Tensor mask = at::zeros({end - start, width}, at::kLong);
    auto ids_a = ids.accessor<int64_t, 2>();
    auto mask_a = mask.accessor<int64_t, 2>();
    for (int64_t r = 0; r < end - start; ++r) {
      const auto& e = enc[order[start + r]];
      for (size_t t = 0; t < e.size(); ++t) {
        ids_a[r][t] = e[t];
        mask_a[r][t] = 1;
      }
    }
    at::Tensor l = model_.forward(ids, mask).to(at::kCPU);  // [rows, num_labels]
    for (int64_t r = 0; r < end - start; ++r) out[order[start + r]].copy_(l[r]);
  }
  return out;
}

std::vector<double> ClassifierReward::score(const std::vector<std::string>& texts) {
  at::Tensor l = logits(texts).select(1, cfg_.label_index).to(at::kDouble).contiguous();
  std::vector<double> out(l.data_ptr<double>(), l.data_ptr<double>() + l.numel());
  for (double& v : out) v *= cfg_.sign * cfg_.scale;
  return out;
}

std::string ClassifierReward::describe() const {
  static const char* names[] = {"bert", "distilbert", "roberta"};
  return "hf_classifier(" + cfg_.path + ", " + names[static_cast<int>(model_.config().arch)] + ", label " +
         std::to_string(cfg_.label_index) + ", sign " + num(cfg_.sign) + ", scale " + num(cfg_.scale) +
         ", max_tokens " + std::to_string(max_tokens_) + ", device " + model_.device().str() + ")";
}

}  // namespace rarlhf
