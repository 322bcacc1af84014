// Evaluation metrics (torch-free): summary statistics, CVaR_alpha, the paper's quantile curve,
// tail split of the test prompts, Dist-n (DExperts) and perplexity from per-text NLL sums.
// Definitions follow reference/ra-rlhf.md §1.6-1.7; each function states its exact convention.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rarlhf {

struct Summary {
  int64_t n = 0;
  double mean = 0, std = 0;  // std with ddof = 0 (numpy's np.std default)
  double min = 0, max = 0;
  double q05 = 0, q25 = 0, median = 0, q75 = 0, q95 = 0;
};

// Linear-interpolation quantile, q in [0, 1] (numpy's default "linear" method, Hyndman-Fan 7):
// position h = (n-1)q between the sorted values. Throws std::invalid_argument on empty x / bad q.
double quantile(std::vector<double> x, double q);

// n, mean, std, min, max and quantiles of x; all zero when x is empty.
Summary summarize(const std::vector<double>& x);

// CVaR_alpha: the mean of the lowest alpha-fraction of the sample (lower tail; low reward = bad).
// Fractional-count convention (the exact lower-tail expectation of the empirical distribution,
// Acerbi & Tasche 2002): with sorted x_(1) <= ... <= x_(n), m = alpha*n, k = floor(m),
//   CVaR = ( sum_{i<=k} x_(i) + (m - k) * x_(k+1) ) / m
// so the boundary sample counts with weight m - k. alpha = 1 gives the mean; alpha -> 0 the
// minimum. alpha in (0, 1]; throws std::invalid_argument on empty x or alpha outside (0, 1].
double cvar(const std::vector<double>& x, double alpha);

// Number of items in the worst q-fraction of n: ceil(q*n), at least 1 (q*n within 1e-9 of an
// integer counts as that integer, so 0.07*100 is 7, not 8). Shared by quantile_curve/tail_split.
size_t worst_count(size_t n, double q);

// The paper's quantile plot (new_quantile_plot_*.py): prompts sorted by prompt score ascending
// (ties by index); point i (1..points) = mean reward over the worst worst_count(n, i/points)
// prompts. Returns `points` values; the last is the mean reward over all prompts.
std::vector<double> quantile_curve(const std::vector<double>& prompt_scores, const std::vector<double>& rewards,
                                   int points = 100);

struct TailSplit {
  std::vector<size_t> indices;  // ascending prompt indices in the tail
  double threshold = 0;         // prompt score bound: score <= threshold (quantile: the largest tail score)
};

// Tail prompts. quantile > 0: the worst_count(n, quantile) lowest prompt scores (ties by index);
// otherwise every prompt with score <= threshold (paper: IMDB -2.5, Jigsaw +5). NaN scores throw.
TailSplit tail_split(const std::vector<double>& prompt_scores, double threshold, double quantile = 0.0);

// Dist-n as in DExperts' evaluate_generations.py: per prompt, pool its generations, split each on
// single spaces (so "a  b" has an empty word, as Python's str.split(' ')), count distinct n-grams
// over the pool / total words in the pool; average over prompts that have generations.
// N-grams are compared as word tuples (DExperts joins with '_', which can merge distinct n-grams
// of words containing '_'; we do not reproduce that). NaN when no prompt has a generation.
struct DistN {
  double dist1 = 0, dist2 = 0, dist3 = 0;
};
DistN dist_n(const std::vector<std::vector<std::string>>& generations_per_prompt);

// Per-text negative log-likelihood: the sum over its scored tokens, and how many there were.
struct TextNll {
  double nll_sum = 0;
  int64_t tokens = 0;
};
struct Perplexity {
  double corpus = 0;         // exp(sum of NLL / sum of tokens): token-weighted
  double mean_per_text = 0;  // mean over texts of exp(nll_sum / tokens): what HF evaluate's
                             // "perplexity" measurement reports as mean_perplexity (paper §1.7)
  int64_t texts = 0, tokens = 0;
};
// Texts with no scored tokens are skipped; throws std::invalid_argument when none is left.
Perplexity perplexity(const std::vector<TextNll>& per_text);

}  // namespace rarlhf
