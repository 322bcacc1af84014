// VADER rule-based sentiment (Hutto & Gilbert, "VADER: A Parsimonious Rule-based Model for
// Sentiment Analysis of Social Media Text", ICWSM 2014), reimplemented from the paper and the
// lexicon file. Behaviour matches the JS reference `vader-sentiment@1.1.3` (JS whitespace split,
// UTF-16 token lengths, its never/least/idiom quirks); tests/reward/vader_test.cpp checks that
// against golden scores. Torch-free; one Vader is immutable after load and safe to share.
#pragma once
#include <string>
#include <unordered_map>
#include <vector>

namespace rarlhf {

struct VaderScores {
  double neg = 0, neu = 0, pos = 0;  // proportions of text (unrounded)
  double compound = 0;               // normalized sum of valences, in [-1, 1] (unrounded)
};

class Vader {
 public:
  // Parses vader_lexicon.txt lines "token<TAB>mean<TAB>std<TAB>[ratings]"; a later duplicate wins
  // (as in the reference's object literal). Throws IoError naming the file and line when malformed.
  static Vader from_file(const std::string& path);
  static Vader from_string(const std::string& content, const std::string& origin);

  VaderScores polarity_scores(const std::string& text) const;
  double compound(const std::string& text) const { return polarity_scores(text).compound; }

  size_t lexicon_size() const { return lexicon_.size(); }
  // Valence of a lexicon token (exact key), or 0 if absent.
  double valence(const std::string& token) const;

 private:
  const double* lookup(const std::string& lowered) const;
  std::unordered_map<std::string, double> lexicon_;
};

// Splits like JS String.prototype.split(/\s/): on each single JS whitespace code point (ASCII
// \t\n\v\f\r and space, U+00A0, U+1680, U+2000-U+200A, U+2028/9, U+202F, U+205F, U+3000, U+FEFF),
// keeping empty pieces. Exposed for tests.
std::vector<std::string> vader_split_js_whitespace(const std::string& text);

// Length of a UTF-8 string in UTF-16 code units (JS String.length).
size_t utf16_length(const std::string& s);

}  // namespace rarlhf
