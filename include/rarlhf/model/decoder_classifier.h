// Decoder-only sequence classifiers as reward models: transformers' LlamaForSequenceClassification
// (and Mistral/Qwen2), GPT2ForSequenceClassification, GPTNeoXForSequenceClassification,
// GPTJForSequenceClassification — a causal-LM trunk (causal_lm.h) and a bias-free `score` head read at
// one position per row: the last token whose id is not pad_token_id, the rule transformers applies
// (the attention mask is not consulted; a row of pads reads position 0). Inference only.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <string>

#include "rarlhf/model/causal_lm.h"

namespace rarlhf {

class DecoderClassifier {
 public:
  // dir/config.json (model_type one of the causal families) + model.safetensors (or shards). The
  // label count comes from score.weight; pad_token_id from config.json (or generation_config.json) and
  // is required (transformers refuses batches without it too).
  static DecoderClassifier load(const std::string& dir, const at::Device& device);
  // True when dir/config.json names a decoder family (a BERT-family directory gives false).
  static bool is_decoder_dir(const std::string& dir);

  // input_ids [B, T] int64 right-padded with pad_id(), attention_mask [B, T] -> logits [B, num_labels]
  // float32 on the model's device. T must be <= max_tokens().
  at::Tensor forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) const;

  int64_t num_labels() const { return score_.size(0); }
  int64_t pad_id() const { return pad_id_; }
  int64_t max_tokens() const { return trunk_->config().n_positions; }
  const LmConfig& config() const { return trunk_->config(); }
  at::Device device() const { return trunk_->device(); }

 private:
  CausalLm trunk_{nullptr};
  at::Tensor score_;  // [num_labels, C] float32
  int64_t pad_id_ = -1;
};

}  // namespace rarlhf
