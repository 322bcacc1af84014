// BERT-family sequence classifiers for reward models, loaded from Hugging Face directories
// (config.json + model.safetensors): DistilBertForSequenceClassification (Sanh et al. 2019),
// BertForSequenceClassification (Devlin et al. 2019), RobertaForSequenceClassification (Liu et al.
// 2019). One post-LN encoder with the three families' embeddings and heads; inference only (no
// dropout, no autograd). Frozen, so plain tensors rather than torch::nn modules.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <memory>
#include <string>

#include "rarlhf/io/safetensors.h"

namespace rarlhf {

enum class ClassifierArch { kBert, kDistilBert, kRoberta };

// The config.json fields that change the computation, normalised across the three families
// (DistilBERT's dim / n_layers / n_heads / hidden_dim / activation map to hidden_size, ...).
struct ClassifierConfig {
  ClassifierArch arch = ClassifierArch::kBert;
  std::string model_type = "bert";
  int64_t vocab_size = 0;
  int64_t hidden_size = 768;
  int64_t num_layers = 12;
  int64_t num_heads = 12;
  int64_t intermediate_size = 3072;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;    // BERT/RoBERTa token-type rows (0 for DistilBERT)
  double layer_norm_eps = 1e-12;  // DistilBERT hard-codes 1e-12
  std::string activation = "gelu";  // gelu (exact erf) | gelu_new | gelu_pytorch_tanh | relu
  int64_t pad_token_id = 0;       // RoBERTa positions count from pad_token_id + 1
  int64_t num_labels = 2;         // from id2label / num_labels; checked against the head weights

  // Longest input in tokens, specials included (RoBERTa: max_position_embeddings - pad - 1).
  int64_t max_tokens() const;
  // Parses + validates; unsupported values are ConfigErrors "<origin>: <key>: ...".
  static ClassifierConfig from_json_text(const std::string& text, const std::string& origin);
  static ClassifierConfig from_file(const std::string& config_json);
};

struct ClassifierWeights;  // defined in classifier.cpp

class SequenceClassifier {
 public:
  // dir/config.json + dir/model.safetensors (or model.safetensors.index.json shards). A directory
  // with only pytorch_model.bin is an IoError with a one-line conversion hint.
  static SequenceClassifier load(const std::string& dir, const at::Device& device);
  // Keys with or without the family prefix ("bert.", "distilbert.", "roberta."); any dtype
  // (computed in float32). Missing keys, wrong shapes and unknown keys are IoErrors naming `source`.
  static SequenceClassifier from_tensors(const ClassifierConfig& cfg, const TensorMap& tensors,
                                         const std::string& source, const at::Device& device);

  // input_ids [B, T] int64, attention_mask [B, T] (1 = token, 0 = padding; right padding, as HF
  // tokenizers pad these models: BERT positions are 0..T-1 whatever the mask), token_type_ids
  // [B, T] (BERT/RoBERTa segment ids; undefined = all 0) -> logits [B, num_labels] float32 on the
  // model's device. T must be <= config().max_tokens().
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask,
                     const at::Tensor& token_type_ids = {}) const;

  const ClassifierConfig& config() const;
  const at::Device& device() const;

 private:
  std::shared_ptr<const ClassifierWeights> w_;
};

}  // namespace rarlhf
