// Sequence NLL / perplexity: see include/rarlhf/model/nll.h. Logits are computed one row and at most
// kChunk positions at a time, so a 1024-token text never holds a [B, T, 50257] tensor.
#include "rarlhf/model/nll.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <algorithm>
#include <cstring>

#include "rarlhf/common/error.h"
#include "rarlhf/common/log.h"

namespace rarlhf {

std::vector<NllResult> sequence_nll(const CausalLm& model, const std::vector<std::vector<int64_t>>& seqs, int64_t batch_size) {
  if (batch_size < 1) throw ConfigError("sequence_nll: batch_size must be >= 1");
  constexpr int64_t kChunk = 256;
  const auto& mc = model->config();
  const int64_t max_tokens = mc.n_positions - 1;  // + BOS
  const at::Device dev = model->device();
  // The start token evaluate's perplexity prepends: BOS, or EOS for models without one (GPT-2's are equal).
  const int64_t start_id = mc.bos_token_id >= 0 ? mc.bos_token_id : mc.eos_token_id;
  if (start_id < 0) throw ConfigError("sequence_nll: the model's config.json names neither bos_token_id nor eos_token_id");
  const int64_t pad_id = mc.eos_token_id >= 0 ? mc.eos_token_id : start_id;
  c10::NoGradGuard no_grad;
  std::vector<NllResult> out(seqs.size());
  size_t cut = 0;
  for (size_t start = 0; start < seqs.size(); start += batch_size) {
    const size_t end = std::min(seqs.size(), start + static_cast<size_t>(batch_size));
    int64_t L = 1;
    for (size_t i = start; i < end; ++i) L = std::max<int64_t>(L, 1 + std::min<int64_t>(seqs[i].size(), max_tokens));
    const int64_t B = static_cast<int64_t>(end - start);
    // [B, L] right-padded: BOS, tokens, pad (= eos, masked out).
    at::Tensor ids = at::full({B, L}, pad_id, at::kLong), mask = at::zeros({B, L}, at::kLong);
    std::vector<int64_t> lens(B);
    for (int64_t b = 0; b < B; ++b) {
      const auto& s = seqs[start + b];
      const int64_t n = std::min<int64_t>(s.size(), max_tokens);
      if (n < static_cast<int64_t>(s.size())) ++cut;
      for (int64_t id : s) {
        if (id < 0 || id >= mc.vocab_size) {
          throw ConfigError("sequence_nll: text " + std::to_string(start + b) + " holds token id " +
                            std::to_string(id) + " outside the vocabulary");
        }
      }
      lens[b] = n;
      ids[b][0] = start_id;
      if (n > 0) std::memcpy(ids[b].narrow(0, 1, n).data_ptr<int64_t>(), s.data(), n * sizeof(int64_t));
      mask[b].narrow(0, 0, n + 1).fill_(1);
    }
    at::Tensor hidden = model->forward_hidden(ids.to(dev), mask.to(dev));  // [B, L, C]
    at::Tensor targets = ids.to(dev);
    for (int64_t b = 0; b < B; ++b) {
      auto& r = out[start + b];
      const int64_t n = lens[b];
      r.tokens = n;
      r.token_logprobs.reserve(n);
      for (int64_t c = 0; c < n; c += kChunk) {
        const int64_t m = std::min(kChunk, n - c);
        // hidden at positions c..c+m-1 predicts tokens at c+1..c+m.
        auto logp = at::log_softmax(model->lm_logits(hidden[b].narrow(0, c, m)), 1);  // [m, V]
        auto lp = logp.gather(1, targets[b].narrow(0, c + 1, m).unsqueeze(1)).squeeze(1).to(at::kCPU).contiguous();
        const float* p = lp.data_ptr<float>();
        for (int64_t i = 0; i < m; ++i) {
          r.token_logprobs.push_back(p[i]);
          r.nll_sum -= p[i];
        }
      }
    }
  }
  if (cut > 0) {
    RARLHF_LOG_WARN("perplexity: {} text(s) longer than {} tokens were cut to fit n_positions", cut, max_tokens);
  }
  return out;
}

}  // namespace rarlhf
