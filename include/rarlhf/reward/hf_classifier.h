// A Hugging Face sequence classifier as a reward model: the directory's tokenizer (WordPiece
// vocab.txt for BERT/DistilBERT, byte-level BPE for RoBERTa) + SequenceClassifier. Texts are
// encoded with the model's specials ([CLS] .. [SEP] / <s> .. </s>), truncated to
// min(reward.max_length, the model's position limit), right-padded per batch of batch_size.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>
#include <vector>

#include "rarlhf/model/classifier.h"
#include "rarlhf/reward/reward.h"

namespace rarlhf {

class WordPieceTokenizer;
class BpeTokenizer;

class ClassifierReward : public RewardModel {
 public:
  // Loads cfg.path (config.json, model.safetensors, tokenizer files) onto `device`.
  ClassifierReward(const RewardConfig& cfg, const at::Device& device);
  ~ClassifierReward() override;

  std::vector<double> score(const std::vector<std::string>& texts) override;
  std::string describe() const override;

  // Token ids with specials, truncated to max_tokens().
  std::vector<int64_t> encode(const std::string& text) const;
  // All logits [N, num_labels] float32 on CPU, computed in batches of cfg.batch_size.
  at::Tensor logits(const std::vector<std::string>& texts) const;
  int64_t max_tokens() const { return max_tokens_; }
  const SequenceClassifier& model() const { return model_; }

 private:
  RewardConfig cfg_;
  SequenceClassifier model_;
  std::unique_ptr<WordPieceTokenizer> wordpiece_;
  std::unique_ptr<BpeTokenizer> bpe_;
  int64_t bos_ = -1, eos_ = -1, pad_ = 0;  // RoBERTa's <s>, </s>, <pad> (WordPiece keeps its own)
  int64_t max_tokens_ = 0;
};

}  // namespace rarlhf
