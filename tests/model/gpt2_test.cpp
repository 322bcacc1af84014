// GPT-2 module: HF fixtures load in both key styles and match a naive per-sequence, per-head
// reference written straight from the GPT-2 equations; KV-cache chunks == full recompute; a
// left-padded batch == each sequence alone; save_policy -> load_policy keeps logits bit-identical;
// unsupported config.json values are errors naming the key.
#include "rarlhf/model/gpt2.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"

namespace fs = std::filesystem;
using namespace rarlhf;

namespace {

const std::string kData = std::string(RARLHF_SOURCE_DIR) + "/../shared/data/";
// The HF fixtures live outside the repo (../shared/data); machines without them skip these tests.
#define SKIP_WITHOUT_SHARED_DATA() \
  if (!fs::exists(kData + "tiny-gpt2-vocab21")) GTEST_SKIP() << kData << " missing (shared test data)"

std::string temp_dir(const std::string& name) {
  auto d = fs::temp_directory_path() / ("rarlhf_gpt2_" + std::to_string(::getpid())) / name;
  fs::create_directories(d.parent_path());
  return d.string();
}

Gpt2Config small_config() {
  Gpt2Config c;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_embd = 32;
  c.n_positions = 64;
  c.vocab_size = 97;
  c.eos_token_id = c.bos_token_id = 96;
  return c;
}

// Reference forward for ONE unpadded sequence, from the HF state dict, written independently of
// gpt2.cpp: explicit LayerNorm, per-head loops, tanh-GELU formula, causal softmax per row.
at::Tensor reference_logits(const TensorMap& sd_in, const Gpt2Config& c, const std::vector<int64_t>& ids) {
  auto get = [&](const std::string& k) {
    if (sd_in.count(k)) return sd_in.at(k).to(torch::kDouble);
    return sd_in.at("transformer." + k).to(torch::kDouble);
  };
  auto ln = [&](const at::Tensor& x, const std::string& p) {
    auto mu = x.mean(-1, true);
    auto var = (x - mu).pow(2).mean(-1, true);
    return (x - mu) / torch::sqrt(var + c.layer_norm_epsilon) * get(p + ".weight") + get(p + ".bias");
  };
  const int64_t T = ids.size(), C = c.n_embd, H = c.n_head, D = C / H;
  auto idt = torch::tensor(ids);
  auto x = get("wte.weight").index_select(0, idt) + get("wpe.weight").narrow(0, 0, T);  // [T, C]
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = "h." + std::to_string(l);
    auto h = ln(x, p + ".ln_1");
    auto qkv = h.matmul(get(p + ".attn.c_attn.weight")) + get(p + ".attn.c_attn.bias");  // [T, 3C]
    auto out = torch::zeros({T, C}, torch::kDouble);
    for (int64_t hd = 0; hd < H; ++hd) {
      auto q = qkv.narrow(1, hd * D, D), k = qkv.narrow(1, C + hd * D, D), v = qkv.narrow(1, 2 * C + hd * D, D);
      for (int64_t i = 0; i < T; ++i) {
        auto s = k.narrow(0, 0, i + 1).matmul(q[i]) / std::sqrt(double(D));  // [i+1]
        auto w = torch::exp(s - s.max());
        w = w / w.sum();
        out[i].narrow(0, hd * D, D).copy_(w.matmul(v.narrow(0, 0, i + 1)));
      }
    }
    x = x + out.matmul(get(p + ".attn.c_proj.weight")) + get(p + ".attn.c_proj.bias");
    auto m = ln(x, p + ".ln_2").matmul(get(p + ".mlp.c_fc.weight")) + get(p + ".mlp.c_fc.bias");
    m = 0.5 * m * (1 + torch::tanh(std::sqrt(2.0 / M_PI) * (m + 0.044715 * m.pow(3))));
    x = x + m.matmul(get(p + ".mlp.c_proj.weight")) + get(p + ".mlp.c_proj.bias");
  }
  return ln(x, "ln_f").matmul(get("wte.weight").t());  // [T, V]
}

TensorMap state_of(Gpt2& m) {
  TensorMap sd;
  for (auto& [k, v] : m->hf_state()) sd.emplace(k, v.detach().clone());
  return sd;
}

at::Tensor logits_of(const CausalLm& m, const std::vector<int64_t>& ids) {
  torch::NoGradGuard g;
  auto t = torch::tensor(ids).unsqueeze(0);
  return m->lm_logits(m->forward_hidden(t, {}))[0];
}

}  // namespace

TEST(Gpt2, MatchesNaiveReference) {
  torch::manual_seed(1);
  auto cfg = small_config();
  Gpt2 m(cfg);
  // Non-trivial LN and bias values so that every parameter matters.
  {
    torch::NoGradGuard g;
    for (auto& p : m->parameters()) p.add_(torch::randn_like(p) * 0.1);
  }
  std::vector<int64_t> ids = {5, 17, 3, 3, 96, 40, 12, 0, 88};
  auto ref = reference_logits(state_of(m), cfg, ids).to(torch::kFloat);
  auto got = logits_of(m, ids);
  EXPECT_EQ(got.sizes(), ref.sizes());
  EXPECT_TRUE(torch::allclose(got, ref, 1e-4, 1e-5)) << (got - ref).abs().max();
}

TEST(Gpt2, LoadsBothKeyStylesFromFixtures) {
  SKIP_WITHOUT_SHARED_DATA();
  for (const char* name : {"fake-gpt2-hf", "tiny-gpt2-vocab21"}) {
    const std::string dir = kData + name;
    auto cfg = Gpt2Config::from_file(dir + "/config.json");
    EXPECT_EQ(cfg.n_layer, 1);
    EXPECT_EQ(cfg.n_embd, 2);
    Gpt2 m(cfg);
    auto sd = load_safetensors(dir + "/model.safetensors");
    m->load_hf_state(sd, dir);
    // The loaded weights are the file's, and the forward equals the reference on them.
    EXPECT_TRUE(torch::equal(m->wte(), sd.count("wte.weight") ? sd.at("wte.weight") : sd.at("transformer.wte.weight")));
    std::vector<int64_t> ids = {1, 4, 7, 2, 19, 20};
    auto ref = reference_logits(sd, cfg, ids).to(torch::kFloat);
    auto got = logits_of(m, ids);
    EXPECT_TRUE(torch::allclose(got, ref, 1e-4, 1e-5)) << name << " " << (got - ref).abs().max();
  }
  auto tiny = Gpt2Config::from_file(kData + "tiny-gpt2-vocab21/config.json");
  EXPECT_EQ(tiny.vocab_size, 21);
  EXPECT_EQ(tiny.eos_token_id, 20);
}

TEST(Gpt2, KvCacheChunksEqualFullRecompute) {
  torch::manual_seed(2);
  Gpt2 m(small_config());
  torch::NoGradGuard g;
  auto ids = torch::randint(0, 97, {3, 12});
  auto full = m->lm_logits(m->forward_hidden(ids, {}));  // [3, 12, V]
  for (int64_t capacity : {0, 20}) {
    KVCache cache;
    if (capacity) cache.reserve(capacity);
    std::vector<at::Tensor> parts;
    int64_t pos = 0;
    for (int64_t len : {5, 1, 3, 1, 2}) {
      parts.push_back(m->lm_logits(m->forward_hidden(ids.narrow(1, pos, len), {}, {}, &cache)));
      pos += len;
      EXPECT_EQ(cache.length(), pos);
    }
    auto inc = torch::cat(parts, 1);
    EXPECT_TRUE(torch::allclose(inc, full, 1e-5, 1e-5)) << "capacity " << capacity << " "
                                                        << (inc - full).abs().max();
  }
}

// Under NoGradGuard the CPU products go through cpu_linear (sampling, scoring); with autograd they go
// through BLAS (training). Both must give the same logits up to fp32 rounding.
TEST(Gpt2, InferenceKernelsMatchTheAutogradPath) {
  torch::manual_seed(7);
  Gpt2 m(small_config());
  auto ids = torch::randint(0, 97, {5, 11});
  auto trained = m->lm_logits(m->forward_hidden(ids, {}));
  ASSERT_TRUE(trained.requires_grad());
  at::Tensor sampled;
  {
    torch::NoGradGuard g;
    sampled = m->lm_logits(m->forward_hidden(ids, {}));
  }
  EXPECT_TRUE(torch::allclose(sampled, trained.detach(), 1e-5, 1e-5)) << (sampled - trained).abs().max();
}

TEST(Gpt2, LeftPaddedBatchEqualsSingleSequences) {
  torch::manual_seed(3);
  Gpt2 m(small_config());
  torch::NoGradGuard g;
  std::vector<std::vector<int64_t>> seqs = {{4, 8, 15, 16, 23, 42}, {7, 7}, {1, 2, 3, 4}, {9}};
  const int64_t B = seqs.size(), P = 6, pad = 96;
  auto ids = torch::full({B, P}, pad, torch::kLong);
  auto mask = torch::zeros({B, P}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) {
    int64_t n = seqs[b].size();
    ids[b].narrow(0, P - n, n).copy_(torch::tensor(seqs[b]));
    mask[b].narrow(0, P - n, n).fill_(1);
  }
  auto batch = m->lm_logits(m->forward_hidden(ids, mask));  // [B, P, V]
  EXPECT_TRUE(torch::isfinite(batch).all().item<bool>());  // all-padding rows stay finite
  // Then continue every row by 3 tokens through the cache: positions must keep counting per row.
  KVCache cache;
  m->forward_hidden(ids, mask, {}, &cache);
  auto next = torch::tensor({{11, 12, 13}, {21, 22, 23}, {31, 32, 33}, {41, 42, 43}});
  auto mask2 = torch::cat({mask, torch::ones({B, 3}, torch::kLong)}, 1);
  auto cont = m->lm_logits(m->forward_hidden(next, mask2, {}, &cache));  // [B, 3, V]
  for (int64_t b = 0; b < B; ++b) {
    int64_t n = seqs[b].size();
    auto single = logits_of(m, seqs[b]);
    auto got = batch[b].narrow(0, P - n, n);
    EXPECT_TRUE(torch::allclose(got, single, 1e-5, 1e-5)) << "row " << b << " " << (got - single).abs().max();
    auto ext = seqs[b];
    for (int64_t t = 0; t < 3; ++t) ext.push_back(next[b][t].item<int64_t>());
    auto single_ext = logits_of(m, ext).narrow(0, n, 3);
    EXPECT_TRUE(torch::allclose(cont[b], single_ext, 1e-5, 1e-5)) << "row " << b;
  }
}

TEST(Gpt2, ExplicitPositionIdsOverrideTheMask) {
  torch::manual_seed(4);
  Gpt2 m(small_config());
  torch::NoGradGuard g;
  auto ids = torch::randint(0, 97, {1, 5});
  auto a = m->forward_hidden(ids, {}, torch::arange(5).unsqueeze(0));
  auto b = m->forward_hidden(ids, {});
  auto c = m->forward_hidden(ids, {}, torch::arange(3, 8).unsqueeze(0));
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::allclose(a, c));
}

TEST(Gpt2, Bfloat16GivesFloat32LogitsCloseToFloat32) {
  torch::manual_seed(5);
  Gpt2 m(small_config());
  auto ids = std::vector<int64_t>{3, 1, 4, 1, 5, 9, 2, 6};
  auto ref = logits_of(m, ids);
  auto m16 = clone_gpt2(m);
  m16->to(torch::kBFloat16);
  auto got = logits_of(m16, ids);
  EXPECT_EQ(got.scalar_type(), torch::kFloat);
  EXPECT_LT((got - ref).abs().max().item<float>(), 0.05f * ref.abs().max().item<float>());
  EXPECT_GT((got - ref).abs().max().item<float>(), 0.0f);  // it really ran in bf16
}

TEST(Gpt2, SavePolicyThenLoadGivesIdenticalLogits) {
  SKIP_WITHOUT_SHARED_DATA();
  torch::manual_seed(6);
  // Start from the shared HF fixture so tokenizer files are copied too.
  const std::string src = kData + "tiny-gpt2-vocab21";
  Policy p = load_policy(src, "float32", torch::kCPU);
  {
    torch::NoGradGuard g;
    for (auto& t : p.lm->parameters()) t.add_(torch::randn_like(t) * 0.3);  // "trained"
  }
  const std::string out = temp_dir("policy");
  save_policy(p, out, src);
  save_policy(p, out, src);  // overwriting an existing checkpoint works
  EXPECT_FALSE(fs::exists(out + ".tmp"));
  for (const char* f : {"config.json", "model.safetensors", "value_head.safetensors", "vocab.json", "merges.txt"}) {
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  }
  auto cfg = nlohmann::json::parse(read_file(out + "/config.json"));
  EXPECT_EQ(cfg["model_type"], "gpt2");
  EXPECT_EQ(cfg["architectures"][0], "GPT2LMHeadModel");
  EXPECT_EQ(cfg["torch_dtype"], "float32");
  auto keys = load_safetensors(out + "/model.safetensors");
  EXPECT_TRUE(keys.count("transformer.h.0.attn.c_attn.weight"));
  EXPECT_EQ(keys.at("transformer.h.0.attn.c_attn.weight").sizes(), (std::vector<int64_t>{2, 6}));  // Conv1D [in,out]
  EXPECT_FALSE(keys.count("lm_head.weight"));

  Policy q = load_policy(out, "float32", torch::kCPU);
  std::vector<int64_t> ids = {0, 5, 9, 13, 20, 2};
  EXPECT_TRUE(torch::equal(logits_of(p.lm, ids), logits_of(q.lm, ids)));
  auto h = torch::randn({2, 3, 2});
  torch::NoGradGuard g;
  EXPECT_TRUE(torch::equal(p.value_head->forward(h), q.value_head->forward(h)));
  EXPECT_EQ(q.value_head->forward(h).sizes(), (std::vector<int64_t>{2, 3}));
}

TEST(Gpt2, ConfigErrorsNameTheKey) {
  SKIP_WITHOUT_SHARED_DATA();
  auto base = nlohmann::json::parse(read_file(kData + "tiny-gpt2-vocab21/config.json"));
  auto expect_error = [&](const std::string& key, const nlohmann::json& value) {
    auto j = base;
    j[key] = value;
    try {
      Gpt2Config::from_json(j, "cfg.json");
      ADD_FAILURE() << key << " accepted";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("cfg.json: " + key), std::string::npos) << e.what();
    }
  };
  expect_error("activation_function", "relu");
  expect_error("add_cross_attention", true);
  expect_error("reorder_and_upcast_attn", true);
  expect_error("scale_attn_by_inverse_layer_idx", true);
  expect_error("tie_word_embeddings", false);
  expect_error("model_type", "llama");
  expect_error("n_head", 3);  // 2 not divisible by 3
  expect_error("n_layer", "two");
  auto j = base;
  j.erase("n_embd");
  EXPECT_THROW(Gpt2Config::from_json(j, "cfg.json"), ConfigError);
  EXPECT_NO_THROW(Gpt2Config::from_json(base, "cfg.json"));
}

TEST(Gpt2, LoadStateErrorsNameTheTensor) {
  SKIP_WITHOUT_SHARED_DATA();
  auto cfg = Gpt2Config::from_file(kData + "tiny-gpt2-vocab21/config.json");
  auto sd = load_safetensors(kData + "tiny-gpt2-vocab21/model.safetensors");
  Gpt2 m(cfg);
  auto missing = sd;
  missing.erase("h.0.ln_2.bias");
  EXPECT_THROW(
      {
        try {
          m->load_hf_state(missing, "x.safetensors");
        } catch (const IoError& e) {
          EXPECT_NE(std::string(e.what()).find("h.0.ln_2.bias"), std::string::npos);
          throw;
        }
      },
      IoError);
  auto wrong = sd;
  wrong["wte.weight"] = torch::zeros({22, 2});
  EXPECT_THROW(m->load_hf_state(wrong, "x"), IoError);
  auto extra = sd;
  extra["h.0.attn.q_proj.weight"] = torch::zeros({2});
  EXPECT_THROW(m->load_hf_state(extra, "x"), IoError);
  EXPECT_THROW(load_policy(kData + "tiny-gpt2-vocab21", "float64", torch::kCPU), ConfigError);
  EXPECT_THROW(load_policy(kData + "does-not-exist", "float32", torch::kCPU), IoError);
}

TEST(Gpt2, TiedHeadMayBeStoredAsLmHead) {
  SKIP_WITHOUT_SHARED_DATA();
  auto cfg = Gpt2Config::from_file(kData + "fake-gpt2-hf/config.json");
  auto sd = load_safetensors(kData + "fake-gpt2-hf/model.safetensors");
  auto renamed = sd;
  renamed["lm_head.weight"] = renamed.at("transformer.wte.weight");
  renamed.erase("transformer.wte.weight");
  Gpt2 a(cfg), b(cfg);
  a->load_hf_state(sd);
  b->load_hf_state(renamed);
  EXPECT_TRUE(torch::equal(a->wte(), b->wte()));
}

// Dropout (SFT): the rates come from config.json (HF's GPT-2 default 0.1 where a key is absent),
// apply in training mode only (eval mode is bit-identical to no dropout), are reproducible from
// torch's seed, and a family that does not apply them refuses non-zero rates instead of ignoring them.
TEST(Gpt2, DropoutFromConfigInTrainingModeOnly) {
  torch::manual_seed(4);
  auto cfg = small_config();
  Gpt2 m(cfg);
  const DropoutRates defaults = m->config_dropout();
  EXPECT_DOUBLE_EQ(defaults.embd, 0.1);
  EXPECT_DOUBLE_EQ(defaults.attn, 0.1);
  EXPECT_DOUBLE_EQ(defaults.resid, 0.1);
  nlohmann::json j = cfg.to_json();
  j["attn_pdrop"] = 0.25;
  j["embd_pdrop"] = 0.0;
  Gpt2 m2(Gpt2Config::from_json(j, "config.json"));
  EXPECT_DOUBLE_EQ(m2->config_dropout().attn, 0.25);
  EXPECT_DOUBLE_EQ(m2->config_dropout().embd, 0.0);
  EXPECT_DOUBLE_EQ(m2->config_dropout().resid, 0.1);

  const std::vector<int64_t> ids = {5, 17, 3, 3, 96, 40, 12, 0, 88};
  m->eval();
  const at::Tensor plain = logits_of(m, ids);
  m->set_dropout(DropoutRates{0.2, 0.2, 0.2}, "sft.dropout");
  EXPECT_TRUE(torch::equal(logits_of(m, ids), plain));  // eval mode: no dropout
  m->train();
  torch::manual_seed(9);
  const at::Tensor a = logits_of(m, ids);
  torch::manual_seed(9);
  const at::Tensor b = logits_of(m, ids);
  torch::manual_seed(10);
  const at::Tensor c = logits_of(m, ids);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::allclose(a, plain, 1e-3, 1e-3));
  EXPECT_FALSE(torch::allclose(a, c, 1e-3, 1e-3));
  for (const DropoutRates& one : {DropoutRates{0.2, 0, 0}, DropoutRates{0, 0.2, 0}, DropoutRates{0, 0, 0.2}}) {
    m->set_dropout(one, "sft.dropout");  // each of the three sites on its own changes the output
    EXPECT_FALSE(torch::allclose(logits_of(m, ids), plain, 1e-4, 1e-4));
  }
  m->set_dropout(DropoutRates{}, "sft.dropout");
  EXPECT_TRUE(torch::equal(logits_of(m, ids), plain));  // training mode, rates 0
  EXPECT_THROW(m->set_dropout(DropoutRates{1.0, 0, 0}, "sft.dropout"), ConfigError);

  CausalLm llama = make_causal_lm_from_file(std::string(RARLHF_SOURCE_DIR) + "/configs/models/tiny-llama/config.json");
  EXPECT_DOUBLE_EQ(llama->config_dropout().attn, 0.0);
  llama->set_dropout(llama->config_dropout(), "sft.dropout");  // zero: fine
  try {
    llama->set_dropout(DropoutRates{0.1, 0.1, 0.1}, "sft.dropout");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("sft.dropout: ", 0), 0u) << msg;
    EXPECT_NE(msg.find("llama"), std::string::npos) << msg;
  }
}
