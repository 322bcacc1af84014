// Parity with Hugging Face transformers for every causal-LM family and configuration variant (GPT-2,
// GPT-J partial/full rotary, GPT-NeoX parallel/sequential residual, Llama GQA/tied/head_dim/biases,
// llama3 and linear RoPE scaling, Mistral, Qwen2, a SmolLM2-shaped Llama): logits of unpadded and
// left-padded inputs (fp32, atol 1e-5 relative to logits of magnitude ~2), greedy KV-cache generations
// token-exact, the legacy config.json spelling (rope_theta/rope_scaling) equal to transformers 5's
// rope_parameters, bf16 within transformers' own bf16 error, and save -> load -> same logits.
// Fixtures: scripts/make_parity_fixtures.py (transformers 5.24, torch 2.13).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/io/safetensors.h"
#include "rarlhf/generate/sampler.h"
#include "rarlhf/model/causal_lm.h"
#include "parity_util.h"
#include "support/temp_dir.h"
#include "support/tiny_policy.h"

using namespace rarlhf;
namespace fsys = std::filesystem;

namespace {

const std::string kRoot = std::string(RARLHF_SOURCE_DIR) + "/tests/fixtures/parity/";

float max_diff(const at::Tensor& a, const at::Tensor& b) { return (a - b).abs().max().item<float>(); }

class CausalLmParity : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    dir_ = kRoot + GetParam();
    if (!fsys::exists(dir_ + "/expected.safetensors")) {
      GTEST_SKIP() << dir_ << " missing; run scripts/make_parity_fixtures.py where transformers is installed";
    }
    policy_ = load_policy(dir_ + "/model", "float32", torch::kCPU);
    expected_ = load_safetensors(dir_ + "/expected.safetensors");
  }
  // Logits of the left-padded batch at its real positions, with positions given or derived.
  void expect_batch(CausalLm& lm, const at::Tensor& want, float tol, const std::string& what) {
    torch::NoGradGuard g;
    auto ids = expected_.at("batch.input_ids"), mask = expected_.at("batch.attention_mask");
    for (bool derive : {false, true}) {
      auto pos = derive ? at::Tensor() : expected_.at("batch.position_ids");
      auto logits = lm->lm_logits(lm->forward_hidden(ids, mask, pos));
      for (int64_t b = 0; b < ids.size(0); ++b) {
        auto keep = mask[b].nonzero().squeeze(1);
        EXPECT_LE(max_diff(logits[b].index_select(0, keep), want[b].index_select(0, keep).to(at::kFloat)), tol)
            << what << " row " << b << (derive ? " (derived positions)" : "");
      }
    }
  }
  std::string dir_;
  Policy policy_;
  TensorMap expected_;
};

constexpr float kTol = 1e-5f;

}  // namespace

TEST_P(CausalLmParity, UnpaddedLogits) {
  torch::NoGradGuard g;
  for (int i = 0; i < 2; ++i) {
    const std::string k = "single_" + std::to_string(i);
    auto ids = expected_.at(k + ".input_ids").unsqueeze(0);
    auto logits = policy_.lm->lm_logits(policy_.lm->forward_hidden(ids, {}))[0];
    ASSERT_EQ(logits.sizes(), expected_.at(k + ".logits").sizes());
    EXPECT_LE(max_diff(logits, expected_.at(k + ".logits")), kTol) << k;
  }
}

TEST_P(CausalLmParity, LeftPaddedLogits) { expect_batch(policy_.lm, expected_.at("batch.logits"), kTol, "fp32"); }

TEST_P(CausalLmParity, GreedyKvCacheGenerations) {
  const auto got = rarlhf::testing::fixture_greedy(policy_.lm, expected_);
  EXPECT_TRUE(torch::equal(got, expected_.at("greedy.output_ids"))) << got << expected_.at("greedy.output_ids");
}

// Hub checkpoints written before transformers 5 spell the rotary settings rope_theta / rope_scaling
// (GPT-NeoX: rotary_pct / rotary_emb_base); the fixture script wrote that spelling beside the model.
TEST_P(CausalLmParity, LegacyConfigSpellingGivesTheSameModel) {
  const std::string v4 = dir_ + "/config_v4.json";
  if (!fsys::exists(v4)) GTEST_SKIP() << "no legacy spelling for this family";
  CausalLm lm = make_causal_lm_from_file(v4);
  lm->load_hf_state(load_safetensors(dir_ + "/model/model.safetensors"), "model.safetensors");
  expect_batch(lm, expected_.at("batch.logits"), kTol, "config_v4.json");
}

TEST_P(CausalLmParity, SavedPolicyLoadsToTheSameLogits) {
  const std::string out = fsys::temp_directory_path() / ("rarlhf_parity_save_" + GetParam());
  save_policy(policy_, out, "");
  Policy again = load_policy(out, "float32", torch::kCPU);
  EXPECT_EQ(again.lm->config().model_type, policy_.lm->config().model_type);
  expect_batch(again.lm, expected_.at("batch.logits"), kTol, "saved");
  // The written config keeps every key transformers wrote (nothing dropped), architectures set.
  auto orig = nlohmann::json::parse(read_file(dir_ + "/model/config.json"));
  auto saved = nlohmann::json::parse(read_file(out + "/config.json"));
  for (auto it = orig.begin(); it != orig.end(); ++it) {
    if (it.key() == "dtype" || it.key() == "transformers_version") continue;
    EXPECT_TRUE(saved.contains(it.key())) << it.key();
    if (saved.contains(it.key()) && !it.value().is_null()) EXPECT_EQ(saved[it.key()], it.value()) << it.key();
  }
  fsys::remove_all(out);
}

INSTANTIATE_TEST_SUITE_P(Families, CausalLmParity,
                         ::testing::Values("gpt2_tiny", "gptj_tiny", "gptj_fullrot", "neox_parallel",
                                           "neox_sequential", "llama_gqa", "llama_tied_headdim",
                                           "llama_rope_llama3", "llama_rope_linear", "mistral_tiny", "qwen2_tiny",
                                           "smollm2_like"));

// bf16 weights and activations: as far from transformers' bf16 logits as transformers' own bf16 is
// from fp32 (the fixture records 0.029 on logits of magnitude ~1.9).
TEST(CausalLmParityBf16, LlamaGqaWithinBf16Rounding) {
  const std::string dir = kRoot + "llama_gqa";
  if (!fsys::exists(dir + "/expected.safetensors")) GTEST_SKIP() << "fixture missing";
  auto expected = load_safetensors(dir + "/expected.safetensors");
  Policy p = load_policy(dir + "/model", "bfloat16", torch::kCPU);
  torch::NoGradGuard g;
  auto ids = expected.at("batch.input_ids"), mask = expected.at("batch.attention_mask");
  auto logits = p.lm->lm_logits(p.lm->forward_hidden(ids, mask, expected.at("batch.position_ids")));
  for (int64_t b = 0; b < ids.size(0); ++b) {
    auto keep = mask[b].nonzero().squeeze(1);
    auto got = logits[b].index_select(0, keep);
    EXPECT_LE(max_diff(got, expected.at("batch.logits_bf16")[b].index_select(0, keep).to(at::kFloat)), 0.06f);
    EXPECT_LE(max_diff(got, expected.at("batch.logits")[b].index_select(0, keep)), 0.06f);
  }
}

TEST(CausalLm, UnknownModelTypeNamesTheKeyAndTheFamilies) {
  try {
    make_causal_lm({{"model_type", "mamba"}}, "cfg.json");
    FAIL() << "accepted";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("cfg.json: model_type: \"mamba\" is not supported"), std::string::npos) << m;
    EXPECT_NE(m.find("llama"), std::string::npos) << m;
  }
}

TEST(CausalLm, UnsupportedOptionsAreErrorsNamingTheKey) {
  const nlohmann::json llama = {{"model_type", "llama"},     {"hidden_size", 32},           {"num_hidden_layers", 1},
                                {"num_attention_heads", 4},  {"num_key_value_heads", 2},    {"intermediate_size", 64},
                                {"vocab_size", 64},          {"max_position_embeddings", 64}};
  EXPECT_NO_THROW(make_causal_lm(llama, "cfg.json"));
  auto expect_error = [&](nlohmann::json j, const std::string& key) {
    try {
      make_causal_lm(j, "cfg.json");
      ADD_FAILURE() << key << " accepted: " << j.dump();
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("cfg.json: " + key), std::string::npos) << e.what();
    }
  };
  auto with = [&](const char* k, nlohmann::json v) {
    auto j = llama;
    j[k] = std::move(v);
    return j;
  };
  expect_error(with("rope_scaling", {{"rope_type", "yarn"}, {"factor", 4.0}}), "rope_scaling");
  expect_error(with("rope_parameters", {{"rope_type", "dynamic"}, {"factor", 2.0}}), "rope_scaling");
  expect_error(with("rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}}), "rope_scaling.low_freq_factor");
  expect_error(with("num_key_value_heads", 3), "num_key_value_heads");
  expect_error(with("hidden_act", "mish"), "hidden_act");
  expect_error(with("pretraining_tp", 2), "pretraining_tp");
  expect_error(with("eos_token_id", 64), "eos_token_id");
  auto missing = llama;
  missing.erase("intermediate_size");
  expect_error(missing, "intermediate_size");
  expect_error({{"model_type", "gptj"}, {"n_embd", 32}, {"n_layer", 1}, {"n_head", 4}, {"n_positions", 16},
                {"vocab_size", 16}, {"rotary_dim", 12}},
               "rotary_dim");
}

// Mistral's sliding window changes nothing while a sequence fits it; longer ones are refused.
TEST(CausalLm, SlidingWindowBoundsTheSequenceLength) {
  nlohmann::json m = {{"model_type", "mistral"},   {"hidden_size", 16},     {"num_hidden_layers", 1},
                      {"num_attention_heads", 2},  {"intermediate_size", 32}, {"vocab_size", 32},
                      {"max_position_embeddings", 128}, {"sliding_window", 8}};
  CausalLm lm = make_causal_lm(m, "cfg.json");
  EXPECT_EQ(lm->config().n_positions, 8);
  torch::NoGradGuard g;
  EXPECT_NO_THROW(lm->forward_hidden(torch::zeros({1, 8}, torch::kLong), {}));
  EXPECT_THROW(lm->forward_hidden(torch::zeros({1, 9}, torch::kLong), {}), c10::Error);
  m["model_type"] = "qwen2";  // Qwen2 only when use_sliding_window is true
  EXPECT_EQ(make_causal_lm(m, "cfg.json")->config().n_positions, 128);
}

// Ids missing from config.json come from generation_config.json, eos possibly a list.
TEST(CausalLm, GenerationConfigSuppliesMissingTokenIds) {
  const std::string src = kRoot + "llama_gqa/model";
  if (!fsys::exists(src)) GTEST_SKIP() << "fixture missing";
  const std::string dir = fsys::temp_directory_path() / "rarlhf_genconfig_ids";
  fsys::remove_all(dir);
  fsys::create_directories(dir);
  fsys::copy_file(src + "/model.safetensors", dir + "/model.safetensors");
  auto cfg = nlohmann::json::parse(read_file(src + "/config.json"));
  cfg.erase("eos_token_id");
  cfg.erase("bos_token_id");
  std::ofstream(dir + "/config.json") << cfg.dump();
  std::ofstream(dir + "/generation_config.json") << R"({"bos_token_id": 1, "eos_token_id": [2, 5]})";
  Policy p = load_policy(dir, "float32", torch::kCPU);
  EXPECT_EQ(p.lm->config().bos_token_id, 1);
  EXPECT_EQ(p.lm->config().eos_token_id, 2);
  EXPECT_EQ(p.lm->config().eos_token_ids, (std::vector<int64_t>{2, 5}));
  fsys::remove_all(dir);
}

// A model whose config lists several eos ids stops a response at any of them, and suppresses all of
// them until min_new_tokens.
TEST(CausalLm, GenerationStopsAtAnyEosOfTheModel) {
  nlohmann::json j = {{"model_type", "gptj"}, {"n_embd", 16},     {"n_layer", 1},
                      {"n_head", 2},          {"n_positions", 64}, {"vocab_size", 8},
                      {"rotary_dim", 4},      {"eos_token_id", {5, 6}}};
  torch::manual_seed(3);
  CausalLm lm = make_causal_lm(j, "cfg.json");
  {  // GPT-J's lm_head bias makes token 6 (the second eos) by far the most likely, then token 2
    torch::NoGradGuard g;
    auto params = lm->named_parameters();
    params["lm_head.bias"].zero_();
    params["lm_head.bias"][6] = 50.0;
    params["lm_head.bias"][2] = 20.0;
  }
  GenerateConfig cfg;
  cfg.greedy = true;
  cfg.max_new_tokens = 6;
  cfg.min_new_tokens = 2;
  auto res = generate(lm, {{1, 2, 3}}, cfg, /*eos_id=*/5, 0);
  auto ids = res.response_ids[0];
  EXPECT_EQ(ids[0].item<int64_t>(), 2) << ids;  // 6 suppressed before min_new_tokens
  EXPECT_EQ(ids[1].item<int64_t>(), 2) << ids;
  EXPECT_EQ(ids[2].item<int64_t>(), 6) << ids;  // then it ends the response
  EXPECT_EQ(res.response_mask[0].sum().item<int64_t>(), 3) << res.response_mask;
}

// A policy whose tokenizer came as OpenAI's encoder.json + vocab.bpe (the npm assets) is written with
// transformers' names too (vocab.json, merges.txt, tokenizer_config.json), the same vocabulary.
TEST(CausalLm, SavedGpt2TokenizerFilesCarryTransformersNames) {
  const std::string tok = std::string(RARLHF_SOURCE_DIR) + "/../shared/data/gpt2-tokenizer";
  if (!fsys::exists(tok + "/encoder.json") || !fsys::exists(kRoot + "gpt2_tiny/model")) GTEST_SKIP();
  Policy p = load_policy(kRoot + "gpt2_tiny/model", "float32", torch::kCPU);
  const std::string out = fsys::temp_directory_path() / "rarlhf_saved_gpt2_tok";
  save_policy(p, out, tok);
  EXPECT_EQ(read_file(out + "/vocab.json"), read_file(tok + "/encoder.json"));
  EXPECT_EQ(read_file(out + "/merges.txt"), read_file(tok + "/vocab.bpe"));
  auto tc = nlohmann::json::parse(read_file(out + "/tokenizer_config.json"));
  EXPECT_EQ(tc["tokenizer_class"], "GPT2Tokenizer");
  fsys::remove_all(out);
}

TEST(CausalLm, SizesThatCannotBeAllocatedAreRefusedBeforeAllocating) {
  auto message = [](const nlohmann::json& j) {
    try {
      make_causal_lm(j, "cfg.json");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const nlohmann::json gpt2 = {{"model_type", "gpt2"}, {"n_layer", 2}, {"n_head", 2}, {"n_embd", 16},
                               {"n_positions", 32}, {"vocab_size", 21}, {"bos_token_id", 20},
                               {"eos_token_id", 20}};
  EXPECT_EQ(message(gpt2), "no error");
  auto huge = gpt2;
  huge["n_layer"] = 1000000000;  // used to hang while memory grew
  huge["n_embd"] = 768;
  const std::string e = message(huge);
  EXPECT_EQ(e.rfind("cfg.json: n_layer=1000000000, n_embd=768, vocab_size=21 make a model of about 9.44e+15 parameters", 0), 0u) << e;
  EXPECT_NE(e.find("of memory; check the sizes"), std::string::npos) << e;
  auto wide = gpt2;
  wide["n_embd"] = 2147483648LL;  // used to die in LibTorch with a backtrace that never named config.json
  EXPECT_EQ(message(wide), "cfg.json: n_embd=2147483648 is too large (at most 2^31 - 1); check the file");
  nlohmann::json llama = {{"model_type", "llama"}, {"num_hidden_layers", 4}, {"hidden_size", 1 << 20},
                          {"intermediate_size", 1 << 22}, {"num_attention_heads", 8}, {"vocab_size", 32000},
                          {"bos_token_id", 1}, {"eos_token_id", 2}};
  EXPECT_NE(message(llama).find("num_hidden_layers=4, hidden_size=1048576, vocab_size=32000 make a model of"),
            std::string::npos) << message(llama);
}

// Issue #19, item 8: weights stored as integers, or NaN/infinite, used to load (a NaN policy
// generated only EOS and eval reported numbers). Each is an IoError naming the file and tensor.
TEST(CausalLm, IntegerAndNonFiniteWeightsAreRefusedAtLoad) {
  rarlhf::testing::TempDir d("weights_check");
  const std::string good = rarlhf::testing::write_tiny_gpt2(d.path("good"));
  const TensorMap weights = load_safetensors(good + "/model.safetensors");
  auto message = [&](const std::string& name, const std::function<at::Tensor(const std::string&, at::Tensor)>& edit,
                     const std::string& file = "model.safetensors") {
    const std::string dir = d.path(name);
    fsys::create_directories(dir);
    for (const auto& entry : fsys::directory_iterator(good)) {
      fsys::copy_file(entry.path(), dir + "/" + entry.path().filename().string(),
                      fsys::copy_options::overwrite_existing);
    }
    const TensorMap src = file == "model.safetensors" ? weights : load_safetensors(good + "/" + file);
    std::vector<std::pair<std::string, at::Tensor>> out;
    for (const auto& [k, t] : src) out.emplace_back(k, edit(k, t.clone()));
    save_safetensors(dir + "/" + file, out);
    try {
      load_policy(dir, "float32", torch::kCPU);
    } catch (const IoError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message("same", [](const std::string&, at::Tensor t) { return t; }), "no error");
  std::string wte;
  for (const auto& [k, t] : weights) {
    if (k.size() >= 10 && k.compare(k.size() - 10, 10, "wte.weight") == 0) wte = k;
  }
  ASSERT_FALSE(wte.empty());
  EXPECT_EQ(message("int", [&](const std::string& k, at::Tensor t) { return k == wte ? t.to(at::kInt) : t; }),
            d.path("int") + "/model.safetensors: tensor '" + wte + "' is stored as Int; a weight must be F32, F16 or BF16");
  const std::string nan = message("nan", [](const std::string& k, at::Tensor t) {
    if (k.find("h.1.mlp.c_fc.weight") != std::string::npos) t.view(-1)[3] = NAN;
    return t;
  });
  EXPECT_EQ(nan, d.path("nan") + "/model.safetensors: weight 'h.1.mlp.c_fc.weight' has 1 of 1024 values NaN or "
                     "infinite; the checkpoint is corrupt (re-download or re-convert it)");  // [16, 64]
  const std::string inf = message("inf", [](const std::string& k, at::Tensor t) {
    return k.find("ln_f.bias") != std::string::npos ? t.fill_(-INFINITY) : t;
  });
  EXPECT_NE(inf.find("weight 'ln_f.bias' has 16 of 16 values NaN or infinite"), std::string::npos) << inf;
  if (fsys::exists(good + "/value_head.safetensors")) {
    const std::string vh = message(
        "vh", [](const std::string& k, at::Tensor t) { return k == "v_head.summary.bias" ? t.fill_(NAN) : t; },
        "value_head.safetensors");
    EXPECT_NE(vh.find("value_head.safetensors: weight 'summary.bias' has 1 of 1 values NaN"), std::string::npos) << vh;
  }
}
