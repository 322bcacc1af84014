// The per-row-seed form of generate() that data-parallel PPO relies on: a row's sample depends on
// its own seed and prompt only, not on which other rows share the batch (so each rank, sampling its
// shard, draws what one process sampling the whole batch draws), and distinct seeds give distinct
// samples.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rarlhf/model/gpt2.h"
#include "rarlhf/common/error.h"
#include "rarlhf/generate/sampler.h"

using namespace rarlhf;

namespace {

Gpt2 make_model() {
  Gpt2Config c;
  c.n_layer = 2;
  c.n_head = 2;
  c.n_embd = 16;
  c.n_positions = 48;
  c.vocab_size = 23;
  c.eos_token_id = c.bos_token_id = 22;
  torch::manual_seed(5);
  Gpt2 m(c);
  torch::NoGradGuard g;
  for (auto& p : m->parameters()) p.mul_(4.0);  // sharper logits than init, still many likely tokens
  return m;
}

}  // namespace

TEST(RowSeedSampling, ARowsSampleIgnoresTheRestOfTheBatch) {
  auto m = make_model();
  GenerateConfig cfg;
  cfg.max_new_tokens = 10;
  cfg.min_new_tokens = 10;
  cfg.temperature = 1.5;
  // Equal-length prompts: the sub-batches share one padding layout, so the only thing that could
  // differ is the random stream.
  const std::vector<std::vector<int64_t>> prompts = {{1, 2, 3}, {4, 5, 6}, {7, 8, 9}, {10, 11, 12}};
  const std::vector<uint64_t> seeds = {101, 202, 303, 404};
  auto all = generate(m, prompts, cfg, 22, seeds);
  auto first = generate(m, {prompts[0], prompts[1]}, cfg, 22, std::vector<uint64_t>{seeds[0], seeds[1]});
  auto last = generate(m, {prompts[2], prompts[3]}, cfg, 22, std::vector<uint64_t>{seeds[2], seeds[3]});
  EXPECT_TRUE(torch::equal(all.response_ids.narrow(0, 0, 2), first.response_ids));
  EXPECT_TRUE(torch::equal(all.response_ids.narrow(0, 2, 2), last.response_ids));
  // The single-seed form draws its [R, B] uniforms from one stream: its row 2 depends on the batch.
  auto single_all = generate(m, prompts, cfg, 22, uint64_t{7});
  auto single_last = generate(m, {prompts[2], prompts[3]}, cfg, 22, uint64_t{7});
  EXPECT_FALSE(torch::equal(single_all.response_ids.narrow(0, 2, 2), single_last.response_ids));
  // Same prompt, different seeds -> different samples; same seed -> the same sample.
  auto twins = generate(m, {prompts[0], prompts[0], prompts[0]}, cfg, 22, std::vector<uint64_t>{1, 2, 1});
  EXPECT_FALSE(torch::equal(twins.response_ids[0], twins.response_ids[1]));
  EXPECT_TRUE(torch::equal(twins.response_ids[0], twins.response_ids[2]));
}

TEST(RowSeedSampling, SeedCountMustMatchPrompts) {
  auto m = make_model();
  GenerateConfig cfg;
  cfg.max_new_tokens = 2;
  cfg.min_new_tokens = 0;
  EXPECT_THROW(generate(m, {{1}, {2}}, cfg, 22, std::vector<uint64_t>{1}), Error);
}
