// Metrics against hand-worked examples and naive re-computations: CVaR (fractional count),
// quantiles (numpy's linear rule), Dist-n (DExperts), perplexity, the quantile curve and tail
// split on the paper's IMDB prompt scores (shared/data/imdb-rarlhf).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "rarlhf/data/dataset.h"
#include "rarlhf/eval/metrics.h"

namespace rarlhf {
namespace {

TEST(Metrics, CvarFractionalCountHandWorked) {
  std::vector<double> x = {5, 1, 4, 2, 3};
  EXPECT_DOUBLE_EQ(cvar(x, 1.0), 3.0);                 // the mean
  EXPECT_DOUBLE_EQ(cvar(x, 0.4), (1.0 + 2.0) / 2.0);   // m = 2 whole samples
  EXPECT_DOUBLE_EQ(cvar(x, 0.3), (1.0 + 0.5 * 2.0) / 1.5);  // m = 1.5: x_(2) counts half
  EXPECT_DOUBLE_EQ(cvar(x, 0.1), 1.0);                 // m = 0.5 < 1: the minimum
  EXPECT_DOUBLE_EQ(cvar(x, 0.9), (1 + 2 + 3 + 4 + 0.5 * 5) / 4.5);
  // 0.3 * 10 is 2.9999999999999996 in floating point: still exactly the 3 worst.
  std::vector<double> y = {10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
  EXPECT_DOUBLE_EQ(cvar(y, 0.3), 2.0);
  EXPECT_THROW(cvar(x, 0.0), std::invalid_argument);
  EXPECT_THROW(cvar(x, 1.5), std::invalid_argument);
  EXPECT_THROW(cvar({}, 0.5), std::invalid_argument);
}

TEST(Metrics, CvarIsContinuousAndMonotoneInAlpha) {
  std::vector<double> x = {-3.1, 0.4, 2.2, -0.7, 1.9, 2.8, -1.5};
  double prev = cvar(x, 0.01);
  EXPECT_DOUBLE_EQ(prev, -3.1);
  for (int i = 2; i <= 100; ++i) {
    double c = cvar(x, i / 100.0);
    EXPECT_GE(c + 1e-12, prev) << i;      // worse tails are lower
    EXPECT_LT(std::abs(c - prev), 0.2) << i;  // no jumps at the sample boundaries
    prev = c;
  }
  EXPECT_NEAR(prev, std::accumulate(x.begin(), x.end(), 0.0) / x.size(), 1e-12);
}

TEST(Metrics, QuantileAndSummaryMatchNumpy) {
  // np.quantile([1, 2, 3, 4], [0, .25, .5, .9, 1]) = [1, 1.75, 2.5, 3.7, 4]; np.std = sqrt(1.25)
  std::vector<double> x = {4, 1, 3, 2};
  EXPECT_DOUBLE_EQ(quantile(x, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(quantile(x, 0.25), 1.75);
  EXPECT_DOUBLE_EQ(quantile(x, 0.5), 2.5);
  EXPECT_NEAR(quantile(x, 0.9), 3.7, 1e-12);
  EXPECT_DOUBLE_EQ(quantile(x, 1.0), 4.0);
  Summary s = summarize(x);
  EXPECT_EQ(s.n, 4);
  EXPECT_DOUBLE_EQ(s.mean, 2.5);
  EXPECT_DOUBLE_EQ(s.std, std::sqrt(1.25));
  EXPECT_DOUBLE_EQ(s.min, 1.0);
  EXPECT_DOUBLE_EQ(s.max, 4.0);
  EXPECT_DOUBLE_EQ(s.median, 2.5);
  EXPECT_NEAR(s.q05, 1.15, 1e-12);
  EXPECT_NEAR(s.q95, 3.85, 1e-12);
  EXPECT_EQ(summarize({}).n, 0);
}

TEST(Metrics, DistNHandWorked) {
  std::vector<std::vector<std::string>> gens = {
      {"the cat sat", "the cat ran"},  // 6 words; 4 unigrams, 3 bigrams, 2 trigrams
      {"a  b"},                        // split(' ') -> ["a", "", "b"]: 3 words, 3 / 2 / 1
      {},                              // no generations: skipped, like np.nanmean
  };
  DistN d = dist_n(gens);
  EXPECT_DOUBLE_EQ(d.dist1, (4.0 / 6 + 3.0 / 3) / 2);
  EXPECT_DOUBLE_EQ(d.dist2, (3.0 / 6 + 2.0 / 3) / 2);
  EXPECT_DOUBLE_EQ(d.dist3, (2.0 / 6 + 1.0 / 3) / 2);
  // Repetition is what Dist-n detects: "great great great great" -> 1/4, 1/4, 1/4.
  DistN r = dist_n({{"great great great great"}});
  EXPECT_DOUBLE_EQ(r.dist1, 0.25);
  EXPECT_DOUBLE_EQ(r.dist2, 0.25);
  EXPECT_DOUBLE_EQ(r.dist3, 0.25);
  // Word tuples, not '_'-joined strings: ("a_b","c") and ("a","b_c") are different bigrams.
  EXPECT_DOUBLE_EQ(dist_n({{"a_b c", "a b_c"}}).dist2, 2.0 / 4);
  EXPECT_TRUE(std::isnan(dist_n({{}}).dist1));
}

TEST(Metrics, PerplexityEqualsExpMeanNll) {
  // Per-token probabilities of two texts; corpus perplexity is the inverse geometric mean of all
  // token probabilities, computed here by products rather than logs.
  std::vector<std::vector<double>> probs = {{0.5, 0.25, 0.125, 0.1}, {0.02, 0.9}};
  std::vector<TextNll> per_text;
  double prod_all = 1;
  int64_t n_all = 0;
  double mean_ppl = 0;
  for (const auto& p : probs) {
    TextNll t;
    double prod = 1;
    for (double q : p) {
      t.nll_sum += -std::log(q);
      prod *= q;
    }
    t.tokens = static_cast<int64_t>(p.size());
    per_text.push_back(t);
    prod_all *= prod;
    n_all += t.tokens;
    mean_ppl += std::pow(prod, -1.0 / p.size()) / probs.size();
  }
  per_text.push_back({0.0, 0});  // an empty text is skipped
  Perplexity ppl = perplexity(per_text);
  EXPECT_NEAR(ppl.corpus, std::pow(prod_all, -1.0 / n_all), 1e-9);
  EXPECT_NEAR(ppl.mean_per_text, mean_ppl, 1e-9);
  EXPECT_EQ(ppl.texts, 2);
  EXPECT_EQ(ppl.tokens, 6);
  EXPECT_THROW(perplexity({{1.0, 0}}), std::invalid_argument);
}

TEST(Metrics, WorstCountIsExactCeil) {
  for (size_t n : {1u, 7u, 100u, 1849u, 5000u}) {
    for (int i = 1; i <= 100; ++i) {
      size_t expect = std::max<size_t>(1, (i * n + 99) / 100);  // integer ceil(i*n/100)
      EXPECT_EQ(worst_count(n, i / 100.0), expect) << n << " " << i;
    }
  }
}

TEST(Metrics, TailSplitHandWorked) {
  std::vector<double> s = {0.5, -3.0, -2.5, -1.0, -2.5};
  TailSplit t = tail_split(s, -2.5);
  EXPECT_EQ(t.indices, (std::vector<size_t>{1, 2, 4}));
  EXPECT_DOUBLE_EQ(t.threshold, -2.5);
  TailSplit q = tail_split(s, -2.5, 0.4);  // 2 worst; the -2.5 tie goes to the lower index
  EXPECT_EQ(q.indices, (std::vector<size_t>{1, 2}));
  EXPECT_DOUBLE_EQ(q.threshold, -2.5);
  TailSplit all = tail_split(s, 0.0, 1.0);
  EXPECT_EQ(all.indices.size(), 5u);
  EXPECT_DOUBLE_EQ(all.threshold, 0.5);
  EXPECT_THROW(tail_split({1.0, NAN}, 0.0), std::invalid_argument);
}

// The paper-scored IMDB tail files: prompt score = the distilbert-imdb logit; a synthetic but
// deterministic per-prompt "reward" derived from the text so that reward order != score order.
struct ScoredPrompts {
  std::vector<double> scores, rewards;
};
ScoredPrompts imdb_scores() {
  DataConfig c;
  c.format = "csv";
  c.text_field = "review";
  c.label_field = "";
  c.score_field = "score";
  ScoredPrompts out;
  for (const char* f : {"tails_neg_texts_200char.csv", "tails_pos_texts_200char.csv"}) {
    auto ex = read_texts(c, std::string(RARLHF_SOURCE_DIR) + "/../shared/data/imdb-rarlhf/" + f);
    for (const auto& e : ex) {
      out.scores.push_back(e.given_score);
      out.rewards.push_back(static_cast<double>(utf8_length(e.text) % 37) / 7.0 - 2.0 + 0.3 * e.given_score);
    }
  }
  return out;
}

TEST(Metrics, QuantileCurveMatchesNaiveOnImdbScores) {
  ScoredPrompts d = imdb_scores();
  const size_t n = d.scores.size();
  ASSERT_EQ(n, 3090u + 2050u);  // PROVENANCE.md row counts
  std::vector<double> curve = quantile_curve(d.scores, d.rewards, 100);
  ASSERT_EQ(curve.size(), 100u);
  for (int i = 1; i <= 100; ++i) {
    // Naive: sort (score, index) pairs afresh, take the ceil(i% of n) first, average.
    std::vector<std::pair<double, size_t>> pairs;
    for (size_t j = 0; j < n; ++j) pairs.emplace_back(d.scores[j], j);
    std::sort(pairs.begin(), pairs.end());
    size_t k = (i * n + 99) / 100;
    double sum = 0;
    for (size_t j = 0; j < k; ++j) sum += d.rewards[pairs[j].second];
    EXPECT_NEAR(curve[i - 1], sum / k, 1e-9) << "q=" << i << "%";
  }
  EXPECT_NEAR(curve.back(), std::accumulate(d.rewards.begin(), d.rewards.end(), 0.0) / n, 1e-9);
  EXPECT_THROW(quantile_curve({1, 2}, {1}, 100), std::invalid_argument);
}

TEST(Metrics, TailSplitOnImdbScoresByThresholdAndQuantile) {
  ScoredPrompts d = imdb_scores();
  TailSplit t = tail_split(d.scores, -2.5);  // paper's IMDB tail
  size_t naive = std::count_if(d.scores.begin(), d.scores.end(), [](double s) { return s <= -2.5; });
  EXPECT_EQ(t.indices.size(), naive);
  EXPECT_GT(naive, 0u);
  EXPECT_TRUE(std::is_sorted(t.indices.begin(), t.indices.end()));
  for (size_t i : t.indices) EXPECT_LE(d.scores[i], -2.5);

  TailSplit q = tail_split(d.scores, 0.0, 0.1);
  EXPECT_EQ(q.indices.size(), (d.scores.size() + 9) / 10);
  std::vector<bool> in(d.scores.size(), false);
  for (size_t i : q.indices) in[i] = true;
  double max_in = -1e9, min_out = 1e9;
  for (size_t i = 0; i < d.scores.size(); ++i) (in[i] ? max_in : min_out) = in[i] ? std::max(max_in, d.scores[i]) : std::min(min_out, d.scores[i]);
  EXPECT_LE(max_in, min_out);
  EXPECT_DOUBLE_EQ(q.threshold, max_in);
}

}  // namespace
}  // namespace rarlhf
