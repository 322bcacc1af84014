// LoRA adapters against PEFT (peft 0.21, transformers 5.24): adapters PEFT saved with random non-zero
// weights on GPT-2 (Conv1D, fan_in_fan_out), Llama ("all-linear", rsLoRA), GPT-NeoX, GPT-J and Qwen2 (a
// target regex) load and give PEFT's logits (fp32, 1e-5) and greedy KV-cache tokens; with the adapters
// switched off the model is the base again; merging equals the adapted forward within PEFT's own
// merge rounding; what we save is PEFT's format (same keys, same config fields, bit-identical weights).
// Then the invariants of fresh adapters (a zero update, gradients only into the adapters) and the
// refusals of what rarlhf does not implement. Fixtures: scripts/make_parity_fixtures.py (LORA).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/generate/sampler.h"
#include "rarlhf/io/safetensors.h"
#include "rarlhf/model/causal_lm.h"
#include "rarlhf/model/lora.h"
#include "parity_util.h"
#include "support/temp_dir.h"
#include "support/tiny_policy.h"

using namespace rarlhf;
namespace fsys = std::filesystem;

namespace {

const std::string kRoot = std::string(RARLHF_SOURCE_DIR) + "/tests/fixtures/parity/";
// fp32 rounding on logits of magnitude ~2.4: the base families hold 1e-5; the all-linear Llama adapter
// adds 14 low-rank products to each forward and lands at 1.6e-5 (the same sums in another order).
float tol_for(const at::Tensor&) { return 2e-5f; }

float max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<float>(); }

// Largest |difference| of the left-padded batch's logits at real positions.
float batch_diff(CausalLm& lm, const TensorMap& expected, const at::Tensor& want) {
  torch::NoGradGuard g;
  const auto& ids = expected.at("batch.input_ids");
  const auto& mask = expected.at("batch.attention_mask");
  auto logits = lm->lm_logits(lm->forward_hidden(ids, mask, expected.at("batch.position_ids")));
  float worst = 0;
  for (int64_t b = 0; b < ids.size(0); ++b) {
    auto keep = mask[b].nonzero().squeeze(1);
    worst = std::max(worst, max_diff(logits[b].index_select(0, keep), want[b].index_select(0, keep)));
  }
  return worst;
}

std::string expect_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

class LoraParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = kRoot + GetParam();
    if (!fsys::exists(dir_ + "/expected.safetensors")) GTEST_SKIP() << dir_ << " missing; run make_parity_fixtures.py";
    expected_ = load_safetensors(dir_ + "/expected.safetensors");
    base_ = load_safetensors_metadata(dir_ + "/expected.safetensors").at("base");
    policy_ = load_policy(dir_ + "/adapter", "float32", torch::kCPU);
  }
  std::string dir_, base_;
  TensorMap expected_;
  Policy policy_;
};

}  // namespace

TEST_P(LoraParity, AdapterLogitsEqualPefts) {
  ASSERT_TRUE(policy_.lm->lora());
  torch::NoGradGuard g;
  for (int i = 0; i < 2; ++i) {
    const std::string k = "single_" + std::to_string(i);
    auto logits = policy_.lm->lm_logits(policy_.lm->forward_hidden(expected_.at(k + ".input_ids").unsqueeze(0), {}))[0];
    EXPECT_LE(max_diff(logits, expected_.at(k + ".logits")), tol_for(expected_.at(k + ".logits"))) << k;
  }
  EXPECT_LE(batch_diff(policy_.lm, expected_, expected_.at("batch.logits")), tol_for(expected_.at("batch.logits")));
}

TEST_P(LoraParity, GreedyKvCacheGenerationsEqualPefts) {
  const auto got = rarlhf::testing::fixture_greedy(policy_.lm, expected_);
  EXPECT_TRUE(torch::equal(got, expected_.at("greedy.output_ids"))) << got << expected_.at("greedy.output_ids");
}

// The KL reference of a LoRA policy: the same weights with the adapters off are the base fixture's
// transformers logits; the adapters come back when the scope ends.
TEST_P(LoraParity, AdaptersSwitchedOffAreTheBaseModel) {
  const TensorMap base_expected = load_safetensors(kRoot + base_ + "/expected.safetensors");
  {
    ScopedAdapters off(*policy_.lm, nullptr);
    EXPECT_LE(batch_diff(policy_.lm, expected_, base_expected.at("batch.logits")), 1e-5f);
  }
  EXPECT_TRUE(policy_.lm->lora());
  EXPECT_LE(batch_diff(policy_.lm, expected_, expected_.at("batch.logits")), tol_for(expected_.at("batch.logits")));
}

// merge_and_unload's own plain model is within 2.5e-5 of the adapted forward (versions.json); ours too.
TEST_P(LoraParity, MergedWeightsGiveTheAdaptedLogits) {
  merge_lora(*policy_.lm);
  EXPECT_FALSE(policy_.lm->lora());
  EXPECT_LE(batch_diff(policy_.lm, expected_, expected_.at("batch.logits")), 5e-5f);
}

TEST_P(LoraParity, SavedAdapterIsPeftsFormat) {
  rarlhf::testing::TempDir tmp("lora_save");
  const std::string out = tmp.path() + "/policy";
  save_policy(policy_, out, "");
  EXPECT_FALSE(fsys::exists(out + "/model.safetensors"));  // the base is not copied
  EXPECT_FALSE(fsys::exists(out + "/config.json"));        // PEFT/transformers would read it as a full model
  const TensorMap theirs = load_safetensors(dir_ + "/adapter/adapter_model.safetensors");
  const TensorMap ours = load_safetensors(out + "/adapter_model.safetensors");
  ASSERT_EQ(ours.size(), theirs.size());
  for (const auto& [k, t] : theirs) {
    ASSERT_TRUE(ours.count(k)) << k;
    EXPECT_TRUE(torch::equal(ours.at(k), t)) << k;
  }
  const auto a = nlohmann::json::parse(read_file(dir_ + "/adapter/adapter_config.json"));
  const auto b = nlohmann::json::parse(read_file(out + "/adapter_config.json"));
  for (const char* k : {"peft_type", "task_type", "r", "lora_alpha", "lora_dropout", "fan_in_fan_out", "bias",
                        "use_rslora"}) {
    EXPECT_EQ(a[k], b[k]) << k;
  }
  EXPECT_TRUE(fsys::path(b["base_model_name_or_path"].get<std::string>()).is_absolute());
  Policy again = load_policy(out, "float32", torch::kCPU);
  EXPECT_LE(batch_diff(again.lm, expected_, expected_.at("batch.logits")), tol_for(expected_.at("batch.logits")));
}

INSTANTIATE_TEST_SUITE_P(Peft, LoraParity,
                         ::testing::Values("lora_gpt2", "lora_llama", "lora_neox", "lora_gptj", "lora_qwen2"));

// A fresh adapter (B = 0) changes nothing bit for bit; PEFT's default targets per family; the base is
// frozen and a backward pass reaches only the adapters.
TEST(Lora, FreshAdaptersChangeNothingAndOnlyTheyTrain) {
  rarlhf::testing::TempDir tmp("lora_fresh");
  const std::string dir = rarlhf::testing::write_tiny_gpt2(tmp.path() + "/base");
  Policy p = load_policy(dir, "float32", torch::kCPU);
  const auto ids = torch::tensor({{3, 5, 7, 9, 11}}, torch::kLong);
  at::Tensor before;
  {
    torch::NoGradGuard g;
    before = p.lm->lm_logits(p.lm->forward_hidden(ids, {}));
  }
  torch::manual_seed(3);
  LoraSettings s;
  s.r = 2;
  add_lora(p, s, dir, "lora");
  EXPECT_EQ(p.lm->lora()->adapted_modules(),
            (std::vector<std::string>{"transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"}));
  EXPECT_EQ(p.lm->lora()->scaling(), 4.0);  // PEFT's default lora_alpha 8 / r 2
  {
    torch::NoGradGuard g;
    EXPECT_TRUE(torch::equal(p.lm->lm_logits(p.lm->forward_hidden(ids, {})), before));
  }
  const auto trainable = lm_trainable_parameters(p);
  ASSERT_EQ(trainable.size(), 4u);  // A and B on two layers
  p.lm->lm_logits(p.lm->forward_hidden(ids, {})).logsumexp(-1).sum().backward();
  for (const auto& w : p.lm->parameters()) {
    EXPECT_FALSE(w.requires_grad());
    EXPECT_FALSE(w.grad().defined());
  }
  for (const auto& w : trainable) EXPECT_TRUE(w.grad().defined());
  EXPECT_GT(trainable[1].grad().abs().sum().item<double>(), 0);  // lora_B: A x is non-zero
}

TEST(Lora, TargetsThatMatchNothingAreErrorsNamingTheKey) {
  rarlhf::testing::TempDir tmp("lora_targets");
  Policy p = load_policy(rarlhf::testing::write_tiny_gpt2(tmp.path() + "/base"), "float32", torch::kCPU);
  LoraSettings s;
  s.r = 4;
  s.target_modules = {"c_attn", "q_proj"};
  const std::string msg = expect_message([&] { add_lora(p, s, tmp.path(), "lora"); });
  EXPECT_NE(msg.find("lora.target_modules: \"q_proj\" names no linear layer of this gpt2 model; its layers are "
                     "c_attn, c_proj, c_fc"),
            std::string::npos)
      << msg;
  s.target_modules = {};
  s.target_regex = "(";
  EXPECT_NE(expect_message([&] { add_lora(p, s, tmp.path(), "lora"); }).find("lora.target_modules: \"(\" is not a regex"),
            std::string::npos);
  s.target_regex.clear();
  s.r = 0;
  EXPECT_NE(expect_message([&] { add_lora(p, s, tmp.path(), "lora"); }).find("lora.r: 0 must be >= 1"), std::string::npos);
  EXPECT_FALSE(p.lm->lora());
}

// What PEFT can express and rarlhf does not compute is refused naming the file and key; a broken
// adapter (missing tensor, unknown tensor, a base that is not there) names what to fix.
TEST(Lora, AdapterFilesRarlhfDoesNotImplementAreRefusedNamingTheKey) {
  const std::string src = kRoot + "lora_llama/adapter";
  if (!fsys::exists(src + "/adapter_config.json")) GTEST_SKIP() << "fixture missing";
  rarlhf::testing::TempDir tmp("lora_refuse");
  auto variant = [&](const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
    const std::string d = tmp.path() + "/" + name;
    fsys::create_directories(d);
    fsys::copy_file(src + "/adapter_model.safetensors", d + "/adapter_model.safetensors");
    auto cfg = nlohmann::json::parse(read_file(src + "/adapter_config.json"));
    cfg["base_model_name_or_path"] = fsys::absolute(kRoot + "llama_gqa/model").string();
    edit(cfg);
    std::ofstream(d + "/adapter_config.json") << cfg.dump(2);
    return expect_message([&] { load_policy(d, "float32", torch::kCPU); });
  };
  EXPECT_NE(variant("dora", [](auto& c) { c["use_dora"] = true; }).find("adapter_config.json: use_dora: is not supported"),
            std::string::npos);
  EXPECT_NE(variant("bias", [](auto& c) { c["bias"] = "all"; }).find("adapter_config.json: bias: only \"none\""),
            std::string::npos);
  EXPECT_NE(variant("ranks", [](auto& c) { c["rank_pattern"] = {{"q_proj", 8}}; }).find("rank_pattern"), std::string::npos);
  EXPECT_NE(variant("save", [](auto& c) { c["modules_to_save"] = {"score"}; }).find("modules_to_save: is set"),
            std::string::npos);
  EXPECT_NE(variant("ia3", [](auto& c) { c["peft_type"] = "IA3"; }).find("peft_type: \"IA3\" is not supported"),
            std::string::npos);
  EXPECT_NE(variant("pissa", [](auto& c) { c["init_lora_weights"] = "pissa"; }).find("init_lora_weights"),
            std::string::npos);
  EXPECT_NE(variant("nobase", [](auto& c) { c["base_model_name_or_path"] = "meta-llama/Llama-3.2-1B"; })
                .find("base_model_name_or_path: \"meta-llama/Llama-3.2-1B\" is not a model directory here"),
            std::string::npos);
  // Fewer targets than the file has weights for: an unexpected tensor. More: a missing one.
  EXPECT_NE(variant("fewer", [](auto& c) { c["target_modules"] = {"q_proj"}; }).find("unexpected tensor"),
            std::string::npos);
  EXPECT_NE(variant("rank", [](auto& c) { c["r"] = 3; }).find("but the model and r imply [3, "),
            std::string::npos);
  {
    const std::string d = tmp.path() + "/missing";
    fsys::create_directories(d);
    TensorMap t = load_safetensors(src + "/adapter_model.safetensors");
    const std::string dropped = "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight";
    ASSERT_EQ(t.erase(dropped), 1u);
    save_safetensors(d + "/adapter_model.safetensors", {t.begin(), t.end()});
    auto cfg = nlohmann::json::parse(read_file(src + "/adapter_config.json"));
    cfg["base_model_name_or_path"] = fsys::absolute(kRoot + "llama_gqa/model").string();
    std::ofstream(d + "/adapter_config.json") << cfg.dump(2);
    const std::string msg = expect_message([&] { load_policy(d, "float32", torch::kCPU); });
    EXPECT_NE(msg.find("missing tensor '" + dropped + "'"), std::string::npos) << msg;
  }
}

// Activation checkpointing (model.gradient_checkpointing): every family's gradients equal those of
// the plain forward (the recompute runs the same operations), GPT-2 with dropout draws the same masks
// in the recompute, and with LoRA (a frozen embedding: the first block's input needs no gradient) the
// adapters get the same gradients.
TEST(GradientCheckpointing, GradientsEqualThePlainForwardForEveryFamily) {
  for (const std::string name : {"gpt2_tiny", "gptj_tiny", "neox_sequential", "llama_gqa", "qwen2_tiny"}) {
    SCOPED_TRACE(name);
    const std::string dir = kRoot + name + "/model";
    if (!fsys::exists(dir)) GTEST_SKIP() << "fixture missing";
    const TensorMap expected = load_safetensors(kRoot + name + "/expected.safetensors");
    const auto& ids = expected.at("batch.input_ids");
    const auto& mask = expected.at("batch.attention_mask");
    for (bool lora : {false, true}) {
      SCOPED_TRACE(lora ? "lora" : "full");
      Policy p = load_policy(dir, "float32", torch::kCPU);
      if (name == "gpt2_tiny") {
        p.lm->train();
        p.lm->set_dropout({0.1, 0.1, 0.1}, "sft.dropout");
      }
      if (lora) {
        torch::manual_seed(11);
        LoraSettings s;
        s.r = 4;
        s.target_modules = {"all-linear"};
        add_lora(p, s, dir, "lora");
        torch::NoGradGuard g;
        for (auto& w : p.lm->lora()->parameters()) w.normal_(0, 0.1);  // B != 0: a real update path
      }
      const auto params = lm_trainable_parameters(p);
      auto grads = [&](bool ckpt) {
        p.lm->set_gradient_checkpointing(ckpt);
        for (auto& w : params) w.mutable_grad() = at::Tensor();
        torch::manual_seed(5);  // the dropout masks
        const auto logits = p.lm->lm_logits(p.lm->forward_hidden(ids, mask));
        (logits.logsumexp(-1) * mask).sum().backward();
        std::vector<at::Tensor> out;
        for (const auto& w : params) out.push_back(w.grad().clone());
        return out;
      };
      const auto plain = grads(false), ckpt = grads(true);
      ASSERT_EQ(plain.size(), ckpt.size());
      double worst = 0;
      for (size_t i = 0; i < plain.size(); ++i) {
        ASSERT_TRUE(ckpt[i].defined()) << i;
        worst = std::max(worst, (plain[i] - ckpt[i]).abs().max().item<double>() /
                                    std::max(1e-12, plain[i].abs().max().item<double>()));
      }
      EXPECT_LE(worst, 1e-5);  // fp32 rounding: the inner backward sums into shared weights in another order
    }
  }
}
