// The same model on CUDA (when present) must agree with CPU: logits of a left-padded batch, and greedy
// KV-cache generation token for token. bf16 on CUDA gives float32 logits close to float32. Skips
// without a GPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rarlhf/generate/sampler.h"
#include "rarlhf/model/gpt2.h"

using namespace rarlhf;

namespace {
Gpt2Config cfg_mid() {
  Gpt2Config c;
  c.n_layer = 3;
  c.n_head = 4;
  c.n_embd = 64;
  c.n_positions = 128;
  c.vocab_size = 300;
  c.eos_token_id = c.bos_token_id = 299;
  return c;
}
}  // namespace

TEST(GenerateDevice, CudaMatchesCpu) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(31);
  Gpt2 cpu(cfg_mid());
  {
    torch::NoGradGuard g;
    for (auto& p : cpu->parameters()) p.mul_(5.0);
  }
  Gpt2 gpu = clone_gpt2(cpu);
  gpu->to(torch::kCUDA);
  std::vector<std::vector<int64_t>> prompts = {{1, 2, 3, 4, 5, 6, 7}, {8, 9}, {10, 11, 12, 13}};
  GenerateConfig cfg;
  cfg.greedy = true;
  cfg.max_new_tokens = cfg.min_new_tokens = 12;
  auto a = generate(cpu, prompts, cfg, 299, 0, true);
  auto b = generate(gpu, prompts, cfg, 299, 0, true);
  EXPECT_TRUE(b.response_ids.is_cuda());
  EXPECT_TRUE(torch::equal(a.response_ids, b.response_ids.cpu()));
  EXPECT_TRUE(torch::allclose(a.response_logprobs, b.response_logprobs.cpu(), 1e-3, 1e-3));
  torch::NoGradGuard g;
  auto la = cpu->lm_logits(cpu->forward_hidden(a.query_ids, a.query_mask));
  auto lb = gpu->lm_logits(gpu->forward_hidden(b.query_ids, b.query_mask)).cpu();
  auto keep = a.query_mask.unsqueeze(-1).to(torch::kBool);
  EXPECT_LT((la - lb).abs().masked_select(keep).max().item<float>(), 1e-3f);

  Gpt2 half = clone_gpt2(gpu);
  half->to(torch::kBFloat16);
  auto lh = half->lm_logits(half->forward_hidden(b.query_ids, b.query_mask));
  EXPECT_EQ(lh.scalar_type(), torch::kFloat);
  EXPECT_LT((lh.cpu() - la).abs().masked_select(keep).max().item<float>(), 0.05f * la.abs().max().item<float>());
  // Sampling on CUDA is reproducible from the seed as well.
  GenerateConfig s = cfg;
  s.greedy = false;
  EXPECT_TRUE(torch::equal(generate(gpu, prompts, s, 299, 5).response_ids, generate(gpu, prompts, s, 299, 5).response_ids));
}
