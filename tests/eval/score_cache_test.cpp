// ScoreCache: FNV-1a-128 against published/independently computed vectors, save/load round
// trip, scorer mismatch, malformed files and score_all's "score each missing text once".
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/eval/score_cache.h"
#include "support/temp_dir.h"

namespace rarlhf {
namespace {

// One folder for this binary's files, removed at exit.
std::string temp_path(const std::string& name) {
  static const testing::TempDir dir("cache_test");
  return dir.path(name);
}

TEST(ScoreCache, HashIsFnv1a128) {
  // FNV-1a 128 vectors (the "a" value is the published FNV test vector; the others were computed
  // with a separate Python big-int implementation).
  EXPECT_EQ(ScoreCache::hash_text(""), "6c62272e07bb014262b821756295c58d");
  EXPECT_EQ(ScoreCache::hash_text("a"), "d228cb696f1a8caf78912b704e4a8964");
  EXPECT_EQ(ScoreCache::hash_text("foobar"), "343e1662793c64bf6f0d3597ba446f18");
  EXPECT_EQ(ScoreCache::hash_text("Hello, world! \xC3\xA9"), "29377af7e01977b55855cba46393d2bc");
}

TEST(ScoreCache, SaveLoadRoundTripAndScorerMismatch) {
  std::string path = temp_path("round.jsonl");
  ScoreCache c("distilbert-imdb:1");
  c.insert("a great film", 2.718281828459045);
  c.insert("awful", -3.1221065521240234);
  save_score_cache(path, c);
  ScoreCache back = load_score_cache(path, "distilbert-imdb:1");
  EXPECT_EQ(back.size(), 2u);
  double s = 0;
  ASSERT_TRUE(back.lookup("awful", &s));
  EXPECT_EQ(s, -3.1221065521240234);  // bit-exact through JSON
  ASSERT_TRUE(back.lookup("a great film", &s));
  EXPECT_EQ(s, 2.718281828459045);
  EXPECT_FALSE(back.lookup("unseen", &s));
  EXPECT_EQ(load_score_cache(path, "toxic-bert:0").size(), 0u);  // another scorer: ignored
  EXPECT_EQ(load_score_cache(temp_path("missing.jsonl"), "k").size(), 0u);
  // Entries are sorted by hash: the file is reproducible.
  std::string first = read_file(path);
  save_score_cache(path, back);
  EXPECT_EQ(read_file(path), first);
}

TEST(ScoreCache, MalformedFileNamesTheLine) {
  std::string path = temp_path("bad.jsonl");
  std::ofstream(path) << "{\"rarlhf_score_cache\":1,\"reward_key\":\"k\"}\n{\"hash\":\"zz\",\"score\":1}\n";
  try {
    load_score_cache(path, "k");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ":2: ", 0), 0u) << e.what();
  }
  std::ofstream(path) << "not a cache\n";
  EXPECT_THROW(load_score_cache(path, "k"), IoError);
}

TEST(ScoreCache, ScoreAllScoresOnlyMissingTextsOnce) {
  ScoreCache c("k");
  c.insert("cached", 7.0);
  std::vector<std::vector<std::string>> calls;
  auto scorer = [&](const std::vector<std::string>& texts) {
    calls.push_back(texts);
    std::vector<double> out;
    for (const auto& t : texts) out.push_back(static_cast<double>(t.size()));
    return out;
  };
  auto got = c.score_all({"abc", "cached", "abc", "hello"}, scorer);
  EXPECT_EQ(got, (std::vector<double>{3.0, 7.0, 3.0, 5.0}));
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0], (std::vector<std::string>{"abc", "hello"}));
  got = c.score_all({"hello", "cached"}, scorer);
  EXPECT_EQ(got, (std::vector<double>{5.0, 7.0}));
  EXPECT_EQ(calls.size(), 1u);  // all cached now
  auto bad = [](const std::vector<std::string>&) { return std::vector<double>{}; };
  EXPECT_THROW(c.score_all({"new"}, bad), std::logic_error);
}

}  // namespace
}  // namespace rarlhf
