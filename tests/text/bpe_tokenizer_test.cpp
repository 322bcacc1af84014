// BpeTokenizer against independent references: goldens from the JS reference tokenizer
// (gpt-3-encoder@1.1.4; ../shared/data and tests/text/golden), hand-worked pre-tokenisation and the
// toy vocab of Hugging Face's GPT-2 tokenizer test, plus invariants: exact byte round trip on random
// bytes, the three file formats agree, concurrent encode == serial encode, one-line load errors.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/text/bpe_tokenizer.h"

namespace rarlhf {
namespace {

const std::string kData = std::string(RARLHF_SOURCE_DIR) + "/../shared/data";
const std::string kGolden = std::string(RARLHF_SOURCE_DIR) + "/tests/text/golden/gpt2_golden.json";

const BpeTokenizer& gpt2() {
  static const BpeTokenizer tok = BpeTokenizer::from_dir(kData + "/gpt2-tokenizer");
  return tok;
}

struct Case {
  std::string text;
  std::vector<int64_t> ids;
};

std::vector<Case> load_cases(const nlohmann::json& arr) {
  std::vector<Case> out;
  for (const auto& c : arr) out.push_back({c["text"].get<std::string>(), c["ids"].get<std::vector<int64_t>>()});
  return out;
}

std::vector<Case> repo_golden() { return load_cases(nlohmann::json::parse(read_file(kGolden))["cases"]); }

// A scratch directory for hand-made tokenizer files.
std::string scratch_dir(const std::string& name) {
  std::string dir = std::string(RARLHF_BINARY_DIR) + "/test_text_scratch/" + name;
  make_dirs(dir);
  return dir;
}

void write(const std::string& path, const std::string& content) { std::ofstream(path, std::ios::binary) << content; }

std::vector<std::string> pieces(const std::string& text) {
  std::vector<std::string> out;
  for (auto [b, e] : gpt2_pretokenize(text)) out.push_back(text.substr(b, e - b));
  return out;
}

TEST(BpeTokenizer, SharedGoldenEncodings) {
  auto cases = load_cases(nlohmann::json::parse(read_file(kData + "/gpt2-tokenizer/golden_encodings.json")));
  ASSERT_EQ(cases.size(), 10u);
  for (const auto& c : cases) {
    EXPECT_EQ(gpt2().encode(c.text), c.ids) << c.text;
    EXPECT_EQ(gpt2().decode(c.ids), c.text);
  }
}

TEST(BpeTokenizer, RepoGoldenEncodings) {
  auto cases = repo_golden();
  ASSERT_GE(cases.size(), 500u);
  size_t long_pieces = 0;
  for (const auto& c : cases) {
    EXPECT_EQ(gpt2().encode(c.text), c.ids) << nlohmann::json(c.text).dump();
    EXPECT_EQ(gpt2().decode(c.ids), c.text);
    for (auto [b, e] : gpt2_pretokenize(c.text)) long_pieces += (e - b) > 64;
  }
  EXPECT_GE(long_pieces, 5u);  // the long-piece merge path is covered by the goldens too
}

TEST(BpeTokenizer, BasicsOfGpt2) {
  const auto& t = gpt2();
  EXPECT_EQ(t.vocab_size(), 50257);
  EXPECT_EQ(t.eos_id(), 50256);
  EXPECT_EQ(t.token(50256), "<|endoftext|>");
  EXPECT_EQ(t.token(15496), "Hello");
  EXPECT_EQ(t.token(995), "\xC4\xA0world");  // "Ġworld"
  EXPECT_EQ(t.token_to_id("\xC4\xA0the"), 262);
  EXPECT_EQ(t.token_to_id("no such token"), -1);
  EXPECT_THROW(t.token(50257), std::out_of_range);
  EXPECT_THROW(t.token(-1), std::out_of_range);
  EXPECT_THROW(t.decode({15496, 99999}), std::out_of_range);
}

TEST(BpeTokenizer, EndOfTextIsSpecial) {
  const auto& t = gpt2();
  EXPECT_EQ(t.encode("<|endoftext|>"), (std::vector<int64_t>{50256}));
  std::vector<int64_t> want = t.encode("Hello");
  want.push_back(50256);
  for (auto id : t.encode(" world")) want.push_back(id);
  want.push_back(50256);
  want.push_back(50256);
  EXPECT_EQ(t.encode("Hello<|endoftext|> world<|endoftext|><|endoftext|>"), want);
  EXPECT_EQ(t.decode(want), "Hello<|endoftext|> world<|endoftext|><|endoftext|>");
  // Near misses are plain text.
  EXPECT_EQ(t.decode(t.encode("<|endoftext|")), "<|endoftext|");
  for (int64_t id : t.encode("<|endoftext|")) EXPECT_NE(id, 50256);
  for (int64_t id : t.encode("<|endoftext| <endoftext|>")) EXPECT_NE(id, 50256);
}

TEST(Gpt2Pretokenize, HandWorkedSplits) {
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces("Hello  world's\n\n x"), (V{"Hello", " ", " world", "'s", "\n\n", " x"}));
  EXPECT_EQ(pieces("I'M don't 'll'd"), (V{"I", "'", "M", " don", "'t", " '", "ll", "'d"}));
  EXPECT_EQ(pieces("abc123 45!? ,"), (V{"abc", "123", " 45", "!?", " ,"}));
  EXPECT_EQ(pieces("end  "), (V{"end", "  "}));
  EXPECT_EQ(pieces("\t x"), (V{"\t", " x"}));
  EXPECT_EQ(pieces("x\n"), (V{"x", "\n"}));
  // JS \s: NBSP and U+3000 are whitespace, NEL (U+0085) and ZWSP (U+200B) are not.
  EXPECT_EQ(pieces("a\xC2\xA0" "b"), (V{"a", "\xC2\xA0", "b"}));
  EXPECT_EQ(pieces("a\xC2\x85" "b"), (V{"a", "\xC2\x85", "b"}));
  EXPECT_EQ(pieces("a\xE2\x80\x8B" "b"), (V{"a", "\xE2\x80\x8B", "b"}));
  // Letters and numbers beyond ASCII: "é" (Ll), "٣" (Nd), "Ⅻ" (Nl), "½" (No).
  EXPECT_EQ(pieces("caf\xC3\xA9 \xD9\xA3\xE2\x85\xAB\xC2\xBD"), (V{"caf\xC3\xA9", " \xD9\xA3\xE2\x85\xAB\xC2\xBD"}));
  // Invalid UTF-8: each bad byte is an "other" character.
  EXPECT_EQ(pieces("a\xFF\xFE" "b"), (V{"a", "\xFF\xFE", "b"}));
  EXPECT_EQ(pieces(" \xE2\x82" "a"), (V{" \xE2\x82", "a"}));
  EXPECT_EQ(pieces("\xED\xA0\x80x"), (V{"\xED\xA0\x80", "x"}));  // an encoded surrogate is not UTF-8
  EXPECT_TRUE(pieces("").empty());
}

TEST(BpeTokenizer, RoundTripRandomBytes) {
  const auto& t = gpt2();
  std::mt19937 rng(20240611);
  const std::vector<std::string> snippets = {" ", "  ", "\n", "\t", "'s", "'", "a", "Z", "9", "\xC3\xA9", "\xE6\x97\xA5",
                                             "\xF0\x9F\x98\x80", "\xC2\xA0", "\xE2\x80\xA8", "<|endoftext|>", "the"};
  for (int n = 0; n < 4000; ++n) {
    std::string s;
    int len = static_cast<int>(rng() % 80);
    int mode = n % 3;  // raw bytes / snippets / a mix
    for (int k = 0; k < len; ++k) {
      if (mode == 0 || (mode == 2 && rng() % 2)) {
        s += static_cast<char>(rng() % 256);
      } else {
        s += snippets[rng() % snippets.size()];
      }
    }
    auto ids = t.encode(s);
    ASSERT_EQ(t.decode(ids), s) << nlohmann::json(s).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
    // The pre-tokenizer's ranges tile the text.
    size_t at = 0;
    for (auto [b, e] : gpt2_pretokenize(s)) {
      ASSERT_EQ(b, at);
      ASSERT_GT(e, b);
      at = e;
    }
    ASSERT_EQ(at, s.size());
  }
  // A long run without spaces (heap merge path) round-trips too.
  std::string blob;
  for (int k = 0; k < 5000; ++k) blob += static_cast<char>('a' + rng() % 26);
  EXPECT_EQ(t.decode(t.encode(blob)), blob);
}

TEST(BpeTokenizer, ThreeFileFormatsAgree) {
  auto hf_json = BpeTokenizer::from_dir(kData + "/fake-gpt2-hf");  // tokenizer.json wins
  auto hf_files = BpeTokenizer::from_files(kData + "/fake-gpt2-hf/vocab.json", kData + "/fake-gpt2-hf/merges.txt");
  auto openai = BpeTokenizer::from_files(kData + "/gpt2-tokenizer/encoder.json", kData + "/gpt2-tokenizer/vocab.bpe");
  EXPECT_NE(hf_json.source().find("tokenizer.json"), std::string::npos);
  EXPECT_EQ(hf_json.vocab_size(), 50257);
  EXPECT_EQ(hf_files.vocab_size(), 50257);
  EXPECT_EQ(hf_json.eos_id(), 50256);
  std::vector<std::string> texts;
  for (const auto& c : repo_golden()) texts.push_back(c.text);
  texts.push_back("tail<|endoftext|>head \xFF\xFE");
  for (const auto& s : texts) {
    auto ids = openai.encode(s);
    EXPECT_EQ(hf_json.encode(s), ids) << s;
    EXPECT_EQ(hf_files.encode(s), ids) << s;
    EXPECT_EQ(hf_json.decode(ids), s);
  }
  for (int64_t id : {0, 220, 262, 50255, 50256}) EXPECT_EQ(hf_json.token(id), openai.token(id));
}

TEST(BpeTokenizer, ConcurrentEncodeMatchesSerial) {
  auto cases = repo_golden();
  auto fresh = BpeTokenizer::from_dir(kData + "/gpt2-tokenizer");  // empty cache: threads race to fill it
  std::vector<std::vector<std::vector<int64_t>>> got(4, std::vector<std::vector<int64_t>>(cases.size()));
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      for (size_t i = 0; i < cases.size(); ++i) {
        size_t k = (i * 7 + w * 131) % cases.size();  // different orders per thread
        got[w][k] = fresh.encode(cases[k].text);
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int w = 0; w < 4; ++w) {
    for (size_t k = 0; k < cases.size(); ++k) ASSERT_EQ(got[w][k], cases[k].ids) << cases[k].text;
  }
}

// The toy vocab of Hugging Face's GPT-2 tokenizer unit test: "lower newer" with a prefix space gives
// ["Ġlow", "er", "Ġ", "n", "e", "w", "er"] = [14, 15, 10, 9, 3, 2, 15], and unknown bytes give <unk> = 19.
TEST(BpeTokenizer, TinyVocab21) {
  auto t = BpeTokenizer::from_dir(kData + "/tiny-gpt2-vocab21");
  EXPECT_EQ(t.vocab_size(), 21);
  EXPECT_EQ(t.eos_id(), 20);
  EXPECT_EQ(t.encode(" lower newer"), (std::vector<int64_t>{14, 15, 10, 9, 3, 2, 15}));
  EXPECT_EQ(t.encode(" lower<|endoftext|>a"), (std::vector<int64_t>{14, 15, 20, 19}));
  EXPECT_EQ(t.decode({14, 15, 10, 9, 3, 2, 15}), " lower newer");
}

TEST(BpeTokenizer, TokenizerJsonWithArrayMerges) {
  // tokenizers >= 0.20 writes merges as ["a", "b"] pairs; the toy vocab again, as tokenizer.json.
  std::string dir = scratch_dir("array_merges");
  nlohmann::json vocab = nlohmann::json::parse(read_file(kData + "/tiny-gpt2-vocab21/vocab.json"));
  nlohmann::json j = {
      {"added_tokens", {{{"id", 20}, {"content", "<|endoftext|>"}, {"special", true}}}},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}}},
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"unk_token", "<unk>"},
        {"merges", nlohmann::json::array()}}}};
  // Built one by one: a braced list of string pairs would become a JSON object.
  for (auto [a, b] : std::vector<std::pair<std::string, std::string>>{
           {"\xC4\xA0", "l"}, {"\xC4\xA0l", "o"}, {"\xC4\xA0lo", "w"}, {"e", "r"}}) {
    j["model"]["merges"].push_back(nlohmann::json::array({a, b}));
  }
  write(dir + "/tokenizer.json", j.dump());
  auto t = BpeTokenizer::from_dir(dir);
  EXPECT_EQ(t.encode(" lower newer"), (std::vector<int64_t>{14, 15, 10, 9, 3, 2, 15}));
}

// Every load problem is an IoError whose one-line message names the file (and line).
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

TEST(BpeTokenizer, BadFilesGiveIoError) {
  std::string dir = scratch_dir("bad");
  const std::string tiny_vocab = read_file(kData + "/tiny-gpt2-vocab21/vocab.json");
  expect_io_error([&] { BpeTokenizer::from_dir(dir + "/nowhere"); }, {"nowhere", "tokenizer.json"});
  expect_io_error([&] { BpeTokenizer::from_files(dir + "/missing.json", dir + "/missing.txt"); }, {"missing.json"});

  write(dir + "/broken.json", "{\"a\": 1,");
  write(dir + "/ok_merges.txt", "#version: 0.2\n");
  expect_io_error([&] { BpeTokenizer::from_files(dir + "/broken.json", dir + "/ok_merges.txt"); },
                  {"broken.json", "invalid JSON"});

  write(dir + "/vocab.json", tiny_vocab);
  write(dir + "/malformed.txt", "#version: 0.2\n\xC4\xA0 l\nno_space_here\n");
  expect_io_error([&] { BpeTokenizer::from_files(dir + "/vocab.json", dir + "/malformed.txt"); },
                  {"malformed.txt", "line 3", "two tokens"});
  write(dir + "/unknown.txt", "#version: 0.2\nq z\n");
  expect_io_error([&] { BpeTokenizer::from_files(dir + "/vocab.json", dir + "/unknown.txt"); },
                  {"unknown.txt", "line 2", "not in the vocab"});
  // Issue #19: a merges line starting with byte 0xFF used to surface as nlohmann's
  // "[json.exception.type_error.316] invalid UTF-8 byte", naming no file. Long lines are cut short.
  write(dir + "/ff.txt", "#version: 0.2\n\xFFq z\n");
  try {
    BpeTokenizer::from_files(dir + "/vocab.json", dir + "/ff.txt");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()), dir + "/ff.txt: line 2: merge \"\xEF\xBF\xBDq z\" uses \"\xEF\xBF\xBDq\", which is "
                                           "not in the vocab; the vocab and merges files do not belong together");
  }
  write(dir + "/long.txt", "#version: 0.2\n" + std::string(100000, 'q') + " z\n");
  try {
    BpeTokenizer::from_files(dir + "/vocab.json", dir + "/long.txt");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_LT(std::string(e.what()).size(), 400u);
  }

  write(dir + "/dup.json", "{\"a\": 1, \"b\": 1}");
  expect_io_error([&] { BpeTokenizer::from_files(dir + "/dup.json", dir + "/ok_merges.txt"); }, {"dup.json", "id 1"});
  write(dir + "/negative.json", "{\"a\": -3}");
  expect_io_error([&] { BpeTokenizer::from_files(dir + "/negative.json", dir + "/ok_merges.txt"); },
                  {"negative.json", "\"a\""});
  // Not byte-level and no <unk>: cannot encode arbitrary bytes.
  write(dir + "/partial.json", "{\"a\": 0, \"b\": 1}");
  expect_io_error([&] { BpeTokenizer::from_files(dir + "/partial.json", dir + "/ok_merges.txt"); },
                  {"partial.json", "256 byte symbols"});

  std::string wp = scratch_dir("wordpiece");
  write(wp + "/tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": {"a": 0}}})");
  expect_io_error([&] { BpeTokenizer::from_dir(wp); }, {"tokenizer.json", "WordPiece"});
  std::string bm = scratch_dir("bad_merge_entry");
  write(bm + "/tokenizer.json", R"({"model": {"type": "BPE", "vocab": {"<unk>": 0, "a": 1}, "merges": [42]}})");
  expect_io_error([&] { BpeTokenizer::from_dir(bm); }, {"tokenizer.json", "model.merges[0]"});

  // A vocab without <|endoftext|> loads, but asking for eos is an error.
  write(dir + "/no_eos.json", "{\"<unk>\": 0, \"a\": 1}");
  auto t = BpeTokenizer::from_files(dir + "/no_eos.json", dir + "/ok_merges.txt");
  EXPECT_EQ(t.encode("ab"), (std::vector<int64_t>{1, 0}));
  expect_io_error([&] { t.eos_id(); }, {"no_eos.json", "<|endoftext|>"});
}

}  // namespace
}  // namespace rarlhf
