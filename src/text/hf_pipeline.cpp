// tokenizer.json components around the BPE model, with tokenizers' semantics (read from its docs and
// behaviour, checked id-exact by tests/fixtures/tokenizers): normalizers (NFC/NFKC/NFD/NFKD by ICU,
// Prepend, Replace, Lowercase, Strip), pre-tokenizers (Split, Digits, Metaspace, Whitespace,
// WhitespaceSplit, ByteLevel), decoders (ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip),
// post-processor templates and added-token splitting. Anything else is an IoError naming its JSON path.
#include "hf_pipeline.h"

#include <algorithm>

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/regex.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utext.h>

#include "rarlhf/common/error.h"
#include "rarlhf/common/strings.h"
#include "text_internal.h"

namespace rarlhf {
namespace text_detail {

namespace {

// Oniguruma (tokenizers) and ICU agree on the syntax tokenizer.json patterns use, except \s: ICU's
// is [\t\n\f\r\p{Z}], Oniguruma's is White_Space (adds \v and U+0085). Escapes elsewhere are kept.
std::string onig_to_icu(const std::string& p) {
  std::string out;
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\' && i + 1 < p.size()) {
      char c = p[i + 1];
      if (c == 's') {
        out += "\\p{White_Space}";
      } else if (c == 'S') {
        out += "\\P{White_Space}";
      } else {
        out += p[i];
        out += c;
      }
      ++i;
    } else {
      out += p[i];
    }
  }
  return out;
}

}  // namespace

std::string jdump(const nlohmann::json& v) {
  return excerpt(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), 80);
}

namespace {

// Decodes the UTF-8 character at s[i] (an invalid byte is one character, code point U+FFFD).
UChar32 next_cp(const std::string& s, size_t& i) {
  UChar32 c;
  int32_t at = static_cast<int32_t>(i);
  U8_NEXT(reinterpret_cast<const uint8_t*>(s.data()), at, static_cast<int32_t>(s.size()), c);
  i = static_cast<size_t>(at);
  return c < 0 ? 0xFFFD : c;
}

bool is_white_space(UChar32 c) { return u_hasBinaryProperty(c, UCHAR_WHITE_SPACE); }
bool is_numeric(UChar32 c) {  // Rust's char::is_numeric: Nd, Nl, No
  int t = u_charType(c);
  return t == U_DECIMAL_DIGIT_NUMBER || t == U_LETTER_NUMBER || t == U_OTHER_NUMBER;
}
bool is_word(UChar32 c) {  // Rust regex \w (Unicode)
  return u_hasBinaryProperty(c, UCHAR_ALPHABETIC) || (U_GET_GC_MASK(c) & U_GC_M_MASK) ||
         u_charType(c) == U_DECIMAL_DIGIT_NUMBER || u_charType(c) == U_CONNECTOR_PUNCTUATION ||
         u_hasBinaryProperty(c, UCHAR_JOIN_CONTROL);
}

struct Match {
  size_t begin, end;
  bool is_match;
};

// tokenizers' find_matches: matches and the gaps between them, tiling s.
std::vector<Match> tile(const std::string& s, const std::vector<std::pair<size_t, size_t>>& found, bool invert) {
  std::vector<Match> out;
  if (s.empty()) return {{0, 0, invert}};
  size_t prev = 0;
  for (auto [b, e] : found) {
    if (prev != b) out.push_back({prev, b, invert});
    out.push_back({b, e, !invert});
    prev = e;
  }
  if (prev != s.size()) out.push_back({prev, s.size(), invert});
  return out;
}

// Each character for which pred holds is a match of its own.
std::vector<std::pair<size_t, size_t>> char_matches(const std::string& s, bool (*pred)(UChar32)) {
  std::vector<std::pair<size_t, size_t>> out;
  for (size_t i = 0; i < s.size();) {
    size_t b = i;
    if (pred(next_cp(s, i))) out.emplace_back(b, i);
  }
  return out;
}

// tokenizers' NormalizedString::split: pieces by behavior (empty ones dropped by the caller).
std::vector<std::pair<size_t, size_t>> apply_behavior(const std::vector<Match>& m, SplitBehavior behavior) {
  std::vector<std::pair<size_t, size_t>> out;
  bool prev_match = false;
  switch (behavior) {
    case SplitBehavior::kRemoved:
      for (const auto& x : m) {
        if (!x.is_match) out.emplace_back(x.begin, x.end);
      }
      break;
    case SplitBehavior::kIsolated:
      for (const auto& x : m) out.emplace_back(x.begin, x.end);
      break;
    case SplitBehavior::kContiguous:
      for (const auto& x : m) {
        if (x.is_match == prev_match && !out.empty()) {
          out.back().second = x.end;
        } else {
          out.emplace_back(x.begin, x.end);
        }
        prev_match = x.is_match;
      }
      break;
    case SplitBehavior::kMergedWithPrevious:
      for (const auto& x : m) {
        if (x.is_match && !prev_match && !out.empty()) {
          out.back().second = x.end;
        } else {
          out.emplace_back(x.begin, x.end);
        }
        prev_match = x.is_match;
      }
      break;
    case SplitBehavior::kMergedWithNext:
      for (size_t k = m.size(); k-- > 0;) {
        const auto& x = m[k];
        if (x.is_match && !prev_match && !out.empty()) {
          out.back().first = x.begin;
        } else {
          out.emplace_back(x.begin, x.end);
        }
        prev_match = x.is_match;
      }
      std::reverse(out.begin(), out.end());
      break;
  }
  return out;
}

struct Piece {
  std::string text;
  bool at_start;
};

void split_pieces(std::vector<Piece>& pieces, const std::function<std::vector<Match>(const std::string&)>& find,
                  SplitBehavior behavior) {
  std::vector<Piece> out;
  for (auto& p : pieces) {
    for (auto [b, e] : apply_behavior(find(p.text), behavior)) {
      if (e > b) out.push_back({p.text.substr(b, e - b), p.at_start && b == 0});
    }
  }
  pieces.swap(out);
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  std::string out;
  size_t pos = 0;
  while (true) {
    size_t f = s.find(from, pos);
    if (f == std::string::npos) break;
    out.append(s, pos, f - pos);
    out += to;
    pos = f + from.size();
  }
  out.append(s, pos, std::string::npos);
  s.swap(out);
}

std::string replace_regex(const std::string& s, const Regex& re, const std::string& content) {
  std::string out;
  size_t prev = 0;
  for (auto [b, e] : re.find_all(s)) {
    out.append(s, prev, b - prev);
    out += content;
    prev = e;
  }
  out.append(s, prev, std::string::npos);
  return out;
}

// ---- parsing ----

struct Parser {
  const std::string& path;
  const std::function<int32_t(const std::string&)>& id_of;

  [[noreturn]] void fail(const std::string& where, const std::string& what) const {
    throw IoError(path + ": " + where + ": " + what);
  }
  [[noreturn]] void unsupported(const std::string& where, const std::string& type, const char* kind) const {
    fail(where + ".type", "\"" + type + "\" is not supported; rarlhf reads " + kind +
                              " (file an issue with the model's name to add it)");
  }
  std::string type_of(const nlohmann::json& v, const std::string& where) const {
    if (!v.is_object() || !v.contains("type") || !v["type"].is_string()) fail(where, "expected an object with a \"type\"");
    return v["type"].get<std::string>();
  }
  std::string str(const nlohmann::json& v, const char* key, const std::string& where, const std::string& dflt = "") const {
    if (!v.contains(key) || v[key].is_null()) return dflt;
    if (!v[key].is_string()) fail(where + "." + key, "expected a string, got " + jdump(v[key]));
    return v[key].get<std::string>();
  }
  bool flag(const nlohmann::json& v, const char* key, const std::string& where, bool dflt) const {
    if (!v.contains(key) || v[key].is_null()) return dflt;
    if (!v[key].is_boolean()) fail(where + "." + key, "expected true or false, got " + jdump(v[key]));
    return v[key].get<bool>();
  }
  // {"Regex": "..."} or {"String": "..."}
  std::shared_ptr<const Regex> pattern(const nlohmann::json& v, const std::string& where) const {
    const std::string w = where + ".pattern";
    if (!v.contains("pattern") || !v["pattern"].is_object() || v["pattern"].size() != 1) {
      fail(w, "expected {\"Regex\": ...} or {\"String\": ...}, got " + (v.contains("pattern") ? jdump(v["pattern"]) : "nothing"));
    }
    const auto& p = v["pattern"];
    if (p.contains("Regex") && p["Regex"].is_string()) {
      return std::make_shared<Regex>(p["Regex"].get<std::string>(), false, path + ": " + w + ".Regex");
    }
    if (p.contains("String") && p["String"].is_string()) {
      return std::make_shared<Regex>(p["String"].get<std::string>(), true, path + ": " + w + ".String");
    }
    fail(w, "expected {\"Regex\": ...} or {\"String\": ...}, got " + jdump(p));
  }
  std::string one_char(const nlohmann::json& v, const char* key, const std::string& where, const std::string& dflt) const {
    std::string s = str(v, key, where, dflt);
    size_t i = 0;
    if (s.empty() || (next_cp(s, i), i != s.size())) fail(where + "." + key, "expected one character, got " + jdump(s));
    return s;
  }

  void normalizer(const nlohmann::json& v, const std::string& where, std::vector<NormalizerStep>& out) const {
    if (v.is_null()) return;
    std::string t = type_of(v, where);
    NormalizerStep s{};
    if (t == "Sequence") {
      if (!v.contains("normalizers") || !v["normalizers"].is_array()) fail(where + ".normalizers", "expected an array");
      for (size_t i = 0; i < v["normalizers"].size(); ++i) {
        normalizer(v["normalizers"][i], where + ".normalizers[" + std::to_string(i) + "]", out);
      }
      return;
    } else if (t == "NFC") {
      s.kind = NormalizerStep::kNfc;
    } else if (t == "NFKC") {
      s.kind = NormalizerStep::kNfkc;
    } else if (t == "NFD") {
      s.kind = NormalizerStep::kNfd;
    } else if (t == "NFKD") {
      s.kind = NormalizerStep::kNfkd;
    } else if (t == "Lowercase") {
      s.kind = NormalizerStep::kLowercase;
    } else if (t == "Prepend") {
      s.kind = NormalizerStep::kPrepend;
      s.text = str(v, "prepend", where);
    } else if (t == "Replace") {
      s.kind = NormalizerStep::kReplace;
      s.pattern = pattern(v, where);
      s.text = str(v, "content", where);
    } else if (t == "Strip") {
      s.kind = NormalizerStep::kStrip;
      s.left = flag(v, "strip_left", where, true);
      s.right = flag(v, "strip_right", where, true);
    } else {
      unsupported(where, t, "normalizers NFC, NFKC, NFD, NFKD, Lowercase, Prepend, Replace, Strip and Sequence");
    }
    out.push_back(std::move(s));
  }

  void pre_tokenizer(const nlohmann::json& v, const std::string& where, std::vector<PreTokenizerStep>& out) const {
    if (v.is_null()) return;
    std::string t = type_of(v, where);
    if (!out.empty() && out.back().kind == PreTokenizerStep::kByteLevel) {
      fail(where, "a pre-tokenizer after ByteLevel is not supported (it would see the byte alphabet); "
                  "ByteLevel must come last");
    }
    PreTokenizerStep s{};
    if (t == "Sequence") {
      if (!v.contains("pretokenizers") || !v["pretokenizers"].is_array()) fail(where + ".pretokenizers", "expected an array");
      for (size_t i = 0; i < v["pretokenizers"].size(); ++i) {
        pre_tokenizer(v["pretokenizers"][i], where + ".pretokenizers[" + std::to_string(i) + "]", out);
      }
      return;
    } else if (t == "Split") {
      s.kind = PreTokenizerStep::kSplit;
      s.pattern = pattern(v, where);
      s.invert = flag(v, "invert", where, false);
      std::string b = str(v, "behavior", where, "Isolated");
      if (b == "Removed") {
        s.behavior = SplitBehavior::kRemoved;
      } else if (b == "Isolated") {
        s.behavior = SplitBehavior::kIsolated;
      } else if (b == "MergedWithPrevious") {
        s.behavior = SplitBehavior::kMergedWithPrevious;
      } else if (b == "MergedWithNext") {
        s.behavior = SplitBehavior::kMergedWithNext;
      } else if (b == "Contiguous") {
        s.behavior = SplitBehavior::kContiguous;
      } else {
        fail(where + ".behavior", jdump(b) + " is not one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
      }
    } else if (t == "Digits") {
      s.kind = PreTokenizerStep::kDigits;
      s.individual_digits = flag(v, "individual_digits", where, false);
    } else if (t == "Metaspace") {
      s.kind = PreTokenizerStep::kMetaspace;
      s.replacement = one_char(v, "replacement", where, "\xE2\x96\x81");
      s.split = flag(v, "split", where, true);
      if (v.contains("prepend_scheme") && !v["prepend_scheme"].is_null()) {
        std::string p = str(v, "prepend_scheme", where);
        if (p == "always") {
          s.prepend = PreTokenizerStep::kAlways;
        } else if (p == "first") {
          s.prepend = PreTokenizerStep::kFirst;
        } else if (p == "never") {
          s.prepend = PreTokenizerStep::kNever;
        } else {
          fail(where + ".prepend_scheme", jdump(p) + " is not one of always, first, never");
        }
      } else {  // tokenizers < 0.19
        s.prepend = flag(v, "add_prefix_space", where, true) ? PreTokenizerStep::kAlways : PreTokenizerStep::kNever;
      }
    } else if (t == "Whitespace") {
      s.kind = PreTokenizerStep::kWhitespace;
      s.pattern = std::make_shared<Regex>("\\w+|[^\\w\\s]+", false, path + ": " + where);
    } else if (t == "WhitespaceSplit") {
      s.kind = PreTokenizerStep::kWhitespaceSplit;
    } else if (t == "ByteLevel") {
      s.kind = PreTokenizerStep::kByteLevel;
      s.add_prefix_space = flag(v, "add_prefix_space", where, true);
      s.use_regex = flag(v, "use_regex", where, true);
    } else {
      unsupported(where, t, "pre-tokenizers ByteLevel, Split, Digits, Metaspace, Whitespace, WhitespaceSplit and Sequence");
    }
    out.push_back(std::move(s));
  }

  void decoder(const nlohmann::json& v, const std::string& where, std::vector<DecoderStep>& out) const {
    std::string t = type_of(v, where);
    DecoderStep s{};
    if (t == "Sequence") {
      if (!v.contains("decoders") || !v["decoders"].is_array()) fail(where + ".decoders", "expected an array");
      for (size_t i = 0; i < v["decoders"].size(); ++i) {
        decoder(v["decoders"][i], where + ".decoders[" + std::to_string(i) + "]", out);
      }
      return;
    } else if (t == "ByteLevel") {
      s.kind = DecoderStep::kByteLevel;
    } else if (t == "Metaspace") {
      s.kind = DecoderStep::kMetaspace;
      s.text = one_char(v, "replacement", where, "\xE2\x96\x81");
      if (v.contains("prepend_scheme") && !v["prepend_scheme"].is_null()) {
        s.prepend = str(v, "prepend_scheme", where) != "never";
      } else {
        s.prepend = flag(v, "add_prefix_space", where, true);
      }
    } else if (t == "Replace") {
      s.kind = DecoderStep::kReplace;
      s.pattern = pattern(v, where);
      s.text = str(v, "content", where);
    } else if (t == "ByteFallback") {
      s.kind = DecoderStep::kByteFallback;
    } else if (t == "Fuse") {
      s.kind = DecoderStep::kFuse;
    } else if (t == "Strip") {
      s.kind = DecoderStep::kStrip;
      s.text = one_char(v, "content", where, " ");
      for (const char* k : {"start", "stop"}) {
        if (!v.contains(k) || !v[k].is_number_integer() || v[k].get<int64_t>() < 0) {
          fail(where + "." + k, "expected a count >= 0");
        }
      }
      s.start = v["start"].get<int64_t>();
      s.stop = v["stop"].get<int64_t>();
    } else {
      unsupported(where, t, "decoders ByteLevel, Metaspace, Replace, ByteFallback, Fuse, Strip and Sequence");
    }
    out.push_back(std::move(s));
  }

  int32_t token_id(const std::string& tok, const std::string& where) const {
    int32_t id = id_of(tok);
    if (id < 0) fail(where, "token " + jdump(tok) + " is not in the vocab or added_tokens");
    return id;
  }

  // ["</s>", 2] of RobertaProcessing / BertProcessing.
  int32_t pair_id(const nlohmann::json& v, const char* key, const std::string& where) const {
    if (!v.contains(key) || !v[key].is_array() || v[key].size() != 2 || !v[key][1].is_number_integer()) {
      fail(where + "." + key, "expected [\"token\", id]");
    }
    return static_cast<int32_t>(v[key][1].get<int64_t>());
  }

  void post_processor(const nlohmann::json& v, const std::string& where, Pipeline& p) const {
    if (v.is_null()) return;
    std::string t = type_of(v, where);
    if (t == "Sequence") {
      if (!v.contains("processors") || !v["processors"].is_array()) fail(where + ".processors", "expected an array");
      for (size_t i = 0; i < v["processors"].size(); ++i) {
        post_processor(v["processors"][i], where + ".processors[" + std::to_string(i) + "]", p);
      }
    } else if (t == "ByteLevel") {
      // offsets only
    } else if (t == "RobertaProcessing" || t == "BertProcessing") {
      p.prefix_ids.insert(p.prefix_ids.begin(), pair_id(v, "cls", where));
      p.suffix_ids.push_back(pair_id(v, "sep", where));
    } else if (t == "TemplateProcessing") {
      const std::string w = where + ".single";
      if (!v.contains("single") || !v["single"].is_array()) fail(w, "expected an array of pieces");
      const auto& specials = v.contains("special_tokens") ? v["special_tokens"] : nlohmann::json::object();
      std::vector<int32_t> before, after;
      bool seen_a = false;
      for (size_t i = 0; i < v["single"].size(); ++i) {
        const auto& piece = v["single"][i];
        const std::string wi = w + "[" + std::to_string(i) + "]";
        if (piece.contains("Sequence")) {
          if (seen_a || piece["Sequence"].value("id", std::string()) != "A") fail(wi, "the single template must use $A once");
          seen_a = true;
        } else if (piece.contains("SpecialToken") && piece["SpecialToken"].contains("id")) {
          std::string name = piece["SpecialToken"]["id"].get<std::string>();
          if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array()) {
            fail(wi, "special token " + jdump(name) + " is not in special_tokens");
          }
          for (const auto& id : specials[name]["ids"]) (seen_a ? after : before).push_back(id.get<int32_t>());
        } else {
          fail(wi, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}, got " + jdump(piece));
        }
      }
      if (!seen_a) fail(w, "the single template has no $A");
      p.prefix_ids.insert(p.prefix_ids.end(), before.begin(), before.end());
      p.suffix_ids.insert(p.suffix_ids.begin(), after.begin(), after.end());
    } else {
      unsupported(where, t, "post-processors TemplateProcessing, ByteLevel, RobertaProcessing, BertProcessing and Sequence");
    }
  }
};

}  // namespace

// ---- Regex ----

struct Regex::Impl {
  std::unique_ptr<icu::RegexPattern> pattern;
};

Regex::Regex(const std::string& pattern, bool literal, const std::string& where) : impl_(std::make_unique<Impl>()) {
  UErrorCode st = U_ZERO_ERROR;
  UParseError pe{};
  icu::UnicodeString p = icu::UnicodeString::fromUTF8(literal ? pattern : onig_to_icu(pattern));
  impl_->pattern.reset(icu::RegexPattern::compile(p, literal ? UREGEX_LITERAL : 0, pe, st));
  if (U_FAILURE(st)) {
    throw IoError(where + ": the regex " + jdump(pattern) + " does not compile (" + u_errorName(st) + " at offset " +
                  std::to_string(pe.offset) + "); fix the pattern");
  }
}

Regex::~Regex() = default;

std::vector<std::pair<size_t, size_t>> Regex::find_all(const std::string& s) const {
  std::vector<std::pair<size_t, size_t>> out;
  UErrorCode st = U_ZERO_ERROR;
  UText* ut = utext_openUTF8(nullptr, s.data(), static_cast<int64_t>(s.size()), &st);
  std::unique_ptr<icu::RegexMatcher> m(impl_->pattern->matcher(st));
  if (U_FAILURE(st)) {
    utext_close(ut);
    throw IoError(std::string("tokenizer regex: ICU matcher failed (") + u_errorName(st) + ")");
  }
  m->reset(ut);
  while (m->find(st) && U_SUCCESS(st)) {
    out.emplace_back(static_cast<size_t>(m->start64(st)), static_cast<size_t>(m->end64(st)));
  }
  m.reset();
  utext_close(ut);
  return out;
}

// ---- running ----

std::string normalize(const std::vector<NormalizerStep>& steps, std::string s) {
  for (const auto& n : steps) {
    switch (n.kind) {
      case NormalizerStep::kNfc:
      case NormalizerStep::kNfkc:
      case NormalizerStep::kNfd:
      case NormalizerStep::kNfkd: {
        UErrorCode st = U_ZERO_ERROR;
        const icu::Normalizer2* norm = n.kind == NormalizerStep::kNfc    ? icu::Normalizer2::getNFCInstance(st)
                                       : n.kind == NormalizerStep::kNfkc ? icu::Normalizer2::getNFKCInstance(st)
                                       : n.kind == NormalizerStep::kNfd  ? icu::Normalizer2::getNFDInstance(st)
                                                                         : icu::Normalizer2::getNFKDInstance(st);
        icu::UnicodeString u = icu::UnicodeString::fromUTF8(s);
        if (U_SUCCESS(st) && !norm->isNormalized(u, st)) {
          icu::UnicodeString r = norm->normalize(u, st);
          if (U_SUCCESS(st)) {
            s.clear();
            r.toUTF8String(s);
          }
        }
        break;
      }
      case NormalizerStep::kPrepend:
        if (!s.empty()) s = n.text + s;
        break;
      case NormalizerStep::kReplace:
        s = replace_regex(s, *n.pattern, n.text);
        break;
      case NormalizerStep::kLowercase: {  // per character, without context (Rust's char::to_lowercase)
        std::string out;
        for (size_t i = 0; i < s.size();) {
          UChar32 c = next_cp(s, i);
          icu::UnicodeString u(c);
          u.toLower(icu::Locale::getRoot());
          u.toUTF8String(out);
        }
        s.swap(out);
        break;
      }
      case NormalizerStep::kStrip: {
        size_t b = 0, e = s.size();
        if (n.left) {
          while (b < e) {
            size_t i = b;
            if (!is_white_space(next_cp(s, i))) break;
            b = i;
          }
        }
        if (n.right) {
          while (e > b) {
            size_t k = e - 1;
            while (k > b && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
            size_t i = k;
            if (!is_white_space(next_cp(s, i))) break;
            e = k;
          }
        }
        s = s.substr(b, e - b);
        break;
      }
    }
  }
  return s;
}

void pre_tokenize(const std::vector<PreTokenizerStep>& steps, std::string segment, bool at_start,
                  std::vector<std::string>& out) {
  std::vector<Piece> pieces{{std::move(segment), at_start}};
  for (const auto& st : steps) {
    switch (st.kind) {
      case PreTokenizerStep::kSplit:
        split_pieces(pieces, [&](const std::string& s) { return tile(s, st.pattern->find_all(s), st.invert); },
                     st.behavior);
        break;
      case PreTokenizerStep::kDigits:
        split_pieces(pieces, [&](const std::string& s) { return tile(s, char_matches(s, is_numeric), false); },
                     st.individual_digits ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
        break;
      case PreTokenizerStep::kWhitespace:  // keep \w+|[^\w\s]+, drop the rest
        split_pieces(pieces, [&](const std::string& s) { return tile(s, st.pattern->find_all(s), true); },
                     SplitBehavior::kRemoved);
        break;
      case PreTokenizerStep::kWhitespaceSplit:
        split_pieces(pieces, [&](const std::string& s) { return tile(s, char_matches(s, is_white_space), false); },
                     SplitBehavior::kRemoved);
        break;
      case PreTokenizerStep::kMetaspace: {
        for (auto& p : pieces) {
          replace_all(p.text, " ", st.replacement);
          bool starts = p.text.compare(0, st.replacement.size(), st.replacement) == 0;
          if (!starts && (st.prepend == PreTokenizerStep::kAlways || (st.prepend == PreTokenizerStep::kFirst && p.at_start))) {
            p.text = st.replacement + p.text;
          }
        }
        if (st.split) {
          const std::string& r = st.replacement;
          split_pieces(pieces,
                       [&](const std::string& s) {
                         std::vector<std::pair<size_t, size_t>> found;
                         for (size_t f = s.find(r); f != std::string::npos; f = s.find(r, f + r.size())) {
                           found.emplace_back(f, f + r.size());
                         }
                         return tile(s, found, false);
                       },
                       SplitBehavior::kMergedWithNext);
        }
        break;
      }
      case PreTokenizerStep::kByteLevel: {
        if (st.add_prefix_space) {
          for (auto& p : pieces) {
            if (p.text.empty() || p.text[0] != ' ') p.text = " " + p.text;
          }
        }
        if (st.use_regex) {
          std::vector<Char> chars;
          split_pieces(pieces,
                       [&](const std::string& s) {
                         std::vector<Match> m;
                         pretokenize(s.data(), s.size(), chars, [&](size_t b, size_t e) { m.push_back({b, e, true}); },
                                     /*onig_space=*/true);
                         return m;
                       },
                       SplitBehavior::kIsolated);
        }
        break;
      }
    }
  }
  for (auto& p : pieces) {
    if (!p.text.empty()) out.push_back(std::move(p.text));
  }
}

std::string run_decoder(const std::vector<DecoderStep>& steps, std::vector<std::string> tokens,
                        const std::function<bool(const std::string&, std::string&)>& gpt2_bytes) {
  for (const auto& d : steps) {
    switch (d.kind) {
      case DecoderStep::kByteLevel: {
        std::string all;
        std::string b;
        for (const auto& t : tokens) {
          if (gpt2_bytes(t, b)) {
            all += b;
          } else {
            all += t;  // a character outside the byte alphabet: the token as it is (tokenizers does so)
          }
        }
        tokens = {all};
        break;
      }
      case DecoderStep::kMetaspace:
        for (size_t i = 0; i < tokens.size(); ++i) {
          replace_all(tokens[i], d.text, i == 0 && d.prepend ? "" : " ");
        }
        break;
      case DecoderStep::kReplace:
        for (auto& t : tokens) t = replace_regex(t, *d.pattern, d.text);
        break;
      case DecoderStep::kByteFallback: {
        std::vector<std::string> out;
        std::string bytes;
        size_t n_bytes = 0;
        auto flush = [&] {
          if (n_bytes == 0) return;
          bool valid = true;
          for (size_t i = 0; i < bytes.size() && valid;) {
            UChar32 c;
            int32_t at = static_cast<int32_t>(i);
            U8_NEXT(reinterpret_cast<const uint8_t*>(bytes.data()), at, static_cast<int32_t>(bytes.size()), c);
            valid = c >= 0;
            i = static_cast<size_t>(at);
          }
          if (valid) {
            out.push_back(bytes);
          } else {
            for (size_t k = 0; k < n_bytes; ++k) out.push_back("\xEF\xBF\xBD");  // U+FFFD per byte token
          }
          bytes.clear();
          n_bytes = 0;
        };
        for (auto& t : tokens) {
          auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f'); };
          if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' && hex(t[3]) && hex(t[4])) {
            bytes += static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16));
            ++n_bytes;
          } else {
            flush();
            out.push_back(std::move(t));
          }
        }
        flush();
        tokens.swap(out);
        break;
      }
      case DecoderStep::kFuse: {
        std::string all;
        for (const auto& t : tokens) all += t;
        tokens = {all};
        break;
      }
      case DecoderStep::kStrip:
        for (auto& t : tokens) {
          const std::string& c = d.text;
          size_t b = 0, e = t.size();
          for (int64_t k = 0; k < d.start && t.compare(b, c.size(), c) == 0 && b < e; ++k) b += c.size();
          for (int64_t k = 0; k < d.stop && e >= b + c.size() && t.compare(e - c.size(), c.size(), c) == 0; ++k) {
            e -= c.size();
          }
          t = t.substr(b, e - b);
        }
        break;
    }
  }
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

void split_added(const std::string& s, const std::vector<const AddedToken*>& tokens,
                 const std::function<void(size_t, size_t, const AddedToken*)>& emit) {
  if (tokens.empty() || s.empty()) {
    emit(0, s.size(), nullptr);
    return;
  }
  // Next occurrence of each token at or after `from` (npos: none left); refreshed lazily.
  std::vector<size_t> next(tokens.size(), 0);
  std::vector<uint8_t> known(tokens.size(), 0);
  size_t search = 0;  // where the next match may start
  size_t done = 0;    // text before this is emitted
  auto ends_with_word = [&](size_t end) {
    if (end == 0) return false;
    size_t k = end - 1;
    while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
    size_t i = k;
    return is_word(next_cp(s, i));
  };
  auto starts_with_word = [&](size_t b) {
    if (b >= s.size()) return false;
    return is_word(next_cp(s, b));
  };
  while (search < s.size()) {
    size_t best = std::string::npos;
    const AddedToken* tok = nullptr;
    for (size_t k = 0; k < tokens.size(); ++k) {  // longest first: at a tie the longer one wins
      if (!known[k] || (next[k] != std::string::npos && next[k] < search)) {
        next[k] = tokens[k]->match.empty() ? std::string::npos : s.find(tokens[k]->match, search);
        known[k] = 1;
      }
      if (next[k] < best) {
        best = next[k];
        tok = tokens[k];
      }
    }
    if (!tok) break;
    size_t start = best, stop = best + tok->match.size();
    search = stop;
    if (tok->single_word && ((start > 0 && ends_with_word(start)) || (stop < s.size() && starts_with_word(stop)))) {
      continue;  // inside a word: not this token (and the text it spans is not searched again)
    }
    if (tok->lstrip) {
      size_t b = start;
      while (b > done) {
        size_t k = b - 1;
        while (k > done && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
        size_t i = k;
        if (!is_white_space(next_cp(s, i))) break;
        b = k;
      }
      start = b;
    }
    if (tok->rstrip) {
      while (stop < s.size()) {
        size_t i = stop;
        if (!is_white_space(next_cp(s, i))) break;
        stop = i;
      }
      search = stop;
    }
    if (done < start) emit(done, start, nullptr);
    emit(start, stop, tok);
    done = stop;
  }
  if (done < s.size()) emit(done, s.size(), nullptr);
}

std::string config_token(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string()) return v["content"].get<std::string>();
  return "";
}

Pipeline parse_pipeline(const nlohmann::json& j, const std::string& path,
                        const std::function<int32_t(const std::string&)>& id_of) {
  Parser ps{path, id_of};
  Pipeline p;
  auto get = [&](const char* k) { return j.contains(k) ? j[k] : nlohmann::json(); };
  ps.normalizer(get("normalizer"), "normalizer", p.normalizer);
  ps.pre_tokenizer(get("pre_tokenizer"), "pre_tokenizer", p.pre_tokenizer);
  for (const auto& s : p.pre_tokenizer) p.byte_level |= s.kind == PreTokenizerStep::kByteLevel;
  if (!get("decoder").is_null()) {
    p.has_decoder = true;
    ps.decoder(get("decoder"), "decoder", p.decoder);
  }
  ps.post_processor(get("post_processor"), "post_processor", p);
  return p;
}

}  // namespace text_detail
}  // namespace rarlhf
