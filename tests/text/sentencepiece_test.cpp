// SentencePiece through the dlmopen'd shim, inside a process that has LibTorch loaded (this test
// binary links it): a model trained on the UCI review sentences encodes exactly like Debian's
// `spm_encode` reference tool, decodes back, and bad files give one-line errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/text/sentencepiece.h"

using namespace rarlhf;
namespace fs = std::filesystem;

namespace {

const std::string kUci = std::string(RARLHF_SOURCE_DIR) + "/../shared/data/uci-sentiment-sentences/imdb.json";

std::vector<std::string> sentences() {
  std::vector<std::string> out;
  auto j = nlohmann::json::parse(read_file(kUci));
  for (const auto& row : j) {
    if (row.is_object() && row.contains("text") && row["text"].is_string()) out.push_back(row["text"]);
  }
  return out;
}

std::string run(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  pclose(p);
  return out;
}

class SentencePieceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!SentencePieceTokenizer::available() || !fs::exists(kUci)) return;
    dir_ = (fs::temp_directory_path() / ("rarlhf_spm_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir_);
    std::ofstream corpus(dir_ + "/corpus.txt");
    for (const auto& s : sentences()) corpus << s << "\n";
    corpus.close();
    SentencePieceTokenizer::train("--input=" + dir_ + "/corpus.txt --model_prefix=" + dir_ +
                                  "/m --vocab_size=400 --model_type=unigram --minloglevel=2");
  }
  static void TearDownTestSuite() {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  void SetUp() override {
    if (!SentencePieceTokenizer::available()) GTEST_SKIP() << "SentencePiece shim not built";
    if (!fs::exists(kUci)) GTEST_SKIP() << "needs ../shared/data";
  }
  static std::string dir_;
};
std::string SentencePieceTest::dir_;

}  // namespace

TEST_F(SentencePieceTest, MatchesSpmEncodeReferenceTool) {
  if (run("command -v spm_encode").empty()) GTEST_SKIP() << "spm_encode (Debian package sentencepiece) absent";
  auto tok = SentencePieceTokenizer::from_file(dir_ + "/m.model");
  EXPECT_EQ(tok.vocab_size(), 400);
  auto texts = sentences();
  texts.resize(200);
  std::ofstream in(dir_ + "/in.txt");
  for (const auto& t : texts) in << t << "\n";
  in.close();
  std::istringstream ref(run("spm_encode --model=" + dir_ + "/m.model --output_format=id < " + dir_ + "/in.txt"));
  std::string line;
  size_t i = 0;
  while (std::getline(ref, line) && i < texts.size()) {
    std::vector<int64_t> want;
    std::istringstream ls(line);
    for (int64_t id; ls >> id;) want.push_back(id);
    EXPECT_EQ(tok.encode(texts[i]), want) << texts[i];
    ++i;
  }
  EXPECT_EQ(i, texts.size());
}

TEST_F(SentencePieceTest, DecodeInvertsEncodeOnPlainText) {
  auto tok = SentencePieceTokenizer::from_file(dir_ + "/m.model");
  for (const std::string s : {"This movie was great.", "I did not like it at all", "a"}) {
    EXPECT_EQ(tok.decode(tok.encode(s)), s);
  }
  EXPECT_THROW(tok.decode({100000}), ConfigError);
}

TEST_F(SentencePieceTest, BadFilesAreClearErrors) {
  EXPECT_THROW(SentencePieceTokenizer::from_file(dir_ + "/missing.model"), IoError);
  write_file_atomic(dir_ + "/junk.model", "not a model");
  try {
    SentencePieceTokenizer::from_file(dir_ + "/junk.model");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("junk.model"), std::string::npos);
  }
}
