// WordPiece tokenization as BERT defines it (google-research/bert tokenization.py; the same rules
// as transformers' BertTokenizer, including its NFC step): text is handled as code points,
// Unicode categories / case mapping / normalization come from ICU.
// Not handled: added special tokens written inside the text ("[SEP]" in a review stays text).
#include "rarlhf/text/wordpiece.h"

#include <unicode/uchar.h>
#include <unicode/unorm2.h>
#include <unicode/ustring.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"

namespace rarlhf {
namespace {

// ---- UTF conversions (invalid UTF-8 bytes become U+FFFD, which cleaning then drops) ----

std::u32string utf8_to_u32(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    int extra = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
    if (extra < 0 || i + extra >= s.size()) {  // stray or truncated sequence
      out += U'\uFFFD';
      ++i;
      continue;
    }
    char32_t cp = extra == 0 ? c : extra == 1 ? (c & 0x1F) : extra == 2 ? (c & 0x0F) : (c & 0x07);
    bool ok = true;
    for (int k = 1; k <= extra; ++k) {
      unsigned char d = s[i + k];
      if ((d & 0xC0) != 0x80) {
        ok = false;
        break;
      }
      cp = (cp << 6) | (d & 0x3F);
    }
    if (!ok) {
      out += U'\uFFFD';
      ++i;
      continue;
    }
    out += cp;
    i += 1 + extra;
  }
  return out;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string u32_to_utf8(const std::u32string& s, size_t begin = 0, size_t end = std::u32string::npos) {
  std::string out;
  end = std::min(end, s.size());
  for (size_t i = begin; i < end; ++i) append_utf8(out, s[i]);
  return out;
}

std::u16string u32_to_u16(const std::u32string& s) {
  std::u16string out;
  out.reserve(s.size());
  for (char32_t cp : s) {
    if (cp >= 0x10000) {
      cp -= 0x10000;
      out += static_cast<char16_t>(0xD800 + (cp >> 10));
      out += static_cast<char16_t>(0xDC00 + (cp & 0x3FF));
    } else {
      out += static_cast<char16_t>(cp);
    }
  }
  return out;
}

std::u32string u16_to_u32(const std::u16string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char32_t c = s[i];
    if (c >= 0xD800 && c <= 0xDBFF && i + 1 < s.size() && s[i + 1] >= 0xDC00 && s[i + 1] <= 0xDFFF) {
      c = 0x10000 + ((c - 0xD800) << 10) + (s[i + 1] - 0xDC00);
      ++i;
    }
    out += c;
  }
  return out;
}

// ---- ICU-backed operations on UTF-16 ----

std::u16string icu_transform(const std::u16string& in, const std::function<int32_t(UChar*, int32_t, UErrorCode*)>& fn) {
  std::u16string out(in.size() * 2 + 8, u'\0');
  UErrorCode err = U_ZERO_ERROR;
  int32_t n = fn(reinterpret_cast<UChar*>(&out[0]), static_cast<int32_t>(out.size()), &err);
  if (err == U_BUFFER_OVERFLOW_ERROR) {
    out.assign(n, u'\0');
    err = U_ZERO_ERROR;
    n = fn(reinterpret_cast<UChar*>(&out[0]), static_cast<int32_t>(out.size()), &err);
  }
  if (U_FAILURE(err)) throw std::runtime_error(std::string("ICU: ") + u_errorName(err));
  out.resize(n);
  return out;
}

std::u32string normalize(const std::u32string& s, bool nfd) {
  UErrorCode err = U_ZERO_ERROR;
  const UNormalizer2* norm = nfd ? unorm2_getNFDInstance(&err) : unorm2_getNFCInstance(&err);
  if (U_FAILURE(err)) throw std::runtime_error(std::string("ICU normalizer: ") + u_errorName(err));
  std::u16string in = u32_to_u16(s);
  return u16_to_u32(icu_transform(in, [&](UChar* dst, int32_t cap, UErrorCode* e) {
    return unorm2_normalize(norm, reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()), dst,
                            cap, e);
  }));
}

// Full Unicode lower-casing (root locale), like Python's str.lower().
std::u32string to_lower(const std::u32string& s) {
  std::u16string in = u32_to_u16(s);
  return u16_to_u32(icu_transform(in, [&](UChar* dst, int32_t cap, UErrorCode* e) {
    return u_strToLower(dst, cap, reinterpret_cast<const UChar*>(in.data()), static_cast<int32_t>(in.size()), "", e);
  }));
}

// ---- BERT's character classes ----

// \t \n \r and space, or category Zs.
bool is_whitespace(char32_t c) {
  return c == U' ' || c == U'\t' || c == U'\n' || c == U'\r' || u_charType(c) == U_SPACE_SEPARATOR;
}
// Category C* except \t \n \r (those count as whitespace).
bool is_control(char32_t c) {
  if (c == U'\t' || c == U'\n' || c == U'\r') return false;
  switch (u_charType(c)) {
    case U_CONTROL_CHAR: case U_FORMAT_CHAR: case U_PRIVATE_USE_CHAR: case U_SURROGATE: case U_UNASSIGNED:
      return true;
    default:
      return false;
  }
}
// ASCII non-alphanumerics 33-47, 58-64, 91-96, 123-126 ("$", "^", "`" are symbols in Unicode but
// BERT splits them too), or category P*.
bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  switch (u_charType(c)) {
    case U_DASH_PUNCTUATION: case U_START_PUNCTUATION: case U_END_PUNCTUATION: case U_CONNECTOR_PUNCTUATION:
    case U_OTHER_PUNCTUATION: case U_INITIAL_PUNCTUATION: case U_FINAL_PUNCTUATION:
      return true;
    default:
      return false;
  }
}
// CJK Unified Ideographs blocks as in BERT (not Hangul, Hiragana, Katakana: those are
// space-separated languages or handled by WordPiece).
bool is_cjk(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}
// Python's str.split() also splits on LINE/PARAGRAPH SEPARATOR, which cleaning keeps.
bool is_split_space(char32_t c) { return is_whitespace(c) || c == 0x2028 || c == 0x2029 || c == 0x85; }

std::vector<std::u32string> split_whitespace(const std::u32string& s) {
  std::vector<std::u32string> out;
  std::u32string cur;
  for (char32_t c : s) {
    if (is_split_space(c)) {
      if (!cur.empty()) out.push_back(std::move(cur));
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::vector<std::u32string> basic_tokenize_u32(const std::string& text, const WordPieceOptions& opts) {
  // 1. Drop NUL, U+FFFD and control characters; every whitespace becomes a space. 2. Space out
  // CJK ideographs so each is its own word.
  std::u32string cleaned;
  for (char32_t c : utf8_to_u32(text)) {
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    if (is_whitespace(c)) {
      cleaned += U' ';
    } else if (opts.tokenize_chinese_chars && is_cjk(c)) {
      cleaned += U' ';
      cleaned += c;
      cleaned += U' ';
    } else {
      cleaned += c;
    }
  }
  // 3. NFC, so one character written two ways is one token.
  cleaned = normalize(cleaned, /*nfd=*/false);
  const bool strip = opts.strip_accents == 1 || (opts.strip_accents == -1 && opts.lower_case);
  std::vector<std::u32string> out;
  for (std::u32string word : split_whitespace(cleaned)) {
    // 4. Lower-case, strip accents (NFD, drop non-spacing marks).
    if (opts.lower_case) word = to_lower(word);
    if (strip) {
      std::u32string kept;
      for (char32_t c : normalize(word, /*nfd=*/true))
        if (u_charType(c) != U_NON_SPACING_MARK) kept += c;
      word = std::move(kept);
    }
    // 5. Each punctuation character is a word of its own.
    std::u32string cur;
    for (char32_t c : word) {
      if (is_punctuation(c)) {
        if (!cur.empty()) out.push_back(std::move(cur));
        cur.clear();
        out.push_back(std::u32string(1, c));
      } else if (is_split_space(c)) {  // lower-casing/NFD never makes spaces, but stay safe
        if (!cur.empty()) out.push_back(std::move(cur));
        cur.clear();
      } else {
        cur += c;
      }
    }
    if (!cur.empty()) out.push_back(std::move(cur));
  }
  return out;
}

bool json_bool_field(const nlohmann::json& j, const char* key, const std::string& file, bool& out) {
  if (!j.contains(key) || j[key].is_null()) return false;
  if (!j[key].is_boolean())
    throw IoError(file + ": " + key + ": expected true or false, got " + j[key].dump() + "; fix the tokenizer config");
  out = j[key].get<bool>();
  return true;
}

}  // namespace

std::vector<std::string> bert_basic_tokenize(const std::string& text, const WordPieceOptions& opts) {
  std::vector<std::string> out;
  for (const auto& w : basic_tokenize_u32(text, opts)) out.push_back(u32_to_utf8(w));
  return out;
}

WordPieceTokenizer WordPieceTokenizer::from_dir(const std::string& dir) {
  const std::string vocab = dir + "/vocab.txt";
  if (!file_exists(vocab))
    throw IoError(dir + ": no vocab.txt; a BERT/DistilBERT reward model directory needs its WordPiece vocab.txt");
  WordPieceOptions opts;
  const std::string cfg_path = dir + "/tokenizer_config.json";
  if (file_exists(cfg_path)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(cfg_path));
    } catch (const nlohmann::json::exception& e) {
      throw IoError(cfg_path + ": not valid JSON (" + std::string(e.what()) + ")");
    }
    if (!j.is_object()) throw IoError(cfg_path + ": expected a JSON object");
    json_bool_field(j, "do_lower_case", cfg_path, opts.lower_case);
    bool strip = false;
    if (json_bool_field(j, "strip_accents", cfg_path, strip)) opts.strip_accents = strip ? 1 : 0;
    json_bool_field(j, "tokenize_chinese_chars", cfg_path, opts.tokenize_chinese_chars);
  }
  return from_vocab_file(vocab, opts);
}

WordPieceTokenizer WordPieceTokenizer::from_vocab_file(const std::string& vocab_txt, const WordPieceOptions& opts) {
  WordPieceTokenizer t;
  t.opts_ = opts;
  std::string content = read_file(vocab_txt);
  size_t pos = 0;
  while (pos < content.size()) {
    size_t nl = content.find('\n', pos);
    if (nl == std::string::npos) nl = content.size();
    std::string tok = content.substr(pos, nl - pos);
    if (!tok.empty() && tok.back() == '\r') tok.pop_back();
    // A later duplicate takes the id (as a Python dict built line by line would).
    t.vocab_[tok] = static_cast<int64_t>(t.id_to_token_.size());
    t.id_to_token_.push_back(std::move(tok));
    pos = nl + 1;
  }
  auto need = [&](const char* tok) {
    int64_t id = t.token_to_id(tok);
    if (id < 0)
      throw IoError(vocab_txt + ": no " + std::string(tok) + " token; is this a BERT WordPiece vocab.txt?");
    return id;
  };
  t.unk_id_ = need("[UNK]");
  t.cls_id_ = need("[CLS]");
  t.sep_id_ = need("[SEP]");
  t.pad_id_ = need("[PAD]");
  return t;
}

int64_t WordPieceTokenizer::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string& WordPieceTokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id >= vocab_size()) throw std::out_of_range("WordPiece id " + std::to_string(id) + " out of range");
  return id_to_token_[id];
}

// Greedy longest-match-first: the longest vocab prefix, then "##"-prefixed continuations; a word
// with any unmatched remainder (or too long) is a single [UNK].
void WordPieceTokenizer::wordpiece(const std::u32string& word, std::vector<std::string>& out) const {
  const std::string& unk = id_to_token_[unk_id_];
  if (static_cast<int64_t>(word.size()) > opts_.max_chars_per_word) {
    out.push_back(unk);
    return;
  }
  std::vector<std::string> pieces;
  size_t start = 0;
  while (start < word.size()) {
    size_t end = word.size();
    std::string found;
    while (start < end) {
      std::string sub = (start > 0 ? "##" : "") + u32_to_utf8(word, start, end);
      if (vocab_.count(sub)) {
        found = std::move(sub);
        break;
      }
      --end;
    }
    if (found.empty()) {
      out.push_back(unk);
      return;
    }
    pieces.push_back(std::move(found));
    start = end;
  }
  for (auto& p : pieces) out.push_back(std::move(p));
}

std::vector<std::string> WordPieceTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> out;
  for (const auto& w : basic_tokenize_u32(text, opts_)) wordpiece(w, out);
  return out;
}

std::vector<int64_t> WordPieceTokenizer::encode(const std::string& text, int64_t max_length) const {
  if (max_length < 2) throw ConfigError("WordPiece encode: max_length " + std::to_string(max_length) + " < 2; "
                                        "it must fit [CLS] and [SEP]");
  std::vector<int64_t> ids{cls_id_};
  for (const auto& piece : tokenize(text)) {
    if (static_cast<int64_t>(ids.size()) >= max_length - 1) break;
    ids.push_back(vocab_.at(piece));
  }
  ids.push_back(sep_id_);
  return ids;
}

}  // namespace rarlhf
