// Internals of the text area (not a public header): the parts of a Hugging Face tokenizer.json around
// its BPE model — normalizers, pre-tokenizers, decoders, the post-processor's special tokens and
// added-token matching — parsed into plain structs and run with tokenizers' semantics (regexes by ICU,
// with Oniguruma's \s). The BPE model itself stays in bpe_tokenizer.cpp.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rarlhf {
namespace text_detail {

// A compiled ICU regex over UTF-8 (byte offsets). Shared read-only between threads.
class Regex {
 public:
  // pattern in Oniguruma syntax (tokenizers' "Regex"), or a literal string (its "String").
  // Throws IoError naming `where` when ICU rejects the pattern.
  Regex(const std::string& pattern, bool literal, const std::string& where);
  ~Regex();
  // Every match, left to right, as byte ranges (empty matches included).
  std::vector<std::pair<size_t, size_t>> find_all(const std::string& s) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct NormalizerStep {
  enum Kind { kNfc, kNfkc, kNfd, kNfkd, kPrepend, kReplace, kLowercase, kStrip } kind;
  std::string text;     // Prepend: prefix. Replace: content
  std::shared_ptr<const Regex> pattern;  // Replace
  bool left = false, right = false;      // Strip
};

enum class SplitBehavior { kRemoved, kIsolated, kMergedWithPrevious, kMergedWithNext, kContiguous };

struct PreTokenizerStep {
  enum Kind { kSplit, kDigits, kMetaspace, kWhitespace, kWhitespaceSplit, kByteLevel } kind;
  std::shared_ptr<const Regex> pattern;  // Split, Whitespace
  SplitBehavior behavior = SplitBehavior::kIsolated;
  bool invert = false;
  bool individual_digits = false;   // Digits
  std::string replacement;          // Metaspace (UTF-8 of one character)
  enum Prepend { kAlways, kFirst, kNever } prepend = kAlways;  // Metaspace
  bool split = true;                // Metaspace
  bool add_prefix_space = false;    // ByteLevel
  bool use_regex = true;            // ByteLevel: GPT-2's regex
};

struct DecoderStep {
  enum Kind { kByteLevel, kMetaspace, kReplace, kByteFallback, kFuse, kStrip } kind;
  std::shared_ptr<const Regex> pattern;  // Replace
  std::string text;                      // Replace: content. Metaspace: replacement. Strip: content
  bool prepend = true;                   // Metaspace: prepend_scheme != never
  int64_t start = 0, stop = 0;           // Strip
};

// A tokenizer.json added token. `match` is what is searched for: the content, or for normalized
// tokens the content after the normalizer (as tokenizers does).
struct AddedToken {
  std::string content;
  std::string match;
  int32_t id = -1;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

struct Pipeline {
  std::vector<NormalizerStep> normalizer;
  std::vector<PreTokenizerStep> pre_tokenizer;
  bool has_decoder = false;
  std::vector<DecoderStep> decoder;
  // post_processor's single template around the sequence (TemplateProcessing, Roberta, Bert).
  std::vector<int32_t> prefix_ids, suffix_ids;
  bool byte_level = false;  // a ByteLevel pre-tokenizer: BPE symbols are GPT-2's byte alphabet
};

// Parses the named components of a tokenizer.json `j`. `path` names the file in messages;
// `id_of` returns a token's id or -1. Unsupported types are IoErrors naming the JSON path.
Pipeline parse_pipeline(const nlohmann::json& j, const std::string& path,
                        const std::function<int32_t(const std::string&)>& id_of);

std::string normalize(const std::vector<NormalizerStep>& steps, std::string s);

// Pre-tokenises one segment (text between added tokens) into pieces. at_start: the segment begins
// the original text (Metaspace prepend_scheme "first"). For ByteLevel the byte mapping is left to
// the model; its regex split uses the hand-written GPT-2 pre-tokeniser with Oniguruma's \s.
void pre_tokenize(const std::vector<PreTokenizerStep>& steps, std::string segment, bool at_start,
                  std::vector<std::string>& out);

// Runs the decoder chain over the tokens' strings and joins the result. gpt2_bytes: a token's
// string in GPT-2's byte alphabet -> bytes (ByteLevel).
std::string run_decoder(const std::vector<DecoderStep>& steps, std::vector<std::string> tokens,
                        const std::function<bool(const std::string&, std::string&)>& gpt2_bytes);

// Splits `s` around the added tokens in `tokens` (leftmost-longest, with lstrip / rstrip /
// single_word as tokenizers does): emit(begin, end, token or nullptr), tiling s.
void split_added(const std::string& s, const std::vector<const AddedToken*>& tokens,
                 const std::function<void(size_t, size_t, const AddedToken*)>& emit);

// A value of the user's tokenizer files as an error line shows it: its JSON (invalid UTF-8 as U+FFFD,
// so a stray 0xFF byte cannot turn the message into a JSON exception), at most 80 bytes.
std::string jdump(const nlohmann::json& v);

// Reads a special token's content from tokenizer_config.json: "x", {"content": "x", ...}, or null -> "".
std::string config_token(const nlohmann::json& v);

}  // namespace text_detail
}  // namespace rarlhf
