// BERT / DistilBERT / RoBERTa classifier rewards on checkpoints written here in Hugging Face layout
// (config.json + model.safetensors via the project's save_safetensors + tokenizer files):
//  - hand-set weights whose logits are computed independently in double precision below
//    (queries/keys zero -> uniform attention over the unpadded tokens, FFN zero), which pins
//    embeddings, RoBERTa's position offset, attention masking, residuals, LayerNorm eps and each head;
//  - random weights: shapes, determinism, padded batch == one-by-one, truncation;
//  - bad checkpoints -> errors naming the file and tensor/key.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/io/safetensors.h"
#include "rarlhf/reward/hf_classifier.h"
#include "rarlhf/reward/reward.h"

namespace rarlhf {
namespace {

const std::string kRoot = std::string(RARLHF_BINARY_DIR) + "/test_tmp/classifier";

// Tiny model sizes.
constexpr int64_t kH = 4, kHeads = 2, kI = 8, kP = 16, kLabels = 3;

// WordPiece vocab: [PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3, then words.
const std::vector<std::string> kWordVocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "good", "bad", "movie", "the",
                                             "very", "!", ",", "not", "film", "##s", "a"};

// GPT-2's byte -> printable code point table (Radford et al. 2019, encoder.py's bytes_to_unicode).
std::string byte_char(int b) {
  auto printable = [](int c) { return (c >= 33 && c <= 126) || (c >= 161 && c <= 172) || (c >= 174 && c <= 255); };
  int cp = b;
  if (!printable(b)) {
    int n = 0;
    for (int c = 0; c < b; ++c) n += !printable(c);
    cp = 256 + n;
  }
  std::string s;
  if (cp < 0x80) s += static_cast<char>(cp);
  else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// RoBERTa vocab: <s>=0 <pad>=1 </s>=2 <unk>=3, then the 256 byte symbols, then merged "go", "od".
nlohmann::json roberta_vocab() {
  nlohmann::json v = {{"<s>", 0}, {"<pad>", 1}, {"</s>", 2}, {"<unk>", 3}};
  for (int b = 0; b < 256; ++b) v[byte_char(b)] = 4 + b;
  v["go"] = 260;
  v["od"] = 261;
  return v;
}
constexpr int64_t kRobertaVocab = 262;

std::string arch_dir(const std::string& name) { return kRoot + "/" + name; }

nlohmann::json config_for(const std::string& arch, int64_t layers, int64_t vocab) {
  nlohmann::json id2label = {{"0", "A"}, {"1", "B"}, {"2", "C"}};
  if (arch == "distilbert") {
    return {{"architectures", {"DistilBertForSequenceClassification"}}, {"model_type", "distilbert"},
            {"vocab_size", vocab}, {"dim", kH}, {"n_layers", layers}, {"n_heads", kHeads}, {"hidden_dim", kI},
            {"max_position_embeddings", kP}, {"activation", "gelu"}, {"id2label", id2label},
            {"sinusoidal_pos_embds", false}, {"pad_token_id", 0}};
  }
  nlohmann::json c = {{"architectures", {arch == "bert" ? "BertForSequenceClassification"
                                                         : "RobertaForSequenceClassification"}},
                      {"model_type", arch}, {"vocab_size", vocab}, {"hidden_size", kH},
                      {"num_hidden_layers", layers}, {"num_attention_heads", kHeads}, {"intermediate_size", kI},
                      {"max_position_embeddings", kP}, {"type_vocab_size", arch == "bert" ? 2 : 1},
                      {"hidden_act", "gelu"}, {"layer_norm_eps", 1e-5}, {"id2label", id2label},
                      {"position_embedding_type", "absolute"}};
  c["pad_token_id"] = arch == "roberta" ? 1 : 0;
  return c;
}

// Hugging Face tensor names and shapes for a tiny model of `arch`.
std::vector<std::pair<std::string, std::vector<int64_t>>> hf_layout(const std::string& arch, int64_t layers,
                                                                     int64_t vocab) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  const std::string p = arch + ".";
  out.push_back({p + "embeddings.word_embeddings.weight", {vocab, kH}});
  out.push_back({p + "embeddings.position_embeddings.weight", {kP, kH}});
  if (arch != "distilbert") out.push_back({p + "embeddings.token_type_embeddings.weight", {arch == "bert" ? 2 : 1, kH}});
  out.push_back({p + "embeddings.LayerNorm.weight", {kH}});
  out.push_back({p + "embeddings.LayerNorm.bias", {kH}});
  auto lin = [&](const std::string& n, int64_t o, int64_t i) {
    out.push_back({n + ".weight", {o, i}});
    out.push_back({n + ".bias", {o}});
  };
  auto ln = [&](const std::string& n) {
    out.push_back({n + ".weight", {kH}});
    out.push_back({n + ".bias", {kH}});
  };
  for (int64_t l = 0; l < layers; ++l) {
    if (arch == "distilbert") {
      std::string q = p + "transformer.layer." + std::to_string(l) + ".";
      lin(q + "attention.q_lin", kH, kH);
      lin(q + "attention.k_lin", kH, kH);
      lin(q + "attention.v_lin", kH, kH);
      lin(q + "attention.out_lin", kH, kH);
      ln(q + "sa_layer_norm");
      lin(q + "ffn.lin1", kI, kH);
      lin(q + "ffn.lin2", kH, kI);
      ln(q + "output_layer_norm");
    } else {
      std::string q = p + "encoder.layer." + std::to_string(l) + ".";
      lin(q + "attention.self.query", kH, kH);
      lin(q + "attention.self.key", kH, kH);
      lin(q + "attention.self.value", kH, kH);
      lin(q + "attention.output.dense", kH, kH);
      ln(q + "attention.output.LayerNorm");
      lin(q + "intermediate.dense", kI, kH);
      lin(q + "output.dense", kH, kI);
      ln(q + "output.LayerNorm");
    }
  }
  if (arch == "bert") {
    lin("bert.pooler.dense", kH, kH);
    lin("classifier", kLabels, kH);
  } else if (arch == "distilbert") {
    lin("pre_classifier", kH, kH);
    lin("classifier", kLabels, kH);
  } else {
    lin("classifier.dense", kH, kH);
    lin("classifier.out_proj", kLabels, kH);
  }
  return out;
}

void write_tokenizer(const std::string& dir, const std::string& arch) {
  if (arch == "roberta") {
    write_file_atomic(dir + "/vocab.json", roberta_vocab().dump());
    write_file_atomic(dir + "/merges.txt", "#version: 0.2\ng o\no d\n");
  } else {
    std::string v;
    for (const auto& t : kWordVocab) v += t + "\n";
    write_file_atomic(dir + "/vocab.txt", v);
  }
}

int64_t vocab_of(const std::string& arch) {
  return arch == "roberta" ? kRobertaVocab : static_cast<int64_t>(kWordVocab.size());
}

// Random checkpoint (normal 0.5 weights, LayerNorm weight ~1) in HF layout.
std::string write_random(const std::string& arch, int64_t layers, uint64_t seed, const std::string& name = "") {
  const std::string dir = arch_dir(name.empty() ? "random_" + arch : name);
  make_dirs(dir);
  at::manual_seed(seed);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& [key, shape] : hf_layout(arch, layers, vocab_of(arch))) {
    at::Tensor t = at::randn(shape) * 0.5;
    if (key.find("LayerNorm.weight") != std::string::npos || key.find("layer_norm.weight") != std::string::npos)
      t = t * 0.2 + 1.0;
    tensors.push_back({key, t});
  }
  save_safetensors(dir + "/model.safetensors", tensors);
  write_file_atomic(dir + "/config.json", config_for(arch, layers, vocab_of(arch)).dump(2));
  write_tokenizer(dir, arch);
  return dir;
}

RewardConfig classifier_cfg(const std::string& dir, int64_t label = 1, int64_t batch = 32, int64_t max_len = 512) {
  RewardConfig c;
  c.type = "hf_classifier";
  c.path = dir;
  c.label_index = label;
  c.batch_size = batch;
  c.max_length = max_len;
  return c;
}

// ---------------------------------------------------------------- hand-set model, independent maths

using Vec = std::vector<double>;

Vec layer_norm(const Vec& x, const Vec& g, const Vec& b, double eps) {
  double mean = 0, var = 0;
  for (double v : x) mean += v;
  mean /= x.size();
  for (double v : x) var += (v - mean) * (v - mean);
  var /= x.size();
  Vec y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) / std::sqrt(var + eps) * g[i] + b[i];
  return y;
}
Vec matvec(const std::vector<Vec>& W, const Vec& x, const Vec& b) {
  Vec y(W.size());
  for (size_t o = 0; o < W.size(); ++o) {
    y[o] = b[o];
    for (size_t i = 0; i < x.size(); ++i) y[o] += W[o][i] * x[i];
  }
  return y;
}
at::Tensor to_tensor(const std::vector<Vec>& m) {
  at::Tensor t = at::empty({(int64_t)m.size(), (int64_t)m[0].size()}, at::kFloat);
  for (size_t i = 0; i < m.size(); ++i)
    for (size_t j = 0; j < m[0].size(); ++j) t[i][j] = m[i][j];
  return t;
}
at::Tensor to_tensor(const Vec& v) {
  at::Tensor t = at::empty({(int64_t)v.size()}, at::kFloat);
  for (size_t i = 0; i < v.size(); ++i) t[i] = v[i];
  return t;
}

// Deterministic "random-looking" values in [-1, 1] (no RNG: the expectation below reuses them).
double val(int a, int b, int c) { return std::sin(1.3 * a + 2.1 * b + 0.7 * c + 0.5); }
std::vector<Vec> mat(int rows, int cols, int tag) {
  std::vector<Vec> m(rows, Vec(cols));
  for (int r = 0; r < rows; ++r)
    for (int c = 0; c < cols; ++c) m[r][c] = val(r, c, tag);
  return m;
}
Vec vec(int n, int tag, double base = 0.0, double amp = 1.0) {
  Vec v(n);
  for (int i = 0; i < n; ++i) v[i] = base + amp * val(i, 7, tag);
  return v;
}

// One layer; query/key weights+biases zero (uniform attention over unpadded keys) and FFN zero
// (only its output bias survives). Everything else is set from val(). Returns the expected logits
// of `ids` computed in double.
struct HandSet {
  std::string arch;
  std::vector<Vec> word, pos, type, wv, wo, head1, head2;
  Vec bv, bo, ffn_out_b, emb_g, emb_b, ln1_g, ln1_b, ln2_g, ln2_b, head1_b, head2_b;
  double eps;
  int64_t pad;

  explicit HandSet(const std::string& a) : arch(a) {
    const int V = (int)vocab_of(a);
    word = mat(V, kH, 1);
    pos = mat(kP, kH, 2);
    type = mat(a == "bert" ? 2 : 1, kH, 3);
    wv = mat(kH, kH, 4);
    wo = mat(kH, kH, 5);
    head1 = mat(kH, kH, 6);
    head2 = mat(kLabels, kH, 7);
    bv = vec(kH, 8);
    bo = vec(kH, 9);
    ffn_out_b = vec(kH, 10);
    emb_g = vec(kH, 11, 1.0, 0.3);
    emb_b = vec(kH, 12, 0.0, 0.2);
    ln1_g = vec(kH, 13, 1.0, 0.3);
    ln1_b = vec(kH, 14, 0.0, 0.2);
    ln2_g = vec(kH, 15, 1.0, 0.3);
    ln2_b = vec(kH, 16, 0.0, 0.2);
    head1_b = vec(kH, 17);
    head2_b = vec(kLabels, 18);
    eps = a == "distilbert" ? 1e-12 : 1e-5;
    pad = a == "roberta" ? 1 : 0;
  }

  std::string write() const {
    const std::string dir = arch_dir("handset_" + arch);
    make_dirs(dir);
    std::vector<std::pair<std::string, at::Tensor>> t;
    for (const auto& [key, shape] : hf_layout(arch, 1, vocab_of(arch))) {
      at::Tensor x = at::zeros(shape);  // q/k weights+biases and FFN except its output bias stay 0
      const std::string& name = key;    // C++17 lambdas cannot capture a structured binding (clang)
      auto has = [&](const char* s) { return name.find(s) != std::string::npos; };
      if (has("word_embeddings")) x = to_tensor(word);
      else if (has("position_embeddings")) x = to_tensor(pos);
      else if (has("token_type_embeddings")) x = to_tensor(type);
      else if (has("embeddings.LayerNorm.weight")) x = to_tensor(emb_g);
      else if (has("embeddings.LayerNorm.bias")) x = to_tensor(emb_b);
      else if (has("value.weight") || has("v_lin.weight")) x = to_tensor(wv);
      else if (has("value.bias") || has("v_lin.bias")) x = to_tensor(bv);
      else if (has("attention.output.dense.weight") || has("out_lin.weight")) x = to_tensor(wo);
      else if (has("attention.output.dense.bias") || has("out_lin.bias")) x = to_tensor(bo);
      else if (has("attention.output.LayerNorm.weight") || has("sa_layer_norm.weight")) x = to_tensor(ln1_g);
      else if (has("attention.output.LayerNorm.bias") || has("sa_layer_norm.bias")) x = to_tensor(ln1_b);
      else if (has("layer.0.output.dense.bias") || has("ffn.lin2.bias")) x = to_tensor(ffn_out_b);
      else if (has("layer.0.output.LayerNorm.weight") || has("output_layer_norm.weight")) x = to_tensor(ln2_g);
      else if (has("layer.0.output.LayerNorm.bias") || has("output_layer_norm.bias")) x = to_tensor(ln2_b);
      else if (has("pooler.dense.weight") || has("pre_classifier.weight") || has("classifier.dense.weight"))
        x = to_tensor(head1);
      else if (has("pooler.dense.bias") || has("pre_classifier.bias") || has("classifier.dense.bias"))
        x = to_tensor(head1_b);
      else if (key == "classifier.weight" || has("out_proj.weight")) x = to_tensor(head2);
      else if (key == "classifier.bias" || has("out_proj.bias")) x = to_tensor(head2_b);
      t.push_back({key, x});
    }
    save_safetensors(dir + "/model.safetensors", t);
    auto cfg = config_for(arch, 1, vocab_of(arch));
    if (arch != "distilbert") cfg["layer_norm_eps"] = eps;
    write_file_atomic(dir + "/config.json", cfg.dump(2));
    write_tokenizer(dir, arch);
    return dir;
  }

  Vec expected(const std::vector<int64_t>& ids) const {
    const size_t T = ids.size();
    std::vector<Vec> x(T);
    int64_t seen = 0;
    for (size_t t = 0; t < T; ++t) {
      // BERT/DistilBERT: position t. RoBERTa: pad + 1 + (non-pad tokens so far) (no pads here).
      int64_t p = arch == "roberta" ? pad + 1 + seen++ : (int64_t)t;
      Vec e(kH);
      for (int h = 0; h < kH; ++h) e[h] = word[ids[t]][h] + pos[p][h] + (arch == "distilbert" ? 0.0 : type[0][h]);
      x[t] = layer_norm(e, emb_g, emb_b, eps);
    }
    // Uniform attention: the mean of the values over all (unpadded) tokens.
    Vec mean_v(kH, 0.0);
    for (size_t t = 0; t < T; ++t) {
      Vec v = matvec(wv, x[t], bv);
      for (int h = 0; h < kH; ++h) mean_v[h] += v[h] / T;
    }
    Vec a = matvec(wo, mean_v, bo);
    Vec r(kH);
    for (int h = 0; h < kH; ++h) r[h] = a[h] + x[0][h];
    Vec y = layer_norm(r, ln1_g, ln1_b, eps);
    for (int h = 0; h < kH; ++h) r[h] = ffn_out_b[h] + y[h];
    Vec z = layer_norm(r, ln2_g, ln2_b, eps);
    Vec hdn = matvec(head1, z, head1_b);
    for (double& v : hdn) v = arch == "distilbert" ? std::max(0.0, v) : std::tanh(v);
    return matvec(head2, hdn, head2_b);
  }
};

class ClassifierArchTest : public ::testing::TestWithParam<std::string> {};

TEST_P(ClassifierArchTest, HandSetWeightsGiveIndependentlyComputedLogits) {
  const std::string arch = GetParam();
  HandSet hs(arch);
  ClassifierReward reward(classifier_cfg(hs.write(), 2, 4), at::kCPU);
  const std::vector<std::string> texts = {"good movie", "the film was very bad!", "not", "a good, good films"};
  at::Tensor logits = reward.logits(texts);
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{4, kLabels}));
  for (size_t n = 0; n < texts.size(); ++n) {
    auto ids = reward.encode(texts[n]);
    Vec e = hs.expected(ids);
    for (int64_t l = 0; l < kLabels; ++l)
      EXPECT_NEAR(logits[n][l].item<float>(), e[l], 2e-5) << arch << " text " << n << " label " << l;
  }
  // score = sign * scale * logit[label_index]
  auto cfg = classifier_cfg(arch_dir("handset_" + arch), 2, 4);
  cfg.sign = -1;
  cfg.scale = 3;
  auto r2 = make_reward(cfg, at::kCPU);
  auto s = r2->score(texts);
  for (size_t n = 0; n < texts.size(); ++n) EXPECT_NEAR(s[n], -3.0 * logits[n][2].item<float>(), 1e-5);
}

TEST_P(ClassifierArchTest, RandomCheckpointBatchEqualsSingleAndIsDeterministic) {
  const std::string arch = GetParam();
  const std::string dir = write_random(arch, 2, 7);
  const std::vector<std::string> texts = {"good", "the movie was very very bad , not good !", "films", "",
                                          "a bad film , a good movie"};
  ClassifierReward batched(classifier_cfg(dir, 0, 3), at::kCPU);
  ClassifierReward single(classifier_cfg(dir, 0, 1), at::kCPU);
  at::Tensor a = batched.logits(texts), b = single.logits(texts), c = batched.logits(texts);
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{5, kLabels}));
  EXPECT_TRUE(at::equal(a, c)) << "same inputs, different logits";
  EXPECT_TRUE(at::allclose(a, b, 1e-5, 1e-5)) << a << "\n" << b;
  EXPECT_GT((a[0] - a[1]).abs().max().item<float>(), 1e-3) << "different texts should differ";
  auto s = batched.score(texts);
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_FLOAT_EQ(s[i], a[i][0].item<float>());
}

TEST_P(ClassifierArchTest, TruncatesToMaxLengthAndPositionLimit) {
  const std::string arch = GetParam();
  const std::string dir = write_random(arch, 1, 3);
  std::string long_text;
  for (int i = 0; i < 40; ++i) long_text += "good ";
  ClassifierReward r(classifier_cfg(dir, 0, 2, 8), at::kCPU);
  auto ids = r.encode(long_text);
  ASSERT_EQ(ids.size(), 8u);
  // Model limit: BERT/DistilBERT kP positions; RoBERTa kP - pad - 1.
  ClassifierReward r2(classifier_cfg(dir, 0, 2, 512), at::kCPU);
  EXPECT_EQ(r2.max_tokens(), arch == "roberta" ? kP - 2 : kP);
  EXPECT_EQ(static_cast<int64_t>(r2.encode(long_text).size()), r2.max_tokens());
  auto l = r2.logits({long_text, "bad"});
  EXPECT_TRUE(at::isfinite(l).all().item<bool>());
  if (arch == "roberta") {
    EXPECT_EQ(ids.front(), 0);  // <s>
    EXPECT_EQ(ids.back(), 2);   // </s>
  } else {
    EXPECT_EQ(ids.front(), 2);  // [CLS]
    EXPECT_EQ(ids.back(), 3);   // [SEP]
  }
}

INSTANTIATE_TEST_SUITE_P(Families, ClassifierArchTest, ::testing::Values("bert", "distilbert", "roberta"));

TEST(Classifier, PaddingIsMaskedNotAttended) {
  // The same ids with extra masked padding give the same logits; unmasked, they change.
  const std::string dir = write_random("bert", 2, 11, "mask_bert");
  auto m = SequenceClassifier::load(dir, at::kCPU);
  at::Tensor ids = at::tensor({2, 4, 6, 3}, at::kLong).view({1, 4});
  at::Tensor padded = at::tensor({2, 4, 6, 3, 0, 0, 0}, at::kLong).view({1, 7});
  at::Tensor mask_padded = at::tensor({1, 1, 1, 1, 0, 0, 0}, at::kLong).view({1, 7});
  at::Tensor a = m.forward(ids, at::ones_like(ids));
  at::Tensor b = m.forward(padded, mask_padded);
  at::Tensor c = m.forward(padded, at::ones_like(padded));
  EXPECT_TRUE(at::allclose(a, b, 1e-5, 1e-5));
  EXPECT_GT((a - c).abs().max().item<float>(), 1e-3);
}

// ---------------------------------------------------------------- bad checkpoints

std::string expect_error_text(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a rarlhf::Error";
  return "";
}

TEST(Classifier, BadCheckpointsAreClearErrors) {
  const std::string good = write_random("distilbert", 1, 5, "bad_base");
  const TensorMap base = load_safetensors(good + "/model.safetensors");
  auto cfg = ClassifierConfig::from_file(good + "/config.json");

  // Missing tensor.
  TensorMap missing = base;
  missing.erase("distilbert.transformer.layer.0.ffn.lin1.weight");
  std::string msg = expect_error_text([&] { SequenceClassifier::from_tensors(cfg, missing, "m.safetensors", at::kCPU); });
  EXPECT_NE(msg.find("transformer.layer.0.ffn.lin1.weight"), std::string::npos) << msg;
  EXPECT_NE(msg.find("m.safetensors"), std::string::npos) << msg;

  // Wrong shape.
  TensorMap wrong = base;
  wrong["classifier.weight"] = at::zeros({5, kH});
  msg = expect_error_text([&] { SequenceClassifier::from_tensors(cfg, wrong, "m.safetensors", at::kCPU); });
  EXPECT_NE(msg.find("classifier.weight has shape [5, 4]"), std::string::npos) << msg;

  // Unexpected tensor (e.g. a BERT checkpoint under a DistilBERT config).
  TensorMap extra = base;
  extra["distilbert.encoder.layer.0.attention.self.query.weight"] = at::zeros({kH, kH});
  msg = expect_error_text([&] { SequenceClassifier::from_tensors(cfg, extra, "m.safetensors", at::kCPU); });
  EXPECT_NE(msg.find("unexpected tensor"), std::string::npos) << msg;
  // position_ids buffers are tolerated.
  TensorMap with_buffer = base;
  with_buffer["distilbert.embeddings.position_ids"] = at::arange(kP).view({1, kP});
  EXPECT_NO_THROW(SequenceClassifier::from_tensors(cfg, with_buffer, "m.safetensors", at::kCPU));

  // pytorch_model.bin only -> conversion hint.
  const std::string bin_dir = arch_dir("bin_only");
  make_dirs(bin_dir);
  write_file_atomic(bin_dir + "/config.json", read_file(good + "/config.json"));
  write_file_atomic(bin_dir + "/pytorch_model.bin", "not really a pickle");
  msg = expect_error_text([&] { SequenceClassifier::load(bin_dir, at::kCPU); });
  EXPECT_NE(msg.find("pytorch_model.bin"), std::string::npos) << msg;
  EXPECT_NE(msg.find("safetensors.torch import save_file"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line";

  // No config.json / no weights at all.
  make_dirs(arch_dir("empty"));
  EXPECT_THROW(SequenceClassifier::load(arch_dir("empty"), at::kCPU), IoError);
}

TEST(Classifier, UnsupportedConfigValuesNameTheKey) {
  auto base = config_for("bert", 1, 10);
  auto check = [&](nlohmann::json j, const std::string& key) {
    try {
      ClassifierConfig::from_json_text(j.dump(), "cfg.json");
      ADD_FAILURE() << "expected ConfigError for " << key;
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("cfg.json: " + key), std::string::npos) << e.what();
    }
  };
  auto j = base;
  j["hidden_act"] = "swish";
  check(j, "hidden_act");
  j = base;
  j["model_type"] = "xlnet";
  check(j, "model_type");
  j = base;
  j["position_embedding_type"] = "relative_key";
  check(j, "position_embedding_type");
  j = base;
  j["architectures"] = {"BertForMaskedLM"};
  check(j, "architectures");
  j = base;
  j.erase("hidden_size");
  check(j, "hidden_size");
  j = base;
  j["num_attention_heads"] = 3;
  check(j, "num_attention_heads");
  EXPECT_THROW(ClassifierConfig::from_json_text("{oops", "cfg.json"), IoError);
}

TEST(Classifier, LabelIndexOutOfRangeIsConfigError) {
  const std::string dir = write_random("bert", 1, 5, "label_range");
  std::string msg = expect_error_text([&] { make_reward(classifier_cfg(dir, 3), at::kCPU); });
  EXPECT_NE(msg.find("reward.label_index"), std::string::npos) << msg;
}

// ---------------------------------------------------------------- parity with transformers

// Fixtures from scripts/make_parity_fixtures.py (transformers on CPU, float32):
// tests/fixtures/parity/<name>_tiny/model/ (HF dir) + expected.safetensors (input_ids,
// attention_mask [, token_type_ids] right-padded, logits [B, num_labels]).
TEST(Classifier, ParityWithTransformersFixtures) {
  const std::string root = std::string(RARLHF_SOURCE_DIR) + "/tests/fixtures/parity/";
  int found = 0;
  for (const char* name : {"distilbert_tiny", "bert_tiny", "roberta_tiny"}) {
    const std::string dir = root + name;
    if (!file_exists(dir + "/expected.safetensors")) continue;
    ++found;
    auto model = SequenceClassifier::load(dir + "/model", at::kCPU);
    TensorMap exp = load_safetensors(dir + "/expected.safetensors");
    at::Tensor tt = exp.count("token_type_ids") ? exp["token_type_ids"] : at::Tensor();
    at::Tensor got = model.forward(exp.at("input_ids"), exp.at("attention_mask"), tt);
    const at::Tensor& want = exp.at("logits");
    ASSERT_EQ(got.sizes(), want.sizes()) << name;
    double diff = (got - want).abs().max().item<double>();
    std::printf("[ parity   ] %-16s logits %s max |diff| %.3g\n", name, c10::str(want.sizes()).c_str(), diff);
    EXPECT_LT(diff, 1e-4) << name << "\n" << got << "\n" << want;
    // The reward path (batched, padded by us) on the unpadded rows of the single-segment fixtures.
    if (!tt.defined()) {
      at::Tensor ids = exp.at("input_ids"), mask = exp.at("attention_mask");
      for (int64_t b = 0; b < ids.size(0); ++b) {
        int64_t n = mask[b].sum().item<int64_t>();
        at::Tensor one = model.forward(ids[b].slice(0, 0, n).unsqueeze(0), at::ones({1, n}, at::kLong));
        EXPECT_LT((one[0] - want[b]).abs().max().item<double>(), 1e-4) << name << " row " << b << " alone";
      }
    }
  }
  if (found == 0) GTEST_SKIP() << "no parity fixtures under " << root;
}

}  // namespace
}  // namespace rarlhf
