// Prompt building, seeded shuffling and class resampling: see include/rarlhf/data/prompts.h.
#include "rarlhf/data/prompts.h"

#include <algorithm>
#include <numeric>

#include "rarlhf/common/error.h"
#include "rarlhf/common/random.h"

namespace rarlhf {

std::pair<std::vector<int64_t>, std::string> prompt_ids_and_text(const Tokenizer& tok, const std::string& text,
                                                                 int64_t prompt_tokens) {
  std::vector<int64_t> ids = tok.encode(text, /*add_special_tokens=*/true);
  if (static_cast<int64_t>(ids.size()) > prompt_tokens) ids.resize(static_cast<size_t>(prompt_tokens));
  const int64_t bos = tok.bos_id();
  const bool leading_bos = bos >= 0 && !ids.empty() && ids.front() == bos;
  if (leading_bos && ids.size() == 1) return {{}, ""};  // nothing of the text itself
  std::string decoded = tok.decode(leading_bos ? std::vector<int64_t>(ids.begin() + 1, ids.end()) : ids);
  return {std::move(ids), std::move(decoded)};
}

std::vector<Prompt> build_prompts(const std::vector<TextExample>& examples, const Tokenizer& tok,
                                  int64_t prompt_tokens) {
  if (prompt_tokens <= 0) {
    throw ConfigError("data.prompt_tokens: " + std::to_string(prompt_tokens) + " must be > 0");
  }
  std::vector<Prompt> out;
  out.reserve(examples.size());
  for (const auto& ex : examples) {
    auto [ids, text] = prompt_ids_and_text(tok, ex.text, prompt_tokens);
    if (ids.empty()) continue;
    Prompt p;
    p.text = std::move(text);
    p.ids = std::move(ids);
    p.label = ex.label;
    p.given_score = ex.given_score;
    p.where = ex.where;
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<size_t> shuffled_indices(size_t n, uint64_t seed) {
  std::vector<size_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  SplitMix64 rng{seed};
  for (size_t i = n; i > 1; --i) std::swap(idx[i - 1], idx[rng.below(i)]);
  return idx;
}

std::vector<std::string> perplexity_texts(const std::vector<TextExample>& examples, const std::string& label,
                                          int64_t max_chars) {
  std::vector<std::string> out;
  for (const auto& ex : examples) {
    if (!label.empty() && ex.label != label) continue;
    out.push_back(max_chars > 0 ? utf8_prefix(ex.text, max_chars) : ex.text);
  }
  return out;
}

std::vector<TextExample> resample_classes(const std::vector<TextExample>& examples,
                                          const std::string& positive_label, double positive_fraction,
                                          uint64_t seed, int64_t total) {
  if (!(positive_fraction > 0.0 && positive_fraction < 1.0)) {
    throw ConfigError("resample: positive fraction " + std::to_string(positive_fraction) + " must be in (0, 1)");
  }
  std::vector<size_t> pos, neg;
  for (size_t i = 0; i < examples.size(); ++i) (examples[i].label == positive_label ? pos : neg).push_back(i);
  const int64_t P = static_cast<int64_t>(pos.size()), N = static_cast<int64_t>(neg.size());
  if (P == 0 || N == 0) {
    throw ConfigError("resample: " + std::to_string(P) + " examples labelled '" + positive_label + "' and " +
                      std::to_string(N) + " others; both classes are needed (check the label name)");
  }
  auto n_pos = [&](int64_t t) { return static_cast<int64_t>(std::llround(static_cast<double>(t) * positive_fraction)); };
  auto fits = [&](int64_t t) { return n_pos(t) <= P && t - n_pos(t) <= N; };
  if (total <= 0) {
    total = static_cast<int64_t>(std::min(static_cast<double>(P) / positive_fraction,
                                          static_cast<double>(N) / (1.0 - positive_fraction)));
    while (total > 0 && !fits(total)) --total;
    while (fits(total + 1)) ++total;
  }
  if (total <= 0 || !fits(total)) {
    throw ConfigError("resample: cannot take " + std::to_string(total) + " examples with " +
                      std::to_string(positive_fraction) + " labelled '" + positive_label + "' from " +
                      std::to_string(P) + " such and " + std::to_string(N) + " others; lower the total or " +
                      "check the labels");
  }
  const int64_t k_pos = n_pos(total), k_neg = total - k_pos;
  std::vector<size_t> keep;
  keep.reserve(static_cast<size_t>(total));
  // Independent streams per class so that changing one class's size leaves the other's pick alone.
  std::vector<size_t> order = shuffled_indices(pos.size(), seed);
  for (int64_t i = 0; i < k_pos; ++i) keep.push_back(pos[order[static_cast<size_t>(i)]]);
  order = shuffled_indices(neg.size(), seed ^ 0xD1B54A32D192ED03ULL);
  for (int64_t i = 0; i < k_neg; ++i) keep.push_back(neg[order[static_cast<size_t>(i)]]);
  std::sort(keep.begin(), keep.end());
  std::vector<TextExample> out;
  out.reserve(keep.size());
  for (size_t i : keep) out.push_back(examples[i]);
  return out;
}

std::vector<TextExample> resample_prompt_set(const std::vector<TextExample>& examples, const DataConfig& cfg,
                                             double share, const std::string& field, const std::string& path,
                                             uint64_t seed) {
  if (share <= 0) return examples;
  try {
    return resample_classes(examples, cfg.resample_label, share, seed);
  } catch (const ConfigError& e) {
    throw ConfigError(field + " (" + path + "): " + e.what());
  }
}

std::vector<TextExample> sft_texts(const Config& cfg, ReadReport* report) {
  std::vector<TextExample> texts =
      resample_prompt_set(read_texts(cfg.data, cfg.data.train_path, report), cfg.data, cfg.data.train_resample_share,
                          "data.train_resample_share", cfg.data.train_path, static_cast<uint64_t>(cfg.run.seed));
  return filter_label(texts, cfg.sft.label_filter);
}

std::vector<Prompt> load_prompts(const DataConfig& cfg, const std::string& path, const Tokenizer& tok, double share,
                                 const std::string& field, uint64_t seed, ReadReport* report) {
  const std::vector<TextExample> examples =
      resample_prompt_set(read_texts(cfg, path, report), cfg, share, field, path, seed);
  std::vector<Prompt> prompts = build_prompts(examples, tok, cfg.prompt_tokens);
  if (prompts.empty()) throw IoError(path + ": no text gives a prompt (every text encodes to no token)");
  return prompts;
}

}  // namespace rarlhf
