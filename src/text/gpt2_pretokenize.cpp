// GPT-2's pre-tokenisation regex, implemented by hand (std::regex has no \p{..} and is slow):
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Semantics follow the JS reference (gpt-3-encoder, /.../gu): \s is ECMAScript WhiteSpace +
// LineTerminator, \p{L} / \p{N} are Unicode general categories L* / N* (from ICU). Bytes that are not
// valid UTF-8 are one "other" ([^\s\p{L}\p{N}]) character each, so any byte string splits cleanly.
#include "rarlhf/common/error.h"
#include "rarlhf/text/bpe_tokenizer.h"
#include "text_internal.h"

#include <unicode/uchar.h>

#include <string>

namespace rarlhf {
namespace text_detail {

namespace {

// ASCII classes: letters, digits, JS whitespace (TAB LF VT FF CR SPACE), everything else.
struct AsciiTable {
  uint8_t cls[128];
  AsciiTable() {
    for (int c = 0; c < 128; ++c) {
      if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
        cls[c] = kLetter;
      } else if (c >= '0' && c <= '9') {
        cls[c] = kNumber;
      } else if ((c >= 9 && c <= 13) || c == ' ') {
        cls[c] = kSpace;
      } else {
        cls[c] = kOther;
      }
    }
  }
};
const AsciiTable kAscii;

uint8_t classify(UChar32 cp, bool onig_space) {
  switch (u_charType(cp)) {
    case U_UPPERCASE_LETTER:
    case U_LOWERCASE_LETTER:
    case U_TITLECASE_LETTER:
    case U_MODIFIER_LETTER:
    case U_OTHER_LETTER:
      return kLetter;
    case U_DECIMAL_DIGIT_NUMBER:
    case U_LETTER_NUMBER:
    case U_OTHER_NUMBER:
      return kNumber;
    case U_SPACE_SEPARATOR:  // Zs: U+00A0, U+1680, U+2000..U+200A, U+202F, U+205F, U+3000
      return kSpace;
    default:
      // ECMAScript \s beyond Zs: LINE SEPARATOR, PARAGRAPH SEPARATOR, ZERO WIDTH NO-BREAK SPACE.
      // (U+0085 and U+180E are not \s in JS, unlike Python's regex module.)
      if (onig_space) return (cp == 0x2028 || cp == 0x2029 || cp == 0x85) ? kSpace : kOther;
      return (cp == 0x2028 || cp == 0x2029 || cp == 0xFEFF) ? kSpace : kOther;
  }
}

inline bool is_cont(unsigned char b) { return (b & 0xC0) == 0x80; }

// Length of the well-formed UTF-8 sequence at s[0..n) and its code point; 0 if ill-formed
// (overlong, surrogate, > U+10FFFF, truncated). Table 3-7 of the Unicode standard.
inline int utf8_decode(const unsigned char* s, size_t n, UChar32* cp) {
  unsigned char b0 = s[0];
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    if (n < 2 || !is_cont(s[1])) return 0;
    *cp = ((b0 & 0x1F) << 6) | (s[1] & 0x3F);
    return 2;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (n < 3) return 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
    if (s[1] < lo || s[1] > hi || !is_cont(s[2])) return 0;
    *cp = ((b0 & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    return 3;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (n < 4) return 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
    if (s[1] < lo || s[1] > hi || !is_cont(s[2]) || !is_cont(s[3])) return 0;
    *cp = ((b0 & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
  }
  return 0;
}

}  // namespace

void decode_chars(const char* text, size_t n, std::vector<Char>& out, bool onig_space) {
  if (n >= (size_t{1} << 32)) {  // Char::offset is 32-bit to keep the hot array small
    throw ConfigError("tokenizer: a text of " + std::to_string(n) + " bytes is over the 4 GiB limit; split it first");
  }
  out.clear();
  out.reserve(n + 1);
  const auto* s = reinterpret_cast<const unsigned char*>(text);
  size_t i = 0;
  while (i < n) {
    unsigned char b = s[i];
    if (b < 0x80) {
      out.push_back({static_cast<uint32_t>(i), kAscii.cls[b], static_cast<char>(b)});
      ++i;
      continue;
    }
    UChar32 cp = 0;
    int len = utf8_decode(s + i, n - i, &cp);
    if (len == 0) {
      out.push_back({static_cast<uint32_t>(i), kOther, 0});  // invalid byte: its own "other" char
      ++i;
    } else {
      out.push_back({static_cast<uint32_t>(i), classify(cp, onig_space), 0});
      i += len;
    }
  }
  out.push_back({static_cast<uint32_t>(n), kSpace, 0});  // sentinel: gives the end offset of the last char
}

}  // namespace text_detail

std::vector<std::pair<size_t, size_t>> gpt2_pretokenize(const std::string& text) {
  std::vector<std::pair<size_t, size_t>> out;
  std::vector<text_detail::Char> chars;
  text_detail::pretokenize(text.data(), text.size(), chars,
                           [&](size_t b, size_t e) { out.emplace_back(b, e); });
  return out;
}

}  // namespace rarlhf
