// sequence_nll: equals single-sequence forwards with BOS prepended, is independent of batching and
// padding, and gives exactly log(V) per token for a model whose logits are all equal.
#include "rarlhf/model/gpt2.h"
#include "rarlhf/model/nll.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

using namespace rarlhf;

namespace {
Gpt2Config tiny() {
  Gpt2Config c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 8;
  c.n_positions = 16;
  c.vocab_size = 31;
  c.bos_token_id = c.eos_token_id = 30;
  return c;
}
}  // namespace

TEST(SequenceNll, MatchesSingleForwardWithBos) {
  torch::manual_seed(21);
  Gpt2 m(tiny());
  std::vector<std::vector<int64_t>> seqs = {{1, 2, 3, 4, 5, 6}, {7}, {}, {8, 9, 10}, {11, 12}};
  auto batched = sequence_nll(m, seqs, 3);
  auto single = sequence_nll(m, seqs, 1);
  torch::NoGradGuard g;
  for (size_t i = 0; i < seqs.size(); ++i) {
    std::vector<int64_t> in = {30};
    in.insert(in.end(), seqs[i].begin(), seqs[i].end());
    auto logp = torch::log_softmax(m->lm_logits(m->forward_hidden(torch::tensor(in).unsqueeze(0), {}))[0], -1);
    double nll = 0;
    for (size_t t = 0; t < seqs[i].size(); ++t) nll -= logp[t][seqs[i][t]].item<double>();
    EXPECT_EQ(batched[i].tokens, static_cast<int64_t>(seqs[i].size()));
    EXPECT_NEAR(batched[i].nll_sum, nll, 1e-4) << i;
    EXPECT_NEAR(single[i].nll_sum, batched[i].nll_sum, 1e-4) << i;
    ASSERT_EQ(batched[i].token_logprobs.size(), seqs[i].size());
  }
}

TEST(SequenceNll, UniformModelGivesLogV) {
  torch::manual_seed(22);
  Gpt2 m(tiny());
  {
    torch::NoGradGuard g;
    m->named_parameters()["ln_f.weight"].zero_();
    m->named_parameters()["ln_f.bias"].zero_();  // hidden 0 -> all logits 0
  }
  auto r = sequence_nll(m, {{3, 4, 5, 6, 7}}, 2);
  EXPECT_EQ(r[0].tokens, 5);
  EXPECT_NEAR(r[0].nll_sum, 5 * std::log(31.0), 1e-4);
  EXPECT_NEAR(std::exp(r[0].nll_sum / r[0].tokens), 31.0, 1e-3);  // perplexity = V
}

TEST(SequenceNll, LongTextsAreCutToFit) {
  torch::manual_seed(23);
  Gpt2 m(tiny());
  std::vector<int64_t> longseq(40, 5);
  auto r = sequence_nll(m, {longseq}, 1);
  EXPECT_EQ(r[0].tokens, 15);  // n_positions 16 - BOS
}
