// fp32 master weights for bfloat16 training, against hand-worked arithmetic: bf16 holds 1.0 - 1e-4 as
// 1.0 (its spacing below 1 is 2^-8 = 0.0039), so 100 SGD steps of 1e-4 leave a bf16-only weight at 1.0,
// while the master reaches 0.99 and the weight its nearest bf16, 0.98828125 (253/256). fp32 parameters
// have no master; a checkpoint of the masters restores them exactly; float16 training is refused.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rarlhf/common/error.h"
#include "rarlhf/model/causal_lm.h"
#include "rarlhf/train/master_weights.h"
#include "rarlhf/train/run_loop.h"
#include "support/temp_dir.h"
#include "support/tiny_policy.h"

using namespace rarlhf;

TEST(MasterWeights, SmallUpdatesAccumulateInTheMasterNotInBf16) {
  at::Tensor w = torch::ones({4}, torch::kBFloat16).set_requires_grad(true);
  at::Tensor v = torch::ones({2}, torch::kFloat).set_requires_grad(true);  // fp32: stands for itself
  MasterWeights m({w, v});
  ASSERT_EQ(m.count(), 1);
  ASSERT_EQ(m.optimizer_params().size(), 2u);
  EXPECT_EQ(m.optimizer_params()[0].scalar_type(), at::kFloat);
  EXPECT_TRUE(m.optimizer_params()[1].is_same(v));
  torch::optim::SGD sgd(m.optimizer_params(), torch::optim::SGDOptions(1e-4));
  at::Tensor plain = torch::ones({4}, torch::kBFloat16).set_requires_grad(true);
  torch::optim::SGD plain_sgd({plain}, torch::optim::SGDOptions(1e-4));
  for (int step = 0; step < 100; ++step) {
    sgd.zero_grad();
    plain_sgd.zero_grad();
    (w.to(at::kFloat).sum() + v.sum()).backward();  // d/dw = 1
    plain.to(at::kFloat).sum().backward();
    m.gradients_to_masters();
    EXPECT_FALSE(w.grad().defined());
    sgd.step();
    m.masters_to_params();
    plain_sgd.step();
  }
  EXPECT_NEAR(m.optimizer_params()[0][0].item<double>(), 0.99, 1e-5);  // 100 fp32 subtractions
  EXPECT_EQ(w[0].item<float>(), 253.0f / 256.0f);
  EXPECT_EQ(plain[0].item<float>(), 1.0f);  // without a master the updates vanish
  EXPECT_NEAR(v[0].item<double>(), 0.99, 1e-5);

  // The named masters restore a fresh set exactly (and round the weights from them).
  at::Tensor w2 = torch::ones({4}, torch::kBFloat16).set_requires_grad(true);
  MasterWeights again({w2, v});
  TensorMap saved;
  for (auto& [k, t] : m.named_masters()) saved.emplace(k, t.detach().clone());
  again.load_masters(saved, "masters");
  EXPECT_TRUE(torch::equal(again.optimizer_params()[0], m.optimizer_params()[0]));
  EXPECT_TRUE(torch::equal(w2, w));
  saved.emplace("master.7", torch::zeros({1}));
  EXPECT_THROW(again.load_masters(saved, "masters"), IoError);
}

TEST(MasterWeights, Float16TrainingIsRefusedNamingTheKey) {
  rarlhf::testing::TempDir tmp("fp16");
  Policy p = load_policy(rarlhf::testing::write_tiny_gpt2(tmp.path() + "/m"), "float32", torch::kCPU);
  refuse_float16_training(*p.lm);  // float32: fine
  p.lm->to(at::kHalf);
  try {
    refuse_float16_training(*p.lm);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("model.dtype: float16 training needs loss scaling"), std::string::npos);
  }
}
