// VADER sentiment: tokenization, per-token valence with the paper's heuristics (§3.2: punctuation,
// capitalization, degree modifiers, "but", negation within three tokens), then
// compound = x / sqrt(x^2 + 15). Constants are the paper's empirically derived ones.
// Where the JS reference (vader-sentiment@1.1.3) differs from the Python original we follow the
// JS behaviour, because that is what the golden scores come from; those spots say so.
#include "rarlhf/reward/vader.h"

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <unordered_set>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/text_lines.h"

namespace rarlhf {
namespace {

constexpr double kBoostIncr = 0.293;   // B_INCR: booster word ("very")
constexpr double kBoostDecr = -0.293;  // B_DECR: dampener word ("kind of")
constexpr double kCapsIncr = 0.733;    // C_INCR: ALL-CAPS emphasis when the text mixes case
constexpr double kNegScalar = -0.74;   // N_SCALAR: negation flips and dampens
constexpr double kExclaimIncr = 0.292;  // per "!" (at most 4)
constexpr double kQuestionIncr = 0.18;  // per "?" when 2 or 3, capped at 0.96
constexpr double kNormAlpha = 15.0;

// Degree adverbs (Wiktionary's English degree adverbs, as listed by the VADER authors).
const std::unordered_set<std::string>& boosters_up() {
  static const std::unordered_set<std::string> s = {
      "absolutely", "amazingly", "awfully", "completely", "considerably", "decidedly", "deeply",
      "effing", "enormously", "entirely", "especially", "exceptionally", "extremely", "fabulously",
      "flipping", "flippin", "fricking", "frickin", "frigging", "friggin", "fully", "fucking",
      "greatly", "hella", "highly", "hugely", "incredibly", "intensely", "majorly", "more", "most",
      "particularly", "purely", "quite", "really", "remarkably", "so", "substantially",
      "thoroughly", "totally", "tremendously", "uber", "unbelievably", "unusually", "utterly",
      "very"};
  return s;
}
const std::unordered_set<std::string>& boosters_down() {
  static const std::unordered_set<std::string> s = {
      "almost", "barely", "hardly", "just enough", "kind of", "kinda", "kindof", "kind-of", "less",
      "little", "marginally", "occasionally", "partly", "scarcely", "slightly", "somewhat",
      "sort of", "sorta", "sortof", "sort-of"};
  return s;
}
bool is_booster(const std::string& w) { return boosters_up().count(w) || boosters_down().count(w); }
double booster_value(const std::string& w) {
  if (boosters_up().count(w)) return kBoostIncr;
  if (boosters_down().count(w)) return kBoostDecr;
  return 0.0;
}

const std::unordered_set<std::string>& negation_words() {
  static const std::unordered_set<std::string> s = {
      "aint", "arent", "cannot", "cant", "couldnt", "darent", "didnt", "doesnt", "ain't", "aren't",
      "can't", "couldn't", "daren't", "didn't", "doesn't", "dont", "hadnt", "hasnt", "havent",
      "isnt", "mightnt", "mustnt", "neither", "don't", "hadn't", "hasn't", "haven't", "isn't",
      "mightn't", "mustn't", "neednt", "needn't", "never", "none", "nope", "nor", "not", "nothing",
      "nowhere", "oughtnt", "shant", "shouldnt", "uhuh", "wasnt", "werent", "oughtn't", "shan't",
      "shouldn't", "uh-uh", "wasn't", "weren't", "without", "wont", "wouldnt", "won't", "wouldn't",
      "rarely", "seldom", "despite"};
  return s;
}
// A single token negates when it is a negation word (case-sensitive, as in the reference) or
// contains "n't".
bool negates(const std::string& w) {
  return negation_words().count(w) > 0 || w.find("n't") != std::string::npos;
}

// Idioms whose meaning differs from their words' valences; the value replaces the valence.
const std::unordered_map<std::string, double>& idioms() {
  static const std::unordered_map<std::string, double> m = {
      {"the shit", 3},        {"the bomb", 3},         {"bad ass", 1.5},      {"yeah right", -2},
      {"cut the mustard", 2}, {"kiss of death", -1.5}, {"hand to mouth", -2}};
  return m;
}

// Leading/trailing punctuation strings that are stripped from a token when the bare word also
// occurs in the text (so "good!" scores as "good" but ":)" stays an emoticon).
const std::vector<std::string>& punct_affixes() {
  static const std::vector<std::string> v = {".",  "!",   "?",   ",",   ";",   ":",    "-",   "'",   "\"",
                                             "!!", "!!!", "??",  "???", "?!?", "!?!", "?!?!", "!?!?"};
  return v;
}

bool is_ascii_punct(unsigned char c) {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126);
}

// JS toLowerCase restricted to what can reach an ASCII lexicon key: ASCII letters, plus the
// KELVIN SIGN (U+212A), the one non-ASCII code point whose lower case is ASCII ("k"). Other
// non-ASCII text lower-cases to non-ASCII and cannot match any key, so it is left as is.
std::string lower(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = s[i];
    if (c >= 'A' && c <= 'Z') {
      out += static_cast<char>(c - 'A' + 'a');
    } else if (c == 0xE2 && i + 2 < s.size() && (unsigned char)s[i + 1] == 0x84 &&
               (unsigned char)s[i + 2] == 0xAA) {
      out += 'k';
      i += 2;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Python's str.isupper() as the reference approximates it: no ASCII lower-case letter and at
// least one ASCII upper-case letter.
bool is_all_caps(const std::string& w) {
  bool upper = false;
  for (unsigned char c : w) {
    if (c >= 'a' && c <= 'z') return false;
    if (c >= 'A' && c <= 'Z') upper = true;
  }
  return upper;
}

// Decodes one UTF-8 code point at s[i]; advances i. Invalid bytes decode as themselves.
uint32_t next_code_point(const std::string& s, size_t& i) {
  unsigned char c = s[i];
  int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : 0;
  if (i + extra >= s.size()) extra = 0;  // truncated sequence: take the byte alone
  uint32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k <= extra; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += 1 + extra;
  return cp;
}

bool is_js_space(uint32_t cp) {
  return cp == 0x09 || cp == 0x0A || cp == 0x0B || cp == 0x0C || cp == 0x0D || cp == 0x20 ||
         cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 ||
         cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000 || cp == 0xFEFF;
}

// The tokens of length > 1 (UTF-16 units): single characters carry no sentiment in VADER.
std::vector<std::string> long_tokens(const std::string& text) {
  std::vector<std::string> out;
  for (auto& t : vader_split_js_whitespace(text))
    if (utf16_length(t) > 1) out.push_back(std::move(t));
  return out;
}

// VADER's tokens: whitespace split, keeping emoticons and contractions, but stripping a
// leading or trailing punctuation affix when the bare word occurs in the punctuation-free text.
std::vector<std::string> words_and_emoticons(const std::string& text) {
  std::string no_punct;
  no_punct.reserve(text.size());
  for (unsigned char c : text)
    if (!is_ascii_punct(c)) no_punct += static_cast<char>(c);
  std::unordered_set<std::string> bare;
  for (auto& w : long_tokens(no_punct)) bare.insert(std::move(w));

  std::vector<std::string> words = long_tokens(text);
  for (auto& t : words) {
    for (const auto& p : punct_affixes()) {
      if (t.size() <= p.size()) continue;
      if (t.compare(0, p.size(), p) == 0 && bare.count(t.substr(p.size()))) {
        t = t.substr(p.size());
        break;
      }
      if (t.compare(t.size() - p.size(), p.size(), p) == 0 && bare.count(t.substr(0, t.size() - p.size()))) {
        t = t.substr(0, t.size() - p.size());
        break;
      }
    }
  }
  return words;
}

// Case-sensitive word at a position counted back from `index` (callers guarantee it exists).
const std::string& at(const std::vector<std::string>& w, size_t index, size_t back) { return w[index - back]; }

// Negation and "never so/this" handling for the modifier `start` + 1 tokens before `index`.
// Follows the JS reference, which at distance 3 also boosts when the directly preceding token is
// "so"/"this" (the Python original checks only "never so/this").
double never_check(double valence, const std::vector<std::string>& w, size_t start, size_t index) {
  if (start == 0) {
    if (negates(at(w, index, 1))) valence *= kNegScalar;
  } else if (start == 1) {
    if (at(w, index, 2) == "never" && (at(w, index, 1) == "so" || at(w, index, 1) == "this")) {
      valence *= 1.5;
    } else if (negates(at(w, index, 2))) {
      valence *= kNegScalar;
    }
  } else {
    bool never_so = at(w, index, 3) == "never" && (at(w, index, 2) == "so" || at(w, index, 2) == "this");
    if (never_so || at(w, index, 1) == "so" || at(w, index, 1) == "this") {
      valence *= 1.25;
    } else if (negates(at(w, index, 3))) {
      valence *= kNegScalar;
    }
  }
  return valence;
}

// Idioms around `index` (needs index >= 3) and two-word dampeners ("kind of") before it.
double idioms_check(double valence, const std::vector<std::string>& w, size_t index) {
  auto join = [&](std::initializer_list<size_t> idx) {
    std::string s;
    for (size_t i : idx) {
      if (!s.empty()) s += ' ';
      s += w[i];
    }
    return s;
  };
  const std::string one_zero = join({index - 1, index});
  const std::string two_one_zero = join({index - 2, index - 1, index});
  const std::string two_one = join({index - 2, index - 1});
  const std::string three_two_one = join({index - 3, index - 2, index - 1});
  const std::string three_two = join({index - 3, index - 2});
  for (const auto* seq : {&one_zero, &two_one_zero, &two_one, &three_two_one, &three_two}) {
    auto it = idioms().find(*seq);
    if (it != idioms().end()) {
      valence = it->second;
      break;
    }
  }
  if (w.size() - 1 > index) {
    auto it = idioms().find(join({index, index + 1}));
    if (it != idioms().end()) valence = it->second;
  }
  if (w.size() - 1 > index + 1) {
    auto it = idioms().find(join({index, index + 1, index + 2}));
    if (it != idioms().end()) valence = it->second;
  }
  if (is_booster(three_two) || is_booster(two_one)) valence += kBoostDecr;
  return valence;
}

}  // namespace

std::vector<std::string> vader_split_js_whitespace(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    uint32_t cp = next_code_point(text, i);
    if (is_js_space(cp)) {
      out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur.append(text, start, i - start);
    }
  }
  out.push_back(std::move(cur));
  return out;
}

size_t utf16_length(const std::string& s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) n += next_code_point(s, i) >= 0x10000 ? 2 : 1;
  return n;
}

Vader Vader::from_file(const std::string& path) { return from_string(read_file(path), path); }

Vader Vader::from_string(const std::string& content, const std::string& origin) {
  Vader v;
  for_each_line(content, [&](int64_t lineno, const std::string& line) {
    size_t tab1 = line.find('\t');
    if (tab1 == std::string::npos || tab1 == 0)
      throw IoError(origin + ":" + std::to_string(lineno) +
                    ": expected 'token<TAB>mean<TAB>...'; is this a VADER vader_lexicon.txt?");
    size_t tab2 = line.find('\t', tab1 + 1);
    std::string mean = line.substr(tab1 + 1, tab2 == std::string::npos ? std::string::npos : tab2 - tab1 - 1);
    char* end = nullptr;
    double val = std::strtod(mean.c_str(), &end);
    if (mean.empty() || end != mean.c_str() + mean.size() || !std::isfinite(val))
      throw IoError(origin + ":" + std::to_string(lineno) + ": mean valence '" + mean +
                    "' is not a number; is this a VADER vader_lexicon.txt?");
    v.lexicon_[line.substr(0, tab1)] = val;
  });
  if (v.lexicon_.empty())
    throw IoError(origin + ": no lexicon entries; expected VADER's vader_lexicon.txt");
  return v;
}

double Vader::valence(const std::string& token) const {
  auto it = lexicon_.find(token);
  return it == lexicon_.end() ? 0.0 : it->second;
}

const double* Vader::lookup(const std::string& lowered) const {
  auto it = lexicon_.find(lowered);
  return it == lexicon_.end() ? nullptr : &it->second;
}

VaderScores Vader::polarity_scores(const std::string& text) const {
  const std::vector<std::string> words = words_and_emoticons(text);
  VaderScores out;
  if (words.empty()) return out;
  std::vector<std::string> lowered;
  lowered.reserve(words.size());
  for (const auto& w : words) lowered.push_back(lower(w));

  // ALL-CAPS emphasis counts only when some, not all, tokens are capitalized.
  size_t caps = 0;
  for (const auto& w : words) caps += is_all_caps(w);
  const bool mixed_caps = caps > 0 && caps < words.size();

  std::vector<double> sentiments(words.size(), 0.0);
  for (size_t i = 0; i < words.size(); ++i) {
    // Modifiers carry no valence of their own.
    if ((i + 1 < words.size() && lowered[i] == "kind" && lowered[i + 1] == "of") || is_booster(lowered[i]))
      continue;
    const double* lex = lookup(lowered[i]);
    if (!lex) continue;
    double valence = *lex;
    if (mixed_caps && is_all_caps(words[i])) valence += valence > 0 ? kCapsIncr : -kCapsIncr;

    // Up to three preceding non-lexicon tokens may boost, dampen or negate (paper §3.2).
    for (size_t start = 0; start < 3; ++start) {
      if (i <= start || lookup(lowered[i - start - 1])) continue;
      const std::string& mod = words[i - start - 1];
      double scalar = 0.0;
      const std::string mod_lower = lowered[i - start - 1];
      if (is_booster(mod_lower)) {
        scalar = booster_value(mod_lower);
        if (valence < 0) scalar = -scalar;
        if (mixed_caps && is_all_caps(mod)) scalar += valence > 0 ? kCapsIncr : -kCapsIncr;
      }
      if (start == 1) scalar *= 0.95;  // farther modifiers count less
      if (start == 2) scalar *= 0.9;
      valence += scalar;
      valence = never_check(valence, words, start, i);
      if (start == 2) valence = idioms_check(valence, words, i);
    }

    // "least" negates unless in "at least" / "very least".
    if (i > 0 && lowered[i - 1] == "least" && !lookup(lowered[i - 1])) {
      if (i == 1 || (lowered[i - 2] != "at" && lowered[i - 2] != "very")) valence *= kNegScalar;
    }
    sentiments[i] = valence;
  }

  // "but": sentiment before it is halved, after it is raised by half. The reference looks for
  // the exact token "but", else "BUT".
  size_t but = words.size();
  for (size_t i = 0; i < words.size() && but == words.size(); ++i)
    if (words[i] == "but") but = i;
  for (size_t i = 0; i < words.size() && but == words.size(); ++i)
    if (words[i] == "BUT") but = i;
  if (but < words.size()) {
    for (size_t i = 0; i < sentiments.size(); ++i) {
      if (i < but) sentiments[i] *= 0.5;
      if (i > but) sentiments[i] *= 1.5;
    }
  }

  double sum = 0.0;
  for (double s : sentiments) sum += s;
  // Punctuation emphasis from the whole text: "!" up to 4, "?" when 2 or more.
  size_t exclaim = 0, question = 0;
  for (char c : text) {
    exclaim += c == '!';
    question += c == '?';
  }
  double emphasis = std::min<size_t>(exclaim, 4) * kExclaimIncr;
  if (question > 1) emphasis += question <= 3 ? question * kQuestionIncr : 0.96;
  if (sum > 0) sum += emphasis;
  if (sum < 0) sum -= emphasis;
  double compound = sum / std::sqrt(sum * sum + kNormAlpha);
  out.compound = std::max(-1.0, std::min(1.0, compound));

  // Proportions: each sentiment-laden token counts its magnitude + 1, each neutral token 1.
  double pos = 0, neg = 0, neu = 0;
  for (double s : sentiments) {
    if (s > 0) pos += s + 1;
    else if (s < 0) neg += s - 1;
    else neu += 1;
  }
  if (pos > std::fabs(neg)) pos += emphasis;
  else if (pos < std::fabs(neg)) neg -= emphasis;
  double total = pos + std::fabs(neg) + neu;
  out.pos = std::fabs(pos / total);
  out.neg = std::fabs(neg / total);
  out.neu = std::fabs(neu / total);
  return out;
}

}  // namespace rarlhf
