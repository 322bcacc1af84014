// FusedAdam / FusedAdamW against LibTorch's Adam / AdamW (the reference implementation): same
// parameters after several steps (with L2 / decoupled weight decay, a parameter without a gradient,
// a non-contiguous one that takes the LibTorch path), and checkpoints that move between the two
// (which also checks that the fused step finds LibTorch's state under its key).
#include "rarlhf/train/fused_adam.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

namespace {

using rarlhf::FusedAdam;
using rarlhf::FusedAdamW;

std::vector<at::Tensor> make_params() {
  torch::manual_seed(3);
  return {torch::randn({1000, 37}).requires_grad_(), torch::randn({129}).requires_grad_(),
          torch::randn({5, 3}).requires_grad_()};  // the last never gets a gradient
}

std::vector<at::Tensor> clone_params(const std::vector<at::Tensor>& ps) {
  std::vector<at::Tensor> out;
  for (const auto& p : ps) out.push_back(p.detach().clone().requires_grad_());
  return out;
}

// A deterministic gradient for step t, the same for both optimisers.
void set_grads(std::vector<at::Tensor>& ps, int t) {
  for (size_t i = 0; i + 1 < ps.size(); ++i) {
    auto gen = torch::sin(torch::arange(ps[i].numel(), torch::kFloat) * (0.37f + 0.11f * t) + static_cast<float>(i));
    ps[i].mutable_grad() = (gen * (1.0f + t) + 0.1f * ps[i].detach().view(-1)).view(ps[i].sizes());
  }
}

template <class Ref, class Fused, class Options>
void expect_same_trajectory(const Options& opts, int steps) {
  auto a = make_params();
  auto b = clone_params(a);
  Ref ref(a, opts);
  Fused fused(b, opts);
  for (int t = 0; t < steps; ++t) {
    set_grads(a, t);
    set_grads(b, t);
    ref.step();
    fused.step();
  }
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-6)) << "parameter " << i << " max diff "
                                                         << (a[i] - b[i]).abs().max().item<float>();
  }
  EXPECT_TRUE(torch::equal(a.back(), b.back()));  // no gradient: untouched by both
  EXPECT_FALSE(torch::equal(a[0], make_params()[0]));  // and the others did move
}

TEST(FusedAdam, MatchesLibTorchAdam) {
  expect_same_trajectory<torch::optim::Adam, FusedAdam>(torch::optim::AdamOptions(1e-2), 7);
  expect_same_trajectory<torch::optim::Adam, FusedAdam>(
      torch::optim::AdamOptions(3e-3).weight_decay(0.1).betas({0.8, 0.99}).eps(1e-6), 7);
}

TEST(FusedAdam, MatchesLibTorchAdamW) {
  expect_same_trajectory<torch::optim::AdamW, FusedAdamW>(torch::optim::AdamWOptions(1e-2), 7);
  expect_same_trajectory<torch::optim::AdamW, FusedAdamW>(torch::optim::AdamWOptions(1e-2).weight_decay(0.05), 7);
}

TEST(FusedAdam, NonContiguousParameterTakesTheLibTorchPath) {
  torch::manual_seed(5);
  auto base_a = torch::randn({40, 30});
  auto base_b = base_a.clone();
  auto a = base_a.t().requires_grad_();  // a non-contiguous leaf
  auto b = base_b.t().requires_grad_();
  torch::optim::Adam ref({a}, torch::optim::AdamOptions(1e-2));
  FusedAdam fused({b}, torch::optim::AdamOptions(1e-2));
  for (int t = 0; t < 3; ++t) {
    a.mutable_grad() = torch::cos(a.detach() * (t + 1));
    b.mutable_grad() = torch::cos(b.detach() * (t + 1));
    ref.step();
    fused.step();
  }
  EXPECT_TRUE(torch::allclose(a, b, 1e-6, 1e-7));
}

TEST(FusedAdam, CheckpointsMoveBetweenLibTorchAndFused) {
  const std::string dir = (std::filesystem::temp_directory_path() / "rarlhf_fused_adam_test").string();
  std::filesystem::create_directories(dir);
  const auto opts = torch::optim::AdamOptions(5e-3);
  // Uninterrupted: LibTorch Adam for 6 steps.
  auto a = make_params();
  torch::optim::Adam whole(a, opts);
  for (int t = 0; t < 6; ++t) {
    set_grads(a, t);
    whole.step();
  }
  // LibTorch for 3 steps, checkpoint, FusedAdam from the checkpoint for 3 more.
  auto b = make_params();
  {
    torch::optim::Adam first(b, opts);
    for (int t = 0; t < 3; ++t) {
      set_grads(b, t);
      first.step();
    }
    torch::save(first, dir + "/torch.pt");
  }
  FusedAdam second(b, opts);
  torch::load(second, dir + "/torch.pt");
  for (int t = 3; t < 6; ++t) {
    set_grads(b, t);
    second.step();
  }
  // Had the fused step missed LibTorch's state (wrong key), it would restart the moments and the
  // bias correction at step 1 and end far from the uninterrupted run.
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-6)) << "parameter " << i;
  // And the other way: FusedAdam's checkpoint loads into LibTorch's Adam with the same state.
  torch::save(second, dir + "/fused.pt");
  torch::optim::Adam back(clone_params(b), opts);
  torch::load(back, dir + "/fused.pt");
  EXPECT_EQ(back.state().size(), 2u);  // two parameters had gradients
  std::filesystem::remove_all(dir);
}

}  // namespace

// TRL v0.7's zeroed loss (ppo.ratio_threshold): one more Adam step on zero gradients, worked by hand
// from Adam's update rule. The momentum of the first step still moves the weights; skipping the
// step would leave them where they were.
TEST(FusedAdam, ZeroGradientStepFollowsAdamsRule) {
  const double lr = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  at::Tensor p = torch::tensor({1.0f, -2.0f, 0.5f}).requires_grad_();
  const std::vector<double> g = {0.3, -1.5, 2.0};
  FusedAdam opt({p}, torch::optim::AdamOptions(lr).betas({b1, b2}).eps(eps));
  p.mutable_grad() = torch::tensor({0.3f, -1.5f, 2.0f});
  opt.step();
  const at::Tensor after_first = p.detach().clone();
  rarlhf::step_with_zero_gradients(opt);
  for (int i = 0; i < 3; ++i) {
    const double p1 = after_first[i].item<double>();
    const double m2 = b1 * (1 - b1) * g[i], v2 = b2 * (1 - b2) * g[i] * g[i];
    const double expect = p1 - lr * (m2 / (1 - b1 * b1)) / (std::sqrt(v2 / (1 - b2 * b2)) + eps);
    EXPECT_NEAR(p[i].item<double>(), expect, 1e-6) << i;
    EXPECT_GT(std::abs(p[i].item<double>() - p1), 1e-3) << i;  // moved: not a skipped step
  }
  ASSERT_EQ(opt.state().size(), 1u);
  for (const auto& kv : opt.state()) EXPECT_EQ(static_cast<torch::optim::AdamParamState&>(*kv.second).step(), 2);
}
