// Prompt-score cache: see include/rarlhf/eval/score_cache.h.
#include "rarlhf/eval/score_cache.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/text_lines.h"

namespace rarlhf {
namespace {

using nlohmann::json;

bool is_hash(const std::string& s) {
  return s.size() == 32 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

}  // namespace

std::string ScoreCache::hash_text(const std::string& text) {
  // FNV-1a, 128-bit variant (offset basis and prime from the FNV specification).
  using u128 = unsigned __int128;
  const u128 prime = (static_cast<u128>(0x0000000001000000ULL) << 64) | 0x000000000000013BULL;
  u128 h = (static_cast<u128>(0x6c62272e07bb0142ULL) << 64) | 0x62b821756295c58dULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= prime;
  }
  static const char* kHex = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 31; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kHex[static_cast<unsigned>(h & 0xF)];
    h >>= 4;
  }
  return out;
}

bool ScoreCache::lookup(const std::string& text, double* score) const {
  auto it = scores_.find(hash_text(text));
  if (it == scores_.end()) return false;
  *score = it->second;
  return true;
}

void ScoreCache::insert(const std::string& text, double score) { scores_[hash_text(text)] = score; }

std::vector<double> ScoreCache::score_all(
    const std::vector<std::string>& texts,
    const std::function<std::vector<double>(const std::vector<std::string>&)>& score_missing) {
  std::vector<double> out(texts.size(), NAN);
  std::vector<std::string> missing;
  std::vector<size_t> missing_at;
  std::unordered_map<std::string, size_t> first_missing;  // score duplicate texts once
  for (size_t i = 0; i < texts.size(); ++i) {
    if (lookup(texts[i], &out[i])) continue;
    if (first_missing.emplace(texts[i], missing.size()).second) missing.push_back(texts[i]);
    missing_at.push_back(i);
  }
  if (!missing.empty()) {
    std::vector<double> fresh = score_missing(missing);
    if (fresh.size() != missing.size()) {
      throw std::logic_error("score_all: scorer returned " + std::to_string(fresh.size()) + " scores for " +
                             std::to_string(missing.size()) + " texts");
    }
    for (size_t j = 0; j < missing.size(); ++j) insert(missing[j], fresh[j]);
    for (size_t i : missing_at) out[i] = fresh[first_missing.at(texts[i])];
  }
  return out;
}

ScoreCache load_score_cache(const std::string& path, const std::string& reward_key) {
  ScoreCache cache(reward_key);
  if (!file_exists(path)) return cache;
  bool other_reward = false;
  for_each_line(read_file(path), [&](int64_t line_no, const std::string& line) {
    std::string where = path + ":" + std::to_string(line_no);
    json j = json::parse(line, nullptr, false);
    if (line_no == 1) {
      if (j.is_discarded() || !j.is_object() || !j.contains("rarlhf_score_cache") || !j.contains("reward_key") ||
          !j["reward_key"].is_string()) {
        throw IoError(where + ": not a rarlhf score cache header; delete the file to recompute the scores");
      }
      if (j["reward_key"].get<std::string>() != reward_key) {
        RARLHF_LOG_WARN("{}: written for reward '{}', not '{}'; ignoring it (the scores will be recomputed)", path,
                        j["reward_key"].get<std::string>(), reward_key);
        other_reward = true;
        return false;
      }
      return true;
    }
    if (j.is_discarded() || !j.is_object() || !j.contains("hash") || !j["hash"].is_string() ||
        !is_hash(j["hash"].get<std::string>()) || !j.contains("score") || !j["score"].is_number()) {
      throw IoError(where + ": expected {\"hash\": <32 hex>, \"score\": <number>}; delete the file to recompute");
    }
    cache.insert_hash(j["hash"].get<std::string>(), j["score"].get<double>());
    return true;
  });
  return other_reward ? ScoreCache(reward_key) : cache;
}

void save_score_cache(const std::string& path, const ScoreCache& cache) {
  std::vector<std::pair<std::string, double>> rows(cache.entries().begin(), cache.entries().end());
  std::sort(rows.begin(), rows.end());
  write_file_atomic(path, [&](std::ostream& out) {
    out << json{{"rarlhf_score_cache", 1}, {"reward_key", cache.reward_key()}}.dump() << "\n";
    for (const auto& [hash, score] : rows) {
      if (!std::isfinite(score)) {
        throw IoError(path + ": score for " + hash + " is not finite; the reward model returned NaN/inf");
      }
      out << json{{"hash", hash}, {"score", score}}.dump() << "\n";
    }
  });
}

}  // namespace rarlhf
