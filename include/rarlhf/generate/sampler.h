// Batched autoregressive sampling from a GPT-2 policy with a preallocated KV cache: temperature,
// top-k, top-p, greedy, min_new_tokens (EOS suppressed until reached), pad-after-EOS masking. Draws
// come from a CPU generator seeded per call (inverse-CDF sampling on the model's device), so the same
// seed gives the same samples whatever else used torch's RNG.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "rarlhf/config/config.h"
#include "rarlhf/model/causal_lm.h"

namespace rarlhf {

// All tensors live on the model's device.
struct GenerationResult {
  at::Tensor query_ids, query_mask;        // [B,P] left-padded (pad id = eos), 1 = prompt token
  at::Tensor response_ids, response_mask;  // [B,R], R = max_new_tokens; mask 1 up to and including the first EOS
  at::Tensor response_logprobs;            // [B,R] fp32 log softmax(logits / temperature) of the drawn token,
                                           // before top-k/top-p/EOS suppression; 0 where masked.
                                           // Defined only when requested.
  std::vector<int64_t> stop_ids;           // the ids that end a response: eos_id, then the model's other eos ids
};

// Every row's response tokens (those with mask 1), the token that ended it included when
// `with_stop`; without it they are the ids whose decode is the response text.
std::vector<std::vector<int64_t>> response_tokens(const GenerationResult& gen, bool with_stop);

// prompts: token ids, each non-empty; P + max_new_tokens must fit n_positions (ConfigError otherwise).
// A response ends at eos_id or at any of the model's config().eos_token_ids (all suppressed while
// min_new_tokens is not reached); pads are eos_id.
GenerationResult generate(const CausalLm& model, const std::vector<std::vector<int64_t>>& prompts, const GenerateConfig& cfg,
                          int64_t eos_id, uint64_t seed, bool return_logprobs = false);

// Same, with one random stream per row: row b's draws come from a generator seeded with
// row_seeds[b] (row_seeds.size() == prompts.size()), so a row's sample does not depend on which other
// rows share the batch. Data-parallel training uses it so that N ranks, each sampling its shard,
// draw the same episodes as one process sampling the whole batch.
GenerationResult generate(const CausalLm& model, const std::vector<std::vector<int64_t>>& prompts, const GenerateConfig& cfg,
                          int64_t eos_id, const std::vector<uint64_t>& row_seeds, bool return_logprobs = false);

// The logits filter used by generate, exposed for tests: temperature, then EOS -> -inf when
// suppress_eos, then top-k, then top-p (smallest set of tokens whose probability reaches top_p).
at::Tensor process_logits(const at::Tensor& logits, const GenerateConfig& cfg, int64_t eos_id, bool suppress_eos);

}  // namespace rarlhf
