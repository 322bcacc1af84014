// Decoder-only sequence classifiers: see include/rarlhf/model/decoder_classifier.h. The trunk is the
// family's causal LM without its LM head (tied for construction, or the head filled with zeros for
// GPT-J, whose head is always separate); the head weights of a classifier checkpoint are `score.weight`.
#include "rarlhf/model/decoder_classifier.h"

#include <torch/torch.h>

#include <set>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"

namespace rarlhf {

namespace {

const std::set<std::string>& decoder_types() {
  static const std::set<std::string> t = {"gpt2", "gptj", "gpt_neox", "llama", "mistral", "qwen2"};
  return t;
}

}  // namespace

bool DecoderClassifier::is_decoder_dir(const std::string& dir) {
  if (!file_exists(dir + "/config.json")) return false;
  const nlohmann::json j = read_json_file(dir + "/config.json");
  return j.is_object() && j.contains("model_type") && j["model_type"].is_string() &&
         decoder_types().count(j["model_type"].get<std::string>()) > 0;
}

DecoderClassifier DecoderClassifier::load(const std::string& dir, const at::Device& device) {
  const std::string cfg_path = dir + "/config.json";
  nlohmann::json j = read_json_file(dir + "/config.json");
  const std::string type = j.value("model_type", "");
  // No LM head in a classifier checkpoint: build the trunk tied where the family allows it.
  if (type != "gpt2" && type != "gptj") j["tie_word_embeddings"] = true;
  DecoderClassifier c;
  c.trunk_ = make_causal_lm(j, cfg_path);
  std::string source;
  TensorMap tensors = load_hf_weights(
      dir, &source,
      "convert it once with python: AutoModelForSequenceClassification.from_pretrained(dir).save_pretrained(dir)",
      "expected Hugging Face " + type + " sequence-classifier weights");
  auto score = tensors.find("score.weight");
  if (score == tensors.end()) {
    throw IoError(source + ": no 'score.weight'; not a *ForSequenceClassification checkpoint (a causal LM's "
                           "directory is a policy, not a reward model)");
  }
  if (score->second.dim() != 2 || score->second.size(1) != c.trunk_->config().n_embd) {
    throw IoError(source + ": 'score.weight' must be [num_labels, " + std::to_string(c.trunk_->config().n_embd) + "]");
  }
  c.score_ = score->second.to(at::kFloat).contiguous();
  tensors.erase(score);
  if (type == "gptj") {  // the trunk's own head is never read; give the loader what it expects
    const auto& wte = tensors.count("transformer.wte.weight") ? tensors.at("transformer.wte.weight") : at::Tensor();
    if (wte.defined()) {
      tensors.emplace("lm_head.weight", at::zeros_like(wte));
      tensors.emplace("lm_head.bias", at::zeros({wte.size(0)}, wte.options()));
    }
  }
  c.trunk_->load_hf_state(tensors, source);
  c.trunk_->to(device, at::kFloat);
  c.trunk_->eval();
  c.score_ = c.score_.to(device);
  c.pad_id_ = c.trunk_->config().pad_token_id;
  if (c.pad_id_ < 0) {
    throw ConfigError(cfg_path + ": pad_token_id: missing; a decoder reward model needs it to find each text's "
                                 "last token (set it to the tokenizer's pad or eos id)");
  }
  return c;
}

at::Tensor DecoderClassifier::forward(const at::Tensor& input_ids, const at::Tensor& attention_mask) const {
  TORCH_CHECK(input_ids.dim() == 2, "DecoderClassifier: input_ids must be [B, T]");
  torch::NoGradGuard no_grad;
  const at::Device dev = trunk_->device();
  at::Tensor ids = input_ids.to(dev, at::kLong);
  at::Tensor hidden = trunk_->forward_hidden(ids, attention_mask.to(dev));  // [B, T, C]
  // Last position holding a non-pad id: argmax of t * (id != pad) (0 for a row of pads).
  const int64_t T = ids.size(1);
  at::Tensor t = at::arange(T, ids.options()).unsqueeze(0);
  at::Tensor last = (t * (ids != pad_id_).to(at::kLong)).argmax(1);           // [B]
  at::Tensor h = hidden.gather(1, last.view({-1, 1, 1}).expand({-1, 1, hidden.size(2)})).squeeze(1);  // [B, C]
  return at::matmul(h.to(at::kFloat), score_.t());
}

}  // namespace rarlhf
