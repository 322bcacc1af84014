// Per-sequence negative log-likelihood under a GPT-2 model, the perplexity engine of `rarlhf logprobs`
// and eval. Like Hugging Face evaluate's perplexity measurement with add_start_token=True, BOS is
// prepended so that every token of the text is predicted; texts longer than n_positions - 1 tokens
// are cut (with a warning). perplexity = exp(sum nll_sum / sum tokens).
#pragma once
#include <cstdint>
#include <vector>

#include "rarlhf/model/causal_lm.h"

namespace rarlhf {

struct NllResult {
  double nll_sum = 0.0;               // - sum of log p(token | prefix) over the sequence
  int64_t tokens = 0;                 // predicted tokens (after any cut)
  std::vector<float> token_logprobs;  // log p of each predicted token, in order
};

// batch_size sequences per forward pass (right-padded); results in input order. Runs under no_grad.
std::vector<NllResult> sequence_nll(const CausalLm& model, const std::vector<std::vector<int64_t>>& seqs, int64_t batch_size);

}  // namespace rarlhf
