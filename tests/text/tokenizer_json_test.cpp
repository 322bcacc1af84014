// BpeTokenizer on Hugging Face tokenizer.json files of each family's style against `tokenizers` itself:
// tests/fixtures/tokenizers/<style>/expected.json holds what tokenizers 0.23 encodes (with and without
// special tokens) and decodes for ~200 strings (scripts/make_tokenizer_fixtures.py). Also: unsupported
// components are one-line IoErrors naming the JSON path, and load_tokenizer() picks the right files.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/text/bpe_tokenizer.h"
#include "rarlhf/text/sentencepiece.h"
#include "rarlhf/text/tokenizer.h"

namespace rarlhf {
namespace {

const std::string kFixtures = std::string(RARLHF_SOURCE_DIR) + "/tests/fixtures/tokenizers";
const std::string kData = std::string(RARLHF_SOURCE_DIR) + "/../shared/data";

std::string scratch_dir(const std::string& name) {
  std::string dir = std::string(RARLHF_BINARY_DIR) + "/test_text_scratch/tokenizer_json/" + name;
  make_dirs(dir);
  return dir;
}

void write(const std::string& path, const std::string& content) { std::ofstream(path, std::ios::binary) << content; }

std::string show(const std::string& s) { return nlohmann::json(s).dump(); }

class TokenizerJsonParity : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerJsonParity, IdsAndDecodeMatchTokenizers) {
  const std::string dir = kFixtures + "/" + GetParam();
  nlohmann::json expected = nlohmann::json::parse(read_file(dir + "/expected.json"));
  BpeTokenizer tok = BpeTokenizer::from_dir(dir);
  EXPECT_EQ(tok.vocab_size(), expected["vocab_size"].get<int64_t>());
  EXPECT_EQ(tok.bos_id(), expected["bos_id"].get<int64_t>());
  EXPECT_EQ(tok.pad_id(), expected["pad_id"].get<int64_t>());
  if (expected["eos_id"].get<int64_t>() >= 0) {
    EXPECT_EQ(tok.eos_id(), expected["eos_id"].get<int64_t>());
  }
  const auto& cases = expected["cases"];
  ASSERT_GE(cases.size(), 150u);
  size_t ids_ok = 0, special_ok = 0, decode_ok = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"].get<std::string>();
    auto ids = c["ids"].get<std::vector<int64_t>>();
    auto ids_special = c["ids_special"].get<std::vector<int64_t>>();
    auto got = tok.encode(text);
    ids_ok += got == ids;
    EXPECT_EQ(got, ids) << GetParam() << ": " << show(text);
    auto got_special = tok.encode(text, /*add_special_tokens=*/true);
    special_ok += got_special == ids_special;
    EXPECT_EQ(got_special, ids_special) << GetParam() << ": " << show(text);
    EXPECT_EQ(tok.encode(text, false), ids);
    std::string dec = tok.decode(ids);
    decode_ok += dec == c["decoded"].get<std::string>();
    EXPECT_EQ(dec, c["decoded"].get<std::string>()) << GetParam() << ": " << show(text);
    EXPECT_EQ(tok.decode(ids_special), c["decoded_special"].get<std::string>()) << GetParam() << ": " << show(text);
  }
  EXPECT_EQ(ids_ok, cases.size());
  EXPECT_EQ(special_ok, cases.size());
  EXPECT_EQ(decode_ok, cases.size());
}

INSTANTIATE_TEST_SUITE_P(Styles, TokenizerJsonParity,
                         ::testing::Values("gpt2", "llama3", "qwen2", "smollm2", "llama2", "mistral", "metaspace"));

// The fixtures exercise what they claim: byte fallback, unk fusing, ignore_merges, lstrip/rstrip.
TEST(TokenizerJson, FixturesCoverTheirFeatures) {
  auto llama2 = BpeTokenizer::from_dir(kFixtures + "/llama2");
  int64_t b0 = llama2.token_to_id("<0xF0>");
  ASSERT_GE(b0, 0);
  auto ids = llama2.encode("\xF0\x9F\x98\x80");  // an emoji the 900-token vocab lacks: its 4 bytes
  EXPECT_NE(std::find(ids.begin(), ids.end(), b0), ids.end());
  EXPECT_EQ(llama2.decode(ids), "\xF0\x9F\x98\x80");  // the Prepend'ed "▁" is a space that Strip removes

  auto meta = BpeTokenizer::from_dir(kFixtures + "/metaspace");
  int64_t unk = meta.token_to_id("<unk>");
  auto u = meta.encode("\xE6\x97\xA5\xE6\x9C\xAC");  // two unknown characters fuse into one <unk>
  EXPECT_EQ(std::count(u.begin(), u.end(), unk), 1);

  auto llama3 = BpeTokenizer::from_dir(kFixtures + "/llama3");
  EXPECT_EQ(llama3.encode(" zyzzyva"), (std::vector<int64_t>{llama3.token_to_id("\xC4\xA0zyzzyva")}));
  EXPECT_EQ(llama3.encode("hi", true).front(), llama3.bos_id());

  auto gpt2 = BpeTokenizer::from_dir(kFixtures + "/gpt2");
  int64_t tool = gpt2.token_to_id("<tool>");
  auto t = gpt2.encode("x   <tool>");  // lstrip: the spaces before it belong to the token
  EXPECT_EQ(t, (std::vector<int64_t>{gpt2.token_to_id("x"), tool}));
}

// A copy shares the model; a Tokenizer& works like the concrete class.
TEST(TokenizerJson, CopyableAndUsableThroughTheInterface) {
  BpeTokenizer a = BpeTokenizer::from_dir(kFixtures + "/qwen2");
  BpeTokenizer b = a;
  const Tokenizer& t = b;
  EXPECT_EQ(t.encode("Hello world"), a.encode("Hello world"));
  EXPECT_EQ(t.decode(t.encode("caf\xC3\xA9")), "caf\xC3\xA9");
  EXPECT_EQ(t.eos_id(), a.token_to_id("<|im_end|>"));
  EXPECT_EQ(t.pad_id(), a.token_to_id("<|endoftext|>"));
  EXPECT_EQ(t.bos_id(), -1);
}

void expect_io_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no IoError";
  } catch (const IoError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

// The gpt2 fixture's tokenizer.json with one component replaced.
std::string with(const std::string& name, const std::function<void(nlohmann::json&)>& edit) {
  nlohmann::json j = nlohmann::json::parse(read_file(kFixtures + "/gpt2/tokenizer.json"));
  edit(j);
  std::string dir = scratch_dir(name);
  write(dir + "/tokenizer.json", j.dump());
  return dir;
}

TEST(TokenizerJson, UnsupportedComponentsNameTheirPath) {
  expect_io_error([&] {
    BpeTokenizer::from_dir(with("punct", [](nlohmann::json& j) {
      j["pre_tokenizer"] = {{"type", "Sequence"},
                            {"pretokenizers", {{{"type", "Digits"}, {"individual_digits", true}}, {{"type", "Punctuation"}}}}};
    }));
  }, {"tokenizer.json", "pre_tokenizer.pretokenizers[1].type", "\"Punctuation\" is not supported"});
  expect_io_error([&] {
    BpeTokenizer::from_dir(with("bert_norm", [](nlohmann::json& j) { j["normalizer"] = {{"type", "BertNormalizer"}}; }));
  }, {"tokenizer.json", "normalizer.type", "BertNormalizer"});
  expect_io_error([&] {
    BpeTokenizer::from_dir(with("wp_dec", [](nlohmann::json& j) {
      j["decoder"] = {{"type", "Sequence"}, {"decoders", {{{"type", "WordPiece"}, {"prefix", "##"}}}}};
    }));
  }, {"tokenizer.json", "decoder.decoders[0].type", "WordPiece"});
  expect_io_error([&] {
    BpeTokenizer::from_dir(with("unigram", [](nlohmann::json& j) { j["model"]["type"] = "Unigram"; }));
  }, {"tokenizer.json", "model.type", "Unigram"});
  expect_io_error([&] {
    BpeTokenizer::from_dir(with("suffix", [](nlohmann::json& j) { j["model"]["end_of_word_suffix"] = "</w>"; }));
  }, {"tokenizer.json", "model.end_of_word_suffix"});
  expect_io_error([&] {
    BpeTokenizer::from_dir(with("bad_regex", [](nlohmann::json& j) {
      j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(unclosed"}}}, {"behavior", "Isolated"}};
    }));
  }, {"tokenizer.json", "pre_tokenizer.pattern.Regex", "does not compile"});
  expect_io_error([&] {
    BpeTokenizer::from_dir(with("bad_behavior", [](nlohmann::json& j) {
      j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}};
    }));
  }, {"tokenizer.json", "pre_tokenizer.behavior", "Sideways"});
  expect_io_error([&] {
    BpeTokenizer::from_dir(with("after_bytelevel", [](nlohmann::json& j) {
      j["pre_tokenizer"] = {{"type", "Sequence"},
                            {"pretokenizers", {{{"type", "ByteLevel"}}, {{"type", "Digits"}}}}};
    }));
  }, {"tokenizer.json", "pre_tokenizer.pretokenizers[1]", "ByteLevel must come last"});
  std::string dir = with("bad_config", [](nlohmann::json&) {});
  write(dir + "/tokenizer_config.json", R"({"eos_token": "<|no such token|>"})");
  expect_io_error([&] { BpeTokenizer::from_dir(dir); }, {"tokenizer_config.json", "eos_token", "<|no such token|>"});
}

// Split behaviours and invert, on a tiny byte-level vocab (every piece encodes to its bytes' ids),
// checked through decode of each piece boundary: the pieces are what tokenizers documents.
TEST(TokenizerJson, SplitBehaviours) {
  auto pieces = [&](const std::string& behavior, bool invert, const std::string& text) {
    std::string dir = with("split_" + behavior + (invert ? "_inv" : ""), [&](nlohmann::json& j) {
      j["normalizer"] = nullptr;
      j["pre_tokenizer"] = {{"type", "Sequence"},
                            {"pretokenizers",
                             {{{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}},
                              {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}};
      j["model"]["merges"] = nlohmann::json::array();  // no merges: one id per byte
      j["model"]["ignore_merges"] = true;              // ... unless the whole piece is in the vocab
      for (const char* w : {"a-", "-b", "-", "--", "a", "b", "a--", "--b"}) {
        if (!j["model"]["vocab"].contains(w)) j["model"]["vocab"][w] = static_cast<int>(j["model"]["vocab"].size()) + 100;
      }
    });
    BpeTokenizer t = BpeTokenizer::from_dir(dir);
    std::vector<std::string> out;
    for (int64_t id : t.encode(text)) out.push_back(t.decode({id}));
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces("Isolated", false, "a--b"), (V{"a", "-", "-", "b"}));
  EXPECT_EQ(pieces("Removed", false, "a--b"), (V{"a", "b"}));
  EXPECT_EQ(pieces("MergedWithPrevious", false, "a--b"), (V{"a-", "-", "b"}));
  EXPECT_EQ(pieces("MergedWithNext", false, "a--b"), (V{"a", "-", "-b"}));
  EXPECT_EQ(pieces("Contiguous", false, "a--b"), (V{"a", "--", "b"}));
  EXPECT_EQ(pieces("Removed", true, "a--b"), (V{"-", "-"}));
}

TEST(LoadTokenizer, PicksTheFilesADirectoryHas) {
  auto hf = load_tokenizer(kFixtures + "/llama2");
  EXPECT_NE(hf->source().find("tokenizer.json"), std::string::npos);
  EXPECT_EQ(hf->bos_id(), 1);
  EXPECT_EQ(hf->encode("hi", true).front(), 1);
  auto files = load_tokenizer(kData + "/tiny-gpt2-vocab21");  // vocab.json + merges.txt
  EXPECT_NE(files->source().find("vocab.json"), std::string::npos);
  EXPECT_EQ(files->eos_id(), 20);
  EXPECT_EQ(files->bos_id(), 20);                                   // tokenizer_config.json bos_token
  EXPECT_EQ(files->encode(" lower", true), files->encode(" lower"));  // add_bos_token: false
  auto openai = load_tokenizer(kData + "/gpt2-tokenizer");          // encoder.json + vocab.bpe
  EXPECT_NE(openai->source().find("encoder.json"), std::string::npos);
  EXPECT_EQ(openai->vocab_size(), 50257);
  EXPECT_EQ(openai->bos_id(), -1);
  expect_io_error([&] { load_tokenizer(scratch_dir("empty")); },
                  {"empty", "tokenizer.json", "vocab.json + merges.txt", "encoder.json + vocab.bpe", "tokenizer.model"});
}

TEST(LoadTokenizer, SentencePieceModel) {
  if (!SentencePieceTokenizer::available()) GTEST_SKIP() << "SentencePiece shim not built";
  std::string dir = scratch_dir("spm");
  std::remove((dir + "/tokenizer_config.json").c_str());  // left by an earlier run
  std::string corpus = dir + "/corpus.txt";
  std::string text;
  for (int k = 0; k < 200; ++k) text += "the quick brown fox jumps over the lazy dog " + std::to_string(k) + "\n";
  write(corpus, text);
  SentencePieceTokenizer::train("--input=" + corpus + " --model_prefix=" + dir + "/tokenizer --vocab_size=60 "
                                "--model_type=bpe --bos_id=1 --eos_id=2 --unk_id=0 --pad_id=3 --minloglevel=2");
  auto t = load_tokenizer(dir);
  EXPECT_NE(t->source().find("tokenizer.model"), std::string::npos);
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  EXPECT_EQ(t->pad_id(), 3);
  auto ids = t->encode("the lazy dog");
  EXPECT_EQ(t->decode(ids), "the lazy dog");
  auto with_bos = t->encode("the lazy dog", true);  // LlamaTokenizer's defaults: BOS, no EOS
  ASSERT_EQ(with_bos.size(), ids.size() + 1);
  EXPECT_EQ(with_bos.front(), 1);
  EXPECT_EQ(t->token_to_id("<s>"), 1);
  EXPECT_EQ(t->token_to_id("no such piece"), -1);
  write(dir + "/tokenizer_config.json", R"({"add_bos_token": false, "add_eos_token": true})");
  auto eos_only = load_tokenizer(dir)->encode("the lazy dog", true);
  ASSERT_EQ(eos_only.size(), ids.size() + 1);
  EXPECT_EQ(eos_only.back(), 2);
}

}  // namespace
}  // namespace rarlhf
