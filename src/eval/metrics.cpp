// Evaluation metrics: see include/rarlhf/eval/metrics.h for the exact conventions.
#include "rarlhf/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <stdexcept>

namespace rarlhf {
namespace {

// Indices 0..n-1 ordered by score ascending, ties by index (stable).
std::vector<size_t> order_by_score(const std::vector<double>& scores) {
  for (size_t i = 0; i < scores.size(); ++i) {
    if (std::isnan(scores[i])) {
      throw std::invalid_argument("prompt score " + std::to_string(i) + " is NaN; rescore the prompts");
    }
  }
  std::vector<size_t> idx(scores.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  return idx;
}

std::vector<std::string> split_spaces(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t p = s.find(' ', start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

}  // namespace

double quantile(std::vector<double> x, double q) {
  if (x.empty()) throw std::invalid_argument("quantile of an empty sample");
  if (!(q >= 0.0 && q <= 1.0)) throw std::invalid_argument("quantile level must be in [0, 1]");
  std::sort(x.begin(), x.end());
  double h = (static_cast<double>(x.size()) - 1.0) * q;
  size_t lo = static_cast<size_t>(std::floor(h));
  size_t hi = std::min(lo + 1, x.size() - 1);
  return x[lo] + (h - static_cast<double>(lo)) * (x[hi] - x[lo]);
}

Summary summarize(const std::vector<double>& x) {
  Summary s;
  if (x.empty()) return s;
  s.n = static_cast<int64_t>(x.size());
  double sum = 0;
  for (double v : x) sum += v;
  s.mean = sum / static_cast<double>(x.size());
  double ss = 0;
  for (double v : x) ss += (v - s.mean) * (v - s.mean);
  s.std = std::sqrt(ss / static_cast<double>(x.size()));
  std::vector<double> sorted = x;
  std::sort(sorted.begin(), sorted.end());
  s.min = sorted.front();
  s.max = sorted.back();
  s.q05 = quantile(sorted, 0.05);
  s.q25 = quantile(sorted, 0.25);
  s.median = quantile(sorted, 0.5);
  s.q75 = quantile(sorted, 0.75);
  s.q95 = quantile(sorted, 0.95);
  return s;
}

double cvar(const std::vector<double>& x, double alpha) {
  if (x.empty()) throw std::invalid_argument("CVaR of an empty sample");
  if (!(alpha > 0.0 && alpha <= 1.0)) throw std::invalid_argument("CVaR alpha must be in (0, 1]");
  std::vector<double> s = x;
  std::sort(s.begin(), s.end());
  double m = alpha * static_cast<double>(s.size());
  double r = std::round(m);
  if (std::abs(m - r) < 1e-9) m = r;  // 0.3*10 = 2.9999999999999996 is 3 samples, not 2 + 0.99..
  size_t k = std::min(static_cast<size_t>(std::floor(m)), s.size());
  double frac = m - static_cast<double>(k);
  double sum = 0;
  for (size_t i = 0; i < k; ++i) sum += s[i];
  if (frac > 0.0 && k < s.size()) sum += frac * s[k];
  return sum / m;
}

size_t worst_count(size_t n, double q) {
  if (n == 0) return 0;
  double m = q * static_cast<double>(n);
  double r = std::round(m);
  double c = (std::abs(m - r) < 1e-9) ? r : std::ceil(m);
  return std::min(n, std::max<size_t>(1, static_cast<size_t>(c)));
}

std::vector<double> quantile_curve(const std::vector<double>& prompt_scores, const std::vector<double>& rewards,
                                   int points) {
  if (prompt_scores.size() != rewards.size()) {
    throw std::invalid_argument("quantile_curve: " + std::to_string(prompt_scores.size()) + " prompt scores but " +
                                std::to_string(rewards.size()) + " rewards");
  }
  if (prompt_scores.empty()) throw std::invalid_argument("quantile_curve: no prompts");
  if (points < 1) throw std::invalid_argument("quantile_curve: points must be >= 1");
  std::vector<size_t> order = order_by_score(prompt_scores);
  // prefix[k] = sum of the rewards of the k worst prompts
  std::vector<double> prefix(order.size() + 1, 0.0);
  for (size_t i = 0; i < order.size(); ++i) prefix[i + 1] = prefix[i] + rewards[order[i]];
  std::vector<double> curve(static_cast<size_t>(points));
  for (int i = 1; i <= points; ++i) {
    size_t k = worst_count(order.size(), static_cast<double>(i) / points);
    curve[static_cast<size_t>(i - 1)] = prefix[k] / static_cast<double>(k);
  }
  return curve;
}

TailSplit tail_split(const std::vector<double>& prompt_scores, double threshold, double quantile_level) {
  TailSplit t;
  std::vector<size_t> order = order_by_score(prompt_scores);
  if (quantile_level > 0.0) {
    if (quantile_level > 1.0) throw std::invalid_argument("tail quantile must be in (0, 1]");
    if (order.empty()) return t;
    size_t k = worst_count(order.size(), quantile_level);
    t.indices.assign(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k));
    t.threshold = prompt_scores[order[k - 1]];
    std::sort(t.indices.begin(), t.indices.end());
    return t;
  }
  t.threshold = threshold;
  for (size_t i = 0; i < prompt_scores.size(); ++i) {
    if (prompt_scores[i] <= threshold) t.indices.push_back(i);
  }
  return t;
}

DistN dist_n(const std::vector<std::vector<std::string>>& generations_per_prompt) {
  double s1 = 0, s2 = 0, s3 = 0;
  size_t prompts = 0;
  for (const auto& gens : generations_per_prompt) {
    if (gens.empty()) continue;
    std::set<std::vector<std::string>> uni, bi, tri;
    size_t words = 0;
    for (const auto& g : gens) {
      std::vector<std::string> w = split_spaces(g);
      words += w.size();
      for (size_t i = 0; i < w.size(); ++i) {
        uni.insert({w[i]});
        if (i + 1 < w.size()) bi.insert({w[i], w[i + 1]});
        if (i + 2 < w.size()) tri.insert({w[i], w[i + 1], w[i + 2]});
      }
    }
    s1 += static_cast<double>(uni.size()) / static_cast<double>(words);
    s2 += static_cast<double>(bi.size()) / static_cast<double>(words);
    s3 += static_cast<double>(tri.size()) / static_cast<double>(words);
    ++prompts;
  }
  if (prompts == 0) return {NAN, NAN, NAN};
  double p = static_cast<double>(prompts);
  return {s1 / p, s2 / p, s3 / p};
}

Perplexity perplexity(const std::vector<TextNll>& per_text) {
  Perplexity out;
  double total_nll = 0, sum_ppl = 0;
  for (const auto& t : per_text) {
    if (t.tokens <= 0) continue;
    total_nll += t.nll_sum;
    out.tokens += t.tokens;
    sum_ppl += std::exp(t.nll_sum / static_cast<double>(t.tokens));
    ++out.texts;
  }
  if (out.texts == 0) throw std::invalid_argument("perplexity: no text has a scored token");
  out.corpus = std::exp(total_nll / static_cast<double>(out.tokens));
  out.mean_per_text = sum_ppl / static_cast<double>(out.texts);
  return out;
}

}  // namespace rarlhf
