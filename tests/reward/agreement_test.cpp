// score_jsonl + Spearman, and how well VADER agrees with the RA-RLHF paper's reward models:
// Spearman(VADER compound, lvwerra/distilbert-imdb positive logit) on ../shared/data/imdb-rarlhf and
// Spearman(VADER compound, -toxic-bert top logit) on ../shared/data/jigsaw-rarlhf (PROVENANCE.md
// there). The numbers are printed for the report; the assertions are loose sanity bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/config/config.h"
#include "rarlhf/data/csv.h"
#include "rarlhf/reward/reward.h"
#include "rarlhf/reward/score_jsonl.h"
#include "rarlhf/reward/vader.h"

namespace rarlhf {
namespace {

const std::string kShared = std::string(RARLHF_SOURCE_DIR) + "/../shared/data";
const std::string kTmp = std::string(RARLHF_BINARY_DIR) + "/test_tmp/agreement";

std::unique_ptr<RewardModel> vader_reward(double sign = 1, double scale = 1) {
  RewardConfig c;
  c.type = "vader";
  c.lexicon = kShared + "/sentiment-lexicons/vader_lexicon.txt";
  c.sign = sign;
  c.scale = scale;
  return make_reward(c, at::kCPU);
}

TEST(Spearman, HandWorked) {
  // Ranks a = 1..5; b = 5,6,7,8,7 -> 1,2,3.5,5,3.5; rho = 8 / sqrt(10 * 9.5).
  EXPECT_NEAR(spearman({1, 2, 3, 4, 5}, {5, 6, 7, 8, 7}), 8.0 / std::sqrt(95.0), 1e-12);
  EXPECT_NEAR(spearman({1, 2, 3}, {30, 20, 10}), -1.0, 1e-12);
  EXPECT_NEAR(spearman({1, 5, 2, 9}, {0.1, 100, 0.2, 1000}), 1.0, 1e-12);  // monotone, not linear
  EXPECT_TRUE(std::isnan(spearman({1, 1, 1}, {1, 2, 3})));
  EXPECT_THROW(spearman({1, 2}, {1}), std::invalid_argument);
}

TEST(ScoreJsonl, AddsScoresKeepsFieldsAndJoinsPromptResponse) {
  make_dirs(kTmp);
  const std::string in = kTmp + "/in.jsonl";
  write_file_atomic(in, R"({"id": 7, "text": "good movie", "p": {"q": "it was "}, "r": "very bad"}
)"
                        "\n"
                        R"({"id": 8, "text": "not good", "p": {"q": "I liked "}, "r": "it!"})"
                        "\n");
  auto reward = vader_reward(-1, 2);
  const Vader v = Vader::from_file(kShared + "/sentiment-lexicons/vader_lexicon.txt");
  ScoreJsonlSpec spec;
  auto s = score_jsonl(*reward, in, kTmp + "/out.jsonl", spec);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_DOUBLE_EQ(s[0], -2 * v.compound("good movie"));
  EXPECT_DOUBLE_EQ(s[1], -2 * v.compound("not good"));
  std::vector<std::string> lines;
  for (const auto& l : split(read_file(kTmp + "/out.jsonl"), '\n'))
    if (!l.empty()) lines.push_back(l);
  ASSERT_EQ(lines.size(), 2u);
  auto row = nlohmann::ordered_json::parse(lines[1]);
  EXPECT_EQ(row["id"], 8);
  EXPECT_DOUBLE_EQ(row["score"].get<double>(), s[1]);
  EXPECT_EQ(row.begin().key(), "id");  // field order kept

  spec.prompt_field = "p.q";
  spec.response_field = "r";
  auto pr = score_jsonl(*reward, in, kTmp + "/out2.jsonl", spec);
  EXPECT_DOUBLE_EQ(pr[0], -2 * v.compound("it was very bad"));
  EXPECT_DOUBLE_EQ(pr[1], -2 * v.compound("I liked it!"));
  spec.input = "response";
  auto r = score_jsonl(*reward, in, kTmp + "/out3.jsonl", spec);
  EXPECT_DOUBLE_EQ(r[0], -2 * v.compound("very bad"));
}

TEST(ScoreJsonl, BadRowsNameFileLineAndField) {
  make_dirs(kTmp);
  auto reward = vader_reward();
  const std::string in = kTmp + "/bad.jsonl";
  write_file_atomic(in, "{\"text\": \"ok\"}\n\n{\"txt\": \"x\"}\n");
  try {
    score_jsonl(*reward, in, kTmp + "/o.jsonl", {});
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:3: no field 'text' (fields: txt)"), std::string::npos) << e.what();
  }
  write_file_atomic(in, "{\"text\": 5}\n");
  EXPECT_THROW(score_jsonl(*reward, in, kTmp + "/o.jsonl", {}), IoError);
  write_file_atomic(in, "not json\n");
  EXPECT_THROW(score_jsonl(*reward, in, kTmp + "/o.jsonl", {}), IoError);
  ScoreJsonlSpec half;
  half.prompt_field = "p";
  EXPECT_THROW(score_jsonl(*reward, in, kTmp + "/o.jsonl", half), ConfigError);
  EXPECT_FALSE(file_exists(kTmp + "/o.jsonl"));  // nothing half-written
}

// (text column, score column) of a CSV with a header row.
void read_csv(const std::string& path, size_t text_col, size_t score_col, std::vector<std::string>& texts,
              std::vector<double>& scores) {
  CsvReader r(read_file(path), path);
  std::vector<std::string> f;
  bool header = true;
  while (true) {
    auto st = r.next(f);
    if (st == CsvReader::Status::kEnd) break;
    ASSERT_EQ(st, CsvReader::Status::kRecord) << path << ":" << r.line();
    if (header) {
      header = false;
      continue;
    }
    texts.push_back(f.at(text_col));
    scores.push_back(std::stod(f.at(score_col)));
  }
}

TEST(VaderAgreement, SpearmanWithPaperRewardModels) {
  auto reward = vader_reward();
  std::vector<std::string> all_texts;
  std::vector<double> all_paper;
  for (const char* file : {"critical_neg_texts.csv", "critical_pos_texts.csv", "critical_neg_texts_200char.csv",
                           "tails_neg_texts_200char.csv", "tails_pos_texts_200char.csv"}) {
    std::vector<std::string> texts;
    std::vector<double> paper;
    read_csv(kShared + "/imdb-rarlhf/" + file, 2, 1, texts, paper);  // ,score,review
    double rho = spearman(reward->score(texts), paper);
    std::printf("[ agree    ] imdb-rarlhf/%-32s n=%5zu  spearman(vader, distilbert-imdb) = %+.3f\n", file,
                texts.size(), rho);
    all_texts.insert(all_texts.end(), texts.begin(), texts.end());
    all_paper.insert(all_paper.end(), paper.begin(), paper.end());
  }
  double imdb = spearman(reward->score(all_texts), all_paper);
  std::printf("[ agree    ] imdb-rarlhf all files                  n=%5zu  spearman = %+.3f\n", all_texts.size(), imdb);

  std::vector<std::string> jt;
  std::vector<double> jr;
  read_csv(kShared + "/jigsaw-rarlhf/jigsaw_test.csv", 0, 7, jt, jr);  // comment_text,...,reward
  ASSERT_EQ(jt.size(), 7708u);
  double jig = spearman(reward->score(jt), jr);
  std::printf("[ agree    ] jigsaw-rarlhf                          n=%5zu  spearman(vader, -toxic-bert) = %+.3f\n",
              jt.size(), jig);
  // Sanity: VADER's sentiment agrees in direction with both of the paper's reward models.
  EXPECT_GT(imdb, 0.4);  // measured 0.505
  EXPECT_GT(jig, 0.45);  // measured 0.555
}

}  // namespace
}  // namespace rarlhf
