// Internals of the text area shared between its .cpp files (not a public header): the decoded
// character stream and the GPT-2 pre-tokeniser, inlined into the encoder's hot loop.
#pragma once
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace rarlhf {
namespace text_detail {

enum CharClass : uint8_t { kLetter = 0, kNumber = 1, kOther = 2, kSpace = 3 };

struct Char {
  uint32_t offset;  // byte offset of the character in the text
  uint8_t cls;      // CharClass
  char ascii;       // the character when ASCII, else 0
};

// Decodes text into characters plus one sentinel (offset n) at the end. Texts are < 4 GiB.
// onig_space: \s is Unicode White_Space as in tokenizers' Oniguruma (U+0085 is space, U+FEFF is
// not) instead of ECMAScript's (the JS reference): only those two characters differ.
void decode_chars(const char* text, size_t n, std::vector<Char>& out, bool onig_space = false);

// Calls emit(begin, end) for each byte range matched by the GPT-2 regex, in order; the ranges tile text.
template <class Emit>
void pretokenize(const char* text, size_t n, std::vector<Char>& chars, Emit&& emit, bool onig_space = false) {
  decode_chars(text, n, chars, onig_space);
  const size_t m = chars.size() - 1;  // characters, without the sentinel
  const Char* c = chars.data();
  size_t i = 0;
  while (i < m) {
    // 's|'t|'re|'ve|'m|'ll|'d  (case-sensitive, ASCII apostrophe only; tried first)
    if (c[i].ascii == '\'' && i + 1 < m) {
      char a = c[i + 1].ascii;
      if (a == 's' || a == 't' || a == 'm' || a == 'd') {
        emit(c[i].offset, c[i + 2].offset);
        i += 2;
        continue;
      }
      if (i + 2 < m) {
        char b = c[i + 2].ascii;
        if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
          emit(c[i].offset, c[i + 3].offset);
          i += 3;
          continue;
        }
      }
    }
    // ' ?\p{L}+' | ' ?\p{N}+' | ' ?[^\s\p{L}\p{N}]+': an optional U+0020 then a maximal run of one class.
    size_t start = i;
    size_t j = i;
    if (c[i].ascii == ' ' && i + 1 < m && c[i + 1].cls != kSpace) j = i + 1;
    if (c[j].cls != kSpace) {
      uint8_t cls = c[j].cls;
      ++j;
      while (j < m && c[j].cls == cls) ++j;
      emit(c[start].offset, c[j].offset);
      i = j;
      continue;
    }
    // '\s+(?!\S)' then '\s+': a whitespace run; when a non-space follows, its last character is left
    // to lead the next token (unless the run is a single character).
    j = i + 1;
    while (j < m && c[j].cls == kSpace) ++j;
    if (j < m && j - i >= 2) --j;
    emit(c[i].offset, c[j].offset);
    i = j;
  }
}

// GPT-2's byte -> code point table and UTF-8 encoding of a code point (bpe_tokenizer.cpp).
std::array<uint32_t, 256> byte_to_codepoint();
void append_utf8(std::string& s, uint32_t cp);

}  // namespace text_detail
}  // namespace rarlhf
