// Prompt-score cache: reward-model scores of prompt texts, keyed by a 128-bit hash of the text,
// stored as JSONL and written atomically, so the tail split of a (data, reward model) pair is
// scored once and reused by every eval run. The first line names the scorer (reward_key); a file
// written for another scorer is ignored with a warning, never mixed in.
// File: {"rarlhf_score_cache": 1, "reward_key": "..."} then {"hash": "<32 hex>", "score": x} per line.
#pragma once
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

namespace rarlhf {

class ScoreCache {
 public:
  // reward_key identifies the scorer (e.g. "hf_classifier:/models/distilbert-imdb:1:+1:1").
  explicit ScoreCache(std::string reward_key = "") : reward_key_(std::move(reward_key)) {}

  // FNV-1a 128-bit hash of the bytes of `text`, as 32 lowercase hex digits.
  static std::string hash_text(const std::string& text);

  bool lookup(const std::string& text, double* score) const;
  void insert(const std::string& text, double score);
  size_t size() const { return scores_.size(); }
  const std::string& reward_key() const { return reward_key_; }

  // Scores for all `texts` in order: cached ones from the cache, the others from one call of
  // score_missing(missing texts) (which must return one score per text), then cached.
  std::vector<double> score_all(
      const std::vector<std::string>& texts,
      const std::function<std::vector<double>(const std::vector<std::string>&)>& score_missing);

  const std::unordered_map<std::string, double>& entries() const { return scores_; }
  void insert_hash(const std::string& hash, double score) { scores_[hash] = score; }

 private:
  std::string reward_key_;
  std::unordered_map<std::string, double> scores_;  // hash_text(text) -> score
};

// Loads `path` for `reward_key`. A missing file, or one written for another reward_key (warning),
// gives an empty cache. A malformed line throws IoError naming path:line.
ScoreCache load_score_cache(const std::string& path, const std::string& reward_key);

// Writes the cache atomically, entries sorted by hash (stable diffs, reproducible files).
void save_score_cache(const std::string& path, const ScoreCache& cache);

}  // namespace rarlhf
