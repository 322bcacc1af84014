// build_prompts against OpenAI GPT-2 golden encodings (shared/data/gpt2-tokenizer), the
// byte-prefix invariant of a token cut, shuffling, and class resampling proportions.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <set>

#include "rarlhf/text/bpe_tokenizer.h"
#include "rarlhf/common/error.h"
#include "rarlhf/data/prompts.h"
#include "support/temp_dir.h"

namespace rarlhf {
namespace {

using testing::shared_data;

const BpeTokenizer& gpt2() {
  static const BpeTokenizer tok = BpeTokenizer::from_dir(shared_data("gpt2-tokenizer"));
  return tok;
}

TEST(Prompts, FirstNTokensMatchGoldenEncodings) {
  nlohmann::json golden = nlohmann::json::parse(std::ifstream(shared_data("gpt2-tokenizer/golden_encodings.json")));
  ASSERT_GE(golden.size(), 10u);
  for (int64_t n : {1, 5, 8, 64}) {
    std::vector<TextExample> ex;
    for (const auto& g : golden) ex.push_back({g["text"].get<std::string>(), "lbl", NAN, "", "g"});
    auto prompts = build_prompts(ex, gpt2(), n);
    ASSERT_EQ(prompts.size(), golden.size());
    for (size_t i = 0; i < golden.size(); ++i) {
      auto ids = golden[i]["ids"].get<std::vector<int64_t>>();
      if (static_cast<int64_t>(ids.size()) > n) ids.resize(n);
      EXPECT_EQ(prompts[i].ids, ids) << "n=" << n << " text " << i;
      // Byte-level BPE tokens concatenate to the text: the query is a byte prefix of it
      // (a cut inside a multi-byte character keeps the partial bytes, as HF's decode does).
      const std::string& src = ex[i].text;
      EXPECT_EQ(src.compare(0, prompts[i].text.size(), prompts[i].text), 0) << i;
      if (static_cast<int64_t>(golden[i]["ids"].size()) <= n) EXPECT_EQ(prompts[i].text, src);
      EXPECT_EQ(prompts[i].label, "lbl");
    }
  }
  std::vector<TextExample> one = {{"I rented I AM CURIOUS-YELLOW from my video store", "", NAN, "", ""}};
  EXPECT_EQ(build_prompts(one, gpt2(), 5)[0].text, "I rented I AM C");
  EXPECT_THROW(build_prompts(one, gpt2(), 0), ConfigError);
  EXPECT_TRUE(build_prompts({{"", "", NAN, "", ""}}, gpt2(), 4).empty());
}

TEST(Prompts, ShuffledIndicesIsASeededPermutation) {
  auto a = shuffled_indices(1000, 42);
  auto b = shuffled_indices(1000, 42);
  auto c = shuffled_indices(1000, 43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::set<size_t> s(a.begin(), a.end());
  EXPECT_EQ(s.size(), 1000u);
  EXPECT_EQ(*s.rbegin(), 999u);
  // Not the identity, and each position moves roughly uniformly: the mean of the first 100 draws
  // is near (n-1)/2 (std of that mean ~ 29).
  double mean = 0;
  for (size_t i = 0; i < 100; ++i) mean += a[i] / 100.0;
  EXPECT_NEAR(mean, 499.5, 120);
  std::vector<int> items = {1, 2, 3, 4, 5};
  EXPECT_EQ(shuffle_select(items, 3, 7).size(), 3u);
  EXPECT_EQ(shuffle_select(items, 0, 7).size(), 5u);
}

TEST(Prompts, ResampleClassesProportionsOnJigsaw) {
  DataConfig c;
  c.format = "jigsaw_csv";
  auto ex = read_texts(c, shared_data("jigsaw-rarlhf/jigsaw_test.csv"));
  ASSERT_EQ(ex.size(), 7708u);  // 3,854 toxic + 3,854 non-toxic
  // Paper train mix, 30% toxic: non-toxic limits, T = 5506 (round(5506*.3) = 1652 toxic, 3854 others;
  // 5507 would need 3855 non-toxic).
  auto r = resample_classes(ex, "toxic", 0.3, 12);
  ASSERT_EQ(r.size(), 5506u);
  EXPECT_EQ(filter_label(r, "toxic").size(), 1652u);
  EXPECT_EQ(filter_label(r, "non-toxic").size(), 3854u);
  // Paper test mix 50/50 keeps everything.
  EXPECT_EQ(resample_classes(ex, "toxic", 0.5, 1).size(), 7708u);
  // A fixed total; subset of the input, original order, no duplicates, seed-determined.
  auto a = resample_classes(ex, "toxic", 0.3, 5, 1000);
  auto b = resample_classes(ex, "toxic", 0.3, 5, 1000);
  auto d = resample_classes(ex, "toxic", 0.3, 6, 1000);
  ASSERT_EQ(a.size(), 1000u);
  EXPECT_EQ(filter_label(a, "toxic").size(), 300u);
  std::set<std::string> wheres;
  for (const auto& e : a) wheres.insert(e.where);
  EXPECT_EQ(wheres.size(), 1000u);
  int64_t last_line = 0;
  for (const auto& e : a) {
    int64_t line = std::stoll(e.where.substr(e.where.rfind(':') + 1));
    EXPECT_GT(line, last_line);
    last_line = line;
  }
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].where, b[i].where);
  size_t same = 0;
  for (size_t i = 0; i < a.size(); ++i) same += a[i].where == d[i].where;
  EXPECT_LT(same, a.size());
  EXPECT_THROW(resample_classes(ex, "toxic", 0.3, 5, 20000), ConfigError);
  EXPECT_THROW(resample_classes(ex, "toxic", 1.0, 5), ConfigError);
  EXPECT_THROW(resample_classes(ex, "no-such-label", 0.3, 5), ConfigError);
}

// The config-driven wrapper the train and eval commands call: share 0 leaves the set alone; a share
// gives resample_classes' exact mix; errors name the config field and the data file.
TEST(Prompts, ResamplePromptSetFollowsTheConfig) {
  DataConfig c;
  c.format = "jigsaw_csv";
  const std::string path = shared_data("jigsaw-rarlhf/jigsaw_test.csv");
  auto ex = read_texts(c, path);
  auto same = resample_prompt_set(ex, c, 0.0, "data.train_resample_share", path, 7);
  ASSERT_EQ(same.size(), ex.size());
  for (size_t i = 0; i < ex.size(); i += 97) EXPECT_EQ(same[i].where, ex[i].where);
  c.resample_label = "toxic";
  auto r = resample_prompt_set(ex, c, 0.3, "data.train_resample_share", path, 7);
  auto direct = resample_classes(ex, "toxic", 0.3, 7);
  ASSERT_EQ(r.size(), 5506u);  // as hand-derived in ResampleClassesProportionsOnJigsaw
  for (size_t i = 0; i < r.size(); ++i) ASSERT_EQ(r[i].where, direct[i].where);
  c.resample_label = "Toxic";  // labels are case-sensitive: no such class
  try {
    resample_prompt_set(ex, c, 0.5, "data.test_resample_share", path, 7);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("data.test_resample_share (" + path + "): ", 0), 0u) << m;
    EXPECT_NE(m.find("'Toxic'"), std::string::npos) << m;
  }
}

// The paper's Jigsaw SFT data (examples/Jigsaw/training/sft_auth2.py): the non-toxic rows of the
// 70/30 resampled train set, drawn with the seed the RL prompts use.
TEST(Prompts, SftTextsAreTheResampledSetsNonToxicRows) {
  testing::TempDir d;
  std::string rows = "text,label\n";
  for (int i = 0; i < 110; ++i) rows += "comment " + std::to_string(i) + (i % 11 == 0 ? ",toxic\n" : ",non-toxic\n");
  Config c;
  c.data.format = "csv";
  c.data.train_path = d.write("train.csv", rows);
  c.data.resample_label = "toxic";
  c.data.train_resample_share = 0.3;
  c.sft.label_filter = "non-toxic";
  c.run.seed = 11;
  auto texts = sft_texts(c);
  // 10 toxic rows limit the 70/30 set to 34 (round(34 * .3) = 10 toxic; 35 would need 11): 24 of the
  // 100 non-toxic rows, the ones resample_classes draws for the RL prompts with the same seed.
  auto resampled = resample_classes(read_texts(c.data, c.data.train_path), "toxic", 0.3, 11);
  ASSERT_EQ(resampled.size(), 34u);
  std::vector<TextExample> expect = filter_label(resampled, "non-toxic");
  ASSERT_EQ(expect.size(), 24u);
  ASSERT_EQ(texts.size(), expect.size());
  for (size_t i = 0; i < texts.size(); ++i) EXPECT_EQ(texts[i].where, expect[i].where);
  c.data.train_resample_share = 0;  // no resampling: every non-toxic row
  EXPECT_EQ(sft_texts(c).size(), 100u);
}

}  // namespace
}  // namespace rarlhf

namespace rarlhf {
namespace {

TEST(Prompts, PerplexityTextsCutByCodePoints) {
  // Python: "h\u00e9llo w\u00f6rld"[:7] == "h\u00e9llo w"
  std::vector<TextExample> ex = {{"h\xC3\xA9llo w\xC3\xB6rld", "pos", NAN, "", ""},
                                 {"short", "pos", NAN, "", ""},
                                 {"negative text", "neg", NAN, "", ""}};
  EXPECT_EQ(perplexity_texts(ex, "pos", 7), (std::vector<std::string>{"h\xC3\xA9llo w", "short"}));
  EXPECT_EQ(perplexity_texts(ex, "", 0).size(), 3u);
  EXPECT_EQ(utf8_prefix("\xF0\x9F\x98\x80x", 1), "\xF0\x9F\x98\x80");
  EXPECT_EQ(utf8_prefix("abc", 0), "");
}

}  // namespace
}  // namespace rarlhf
