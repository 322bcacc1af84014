// VADER against the reference JS implementation (vader-sentiment@1.1.3): the shared golden set
// (../shared/data/sentiment-lexicons/golden_scores.json, 35 texts) and our larger generated one
// (tests/reward/golden/vader_golden.json, scripts/make_vader_golden.sh: 3000 UCI sentences,
// 400 IMDB texts, hand-written rule probes). Plus hand-worked rule examples.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/reward/vader.h"

namespace rarlhf {
namespace {

const std::string kShared = std::string(RARLHF_SOURCE_DIR) + "/../shared/data";
const std::string kLexicon = kShared + "/sentiment-lexicons/vader_lexicon.txt";

const Vader& vader() {
  static const Vader v = Vader::from_file(kLexicon);
  return v;
}

// The golden values are rounded by the reference (compound to 4 places, proportions to 3).
constexpr double kCompoundTol = 0.5e-4 + 1e-9;
constexpr double kPropTol = 0.5e-3 + 1e-9;

TEST(Vader, LexiconLoads) {
  // 7517 lines, 14 duplicate tokens (the later one wins) -> 7503 entries.
  EXPECT_EQ(vader().lexicon_size(), 7503u);
  EXPECT_DOUBLE_EQ(vader().valence("good"), 1.9);
  EXPECT_DOUBLE_EQ(vader().valence(":)"), 2.0);
}

TEST(Vader, SharedGoldenScores) {
  auto j = nlohmann::json::parse(read_file(kShared + "/sentiment-lexicons/golden_scores.json"));
  ASSERT_EQ(j.size(), 35u);
  for (const auto& item : j) {
    const std::string text = item["text"];
    double expected = item["vader"]["compound"];
    EXPECT_NEAR(vader().compound(text), expected, kCompoundTol) << text;
  }
}

TEST(Vader, GeneratedGoldenScoresAllMatch) {
  auto j = nlohmann::json::parse(read_file(std::string(RARLHF_SOURCE_DIR) + "/tests/reward/golden/vader_golden.json"));
  const auto& items = j["items"];
  ASSERT_GE(items.size(), 3400u);
  size_t compound_ok = 0, props_ok = 0;
  for (const auto& item : items) {
    const std::string text = item["text"];
    const auto& g = item["vader"];
    VaderScores s = vader().polarity_scores(text);
    bool c = std::fabs(s.compound - g["compound"].get<double>()) <= kCompoundTol;
    bool p = std::fabs(s.pos - g["pos"].get<double>()) <= kPropTol &&
             std::fabs(s.neg - g["neg"].get<double>()) <= kPropTol &&
             std::fabs(s.neu - g["neu"].get<double>()) <= kPropTol;
    compound_ok += c;
    props_ok += p;
    EXPECT_TRUE(c) << "compound " << s.compound << " vs " << g["compound"] << ": " << text;
    EXPECT_TRUE(p) << "pos/neg/neu " << s.pos << "/" << s.neg << "/" << s.neu << " vs " << g << ": " << text;
  }
  std::printf("[ vader    ] compound match %zu/%zu, proportions match %zu/%zu\n", compound_ok, items.size(),
              props_ok, items.size());
}

// Hand-worked: "good" = 1.9; compound = x / sqrt(x^2 + 15).
double norm(double x) { return x / std::sqrt(x * x + 15.0); }

TEST(Vader, HandWorkedRules) {
  EXPECT_NEAR(vader().compound("good"), norm(1.9), 1e-12);
  // Booster directly before: +0.293.
  EXPECT_NEAR(vader().compound("very good"), norm(1.9 + 0.293), 1e-12);
  // Booster two back: 0.95 x 0.293.
  EXPECT_NEAR(vader().compound("very much good"), norm(1.9 + 0.95 * 0.293), 1e-12);
  // Negation: x N_SCALAR (-0.74).
  EXPECT_NEAR(vader().compound("not good"), norm(1.9 * -0.74), 1e-12);
  EXPECT_NEAR(vader().compound("isn't good"), norm(1.9 * -0.74), 1e-12);
  // One "!" adds 0.292 to the magnitude; more than 4 count as 4.
  EXPECT_NEAR(vader().compound("good!"), norm(1.9 + 0.292), 1e-12);
  EXPECT_NEAR(vader().compound("good !!!!!!"), norm(1.9 + 4 * 0.292), 1e-12);
  // "!!!!!!" is not one of the strippable affixes, so "good!!!!!!" is an unknown token (as in
  // the reference): no valence, so no emphasis either.
  EXPECT_EQ(vader().compound("good!!!!!!"), 0.0);
  // ALL CAPS in a mixed-case text: +0.733; an all-caps text gets no caps bonus.
  EXPECT_NEAR(vader().compound("GOOD movie"), norm(1.9 + 0.733), 1e-12);
  EXPECT_NEAR(vader().compound("GOOD MOVIE"), norm(1.9), 1e-12);
  // "but": 0.5 before, 1.5 after. bad = -2.5.
  EXPECT_DOUBLE_EQ(vader().valence("bad"), -2.5);
  EXPECT_NEAR(vader().compound("good but bad"), norm(0.5 * 1.9 + 1.5 * -2.5), 1e-12);
  // "kind of" dampens by B_DECR through the bigram check, which runs for the modifier three
  // tokens back ("was", not in the lexicon); "kind" itself scores 0 before "of".
  EXPECT_NEAR(vader().compound("it was kind of good"), norm(1.9 - 0.293), 1e-12);
  // Single characters are not tokens; an empty text is neutral.
  EXPECT_EQ(vader().compound(""), 0.0);
  EXPECT_EQ(vader().compound("a b c"), 0.0);
}

TEST(Vader, JsWhitespaceAndUtf16Lengths) {
  auto parts = vader_split_js_whitespace("a\xC2\xA0" "b  c\xE2\x80\x83" "d");
  ASSERT_EQ(parts.size(), 5u);
  EXPECT_EQ(parts[0], "a");
  EXPECT_EQ(parts[1], "b");
  EXPECT_EQ(parts[2], "");
  EXPECT_EQ(parts[3], "c");
  EXPECT_EQ(parts[4], "d");
  EXPECT_EQ(utf16_length("\xC3\xA9"), 1u);          // é: one unit
  EXPECT_EQ(utf16_length("\xF0\x9F\x98\x80"), 2u);  // emoji: surrogate pair
}

TEST(Vader, BadLexiconIsAClearError) {
  EXPECT_THROW(Vader::from_string("good 1.9\n", "lex.txt"), IoError);
  EXPECT_THROW(Vader::from_string("good\tabc\t0.1\n", "lex.txt"), IoError);
  EXPECT_THROW(Vader::from_string("\n\n", "lex.txt"), IoError);
  EXPECT_THROW(Vader::from_file("/nonexistent/vader_lexicon.txt"), IoError);
  try {
    Vader::from_string("good\tx1.9\t0.1\n", "lex.txt");
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("lex.txt:1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace rarlhf
