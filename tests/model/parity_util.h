// Shared by the transformers / peft parity tests: the fixture's greedy KV-cache generation replayed.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "rarlhf/generate/sampler.h"
#include "rarlhf/io/safetensors.h"
#include "rarlhf/model/causal_lm.h"

namespace rarlhf::testing {

// The fixture's left-padded batch (batch.input_ids / batch.attention_mask) as prompts, decoded greedily
// for as many tokens as greedy.output_ids holds; returns the response ids [B, N].
inline at::Tensor fixture_greedy(const CausalLm& lm, const TensorMap& expected) {
  const auto& ids = expected.at("batch.input_ids");
  const auto& mask = expected.at("batch.attention_mask");
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t b = 0; b < ids.size(0); ++b) {
    auto row = ids[b].index_select(0, mask[b].nonzero().squeeze(1)).contiguous();
    prompts.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
  }
  GenerateConfig cfg;
  cfg.greedy = true;
  cfg.max_new_tokens = cfg.min_new_tokens = expected.at("greedy.output_ids").size(1);
  return generate(lm, prompts, cfg, lm->config().eos_token_id, 0).response_ids;
}

}  // namespace rarlhf::testing
