// Prompts from dataset texts (paper §1.6: prompt = the first N GPT-2 tokens of a text, and the
// query text is the decode of those tokens), class resampling (Jigsaw/RTP: train 70/30
// non-toxic/toxic, test 50/50) and seeded, platform-independent shuffling for num_prompts.
#pragma once
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "rarlhf/data/dataset.h"
#include "rarlhf/text/tokenizer.h"

namespace rarlhf {

struct Prompt {
  std::string text;           // decode(ids); a cut through a multi-byte character stays as bytes
  std::vector<int64_t> ids;   // the first prompt_tokens tokens of the text (all of them if fewer)
  std::string label;
  double given_score = NAN;   // the dataset's score of the whole source text (not of the prompt)
  std::string where;          // source file:line
};

// One prompt per example, in order. The ids are the tokenizer's encoding with the specials its model
// expects (BOS for Llama-family tokenizers, nothing for GPT-2), cut to prompt_tokens; the text is
// the decode of those ids after any leading BOS (what a reward model reads). Texts that encode to no
// token are skipped. Throws ConfigError when prompt_tokens <= 0.
std::vector<Prompt> build_prompts(const std::vector<TextExample>& examples, const Tokenizer& tok,
                                  int64_t prompt_tokens);
// The ids of one text as build_prompts makes them, and their text.
std::pair<std::vector<int64_t>, std::string> prompt_ids_and_text(const Tokenizer& tok, const std::string& text,
                                                                 int64_t prompt_tokens);

// A permutation of 0..n-1 from a Fisher-Yates shuffle driven by splitmix64(seed): the same on
// every platform and compiler (std::shuffle/uniform_int_distribution are not).
std::vector<size_t> shuffled_indices(size_t n, uint64_t seed);

// The first n items of a seeded shuffle (all of them, shuffled, if n == 0 or n >= size), like
// HF datasets' shuffle(seed).select(range(n)) (not the same permutation as numpy's).
template <class T>
std::vector<T> shuffle_select(const std::vector<T>& items, size_t n, uint64_t seed) {
  std::vector<size_t> idx = shuffled_indices(items.size(), seed);
  if (n == 0 || n > idx.size()) n = idx.size();
  std::vector<T> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) out.push_back(items[idx[i]]);
  return out;
}

// Human reference texts for perplexity (paper §1.7: IMDB positive test reviews cut to their first
// 1,000 characters, Jigsaw non-toxic test comments cut to 120): keeps label == `label` ("" = all)
// and cuts each text to max_chars code points (0 = no cut), as Python's text[:max_chars].
std::vector<std::string> perplexity_texts(const std::vector<TextExample>& examples, const std::string& label,
                                          int64_t max_chars);

// Resamples without replacement so that round(total * positive_fraction) examples carry
// positive_label and the rest do not. total = 0: the largest total both classes allow. The
// kept examples stay in their original order. Throws ConfigError when a class is too small or
// positive_fraction is not in (0, 1).
std::vector<TextExample> resample_classes(const std::vector<TextExample>& examples,
                                          const std::string& positive_label, double positive_fraction,
                                          uint64_t seed, int64_t total = 0);

// The SFT stage's texts: data.train_path read, resampled to data.train_resample_share with
// run.seed exactly as the RL train prompts are (the paper's Jigsaw SFT trains on the non-toxic rows
// of its 70/30 resampled train set), then sft.label_filter applied.
std::vector<TextExample> sft_texts(const Config& cfg, ReadReport* report = nullptr);

// The configured class balance of a prompt set: resample_classes(examples, cfg.resample_label,
// share, seed) when share > 0, else the examples unchanged. Errors name `field` (e.g.
// "data.train_resample_share") and the file the examples came from.
std::vector<TextExample> resample_prompt_set(const std::vector<TextExample>& examples, const DataConfig& cfg,
                                             double share, const std::string& field, const std::string& path,
                                             uint64_t seed);

// A prompt file as training and evaluation use it: read_texts(cfg, path) (which reports malformed
// rows), resample_prompt_set(share, field), build_prompts(cfg.prompt_tokens). IoError when no text
// gives a prompt. `report` (optional) receives read_texts' counts.
std::vector<Prompt> load_prompts(const DataConfig& cfg, const std::string& path, const Tokenizer& tok, double share,
                                 const std::string& field, uint64_t seed, ReadReport* report = nullptr);

}  // namespace rarlhf
