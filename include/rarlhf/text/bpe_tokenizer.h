// BPE tokenizer (native C++, torch-free): loads tokenizer.json (HF, model.type "BPE": GPT-2, Llama-2/3,
// Mistral, Qwen2, SmolLM2 styles — normalizer, pre-tokenizer, added tokens, post-processor and decoder as
// the file declares, id-exact with `tokenizers`), vocab.json + merges.txt, or encoder.json + vocab.bpe
// (GPT-2 exactly: pre-tokenisation regex by hand with ICU categories, byte-to-unicode table, merges by rank).
// encode() is const and thread-safe (a sharded, mutex-guarded merge cache). For byte-level vocabularies
// decode() is the exact byte inverse, so decode(encode(x)) == x for any bytes, invalid UTF-8 included.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "rarlhf/text/tokenizer.h"

namespace rarlhf {

namespace text_detail {
struct BpeModel;
struct BpeCache;
}  // namespace text_detail

class BpeTokenizer : public Tokenizer {
 public:
  // dir holds tokenizer.json (HF, BPE model) or vocab.json + merges.txt or encoder.json + vocab.bpe
  // (tried in that order), and optionally tokenizer_config.json (bos/eos/pad tokens, add_bos_token,
  // add_eos_token). Throws IoError naming the file (and line or JSON path) on any load problem,
  // including a tokenizer.json component this class does not implement.
  static BpeTokenizer from_dir(const std::string& dir);
  // vocab_json: {"token": id, ...}; merges_txt: optional "#version" line, then "a b" per line (rank = order).
  static BpeTokenizer from_files(const std::string& vocab_json, const std::string& merges_txt);

  // Special tokens ("<|endoftext|>", and tokenizer.json's added_tokens) in text map to their ids;
  // no BOS/EOS is added. Bytes the vocab cannot express map to "<unk>" (load fails if there is none).
  std::vector<int64_t> encode(const std::string& text) const override;
  // add_special_tokens: also the post-processor's (or tokenizer_config.json's) BOS / EOS around the text.
  std::vector<int64_t> encode(const std::string& text, bool add_special_tokens) const override;
  // Byte-level: exact inverse for any bytes (invalid UTF-8 too). Otherwise tokenizer.json's decoder, as
  // tokenizers decodes (ByteFallback gives U+FFFD for incomplete bytes). Throws std::out_of_range on an
  // id outside the vocab.
  std::string decode(const std::vector<int64_t>& ids) const override;
  // tokenizer_config.json's eos_token, else <|endoftext|> (50256 for GPT-2); throws IoError if neither.
  int64_t eos_id() const override;
  // tokenizer_config.json's bos_token, else the post-processor's first special token, else -1.
  int64_t bos_id() const override;
  // tokenizer_config.json's pad_token, else tokenizer.json's padding.pad_id, else -1.
  int64_t pad_id() const override;
  // Number of ids: max id + 1 (50257 for GPT-2).
  int64_t vocab_size() const override;
  // The vocab string of an id (byte-level alphabet, e.g. "Ġthe"); throws std::out_of_range.
  std::string token(int64_t id) const;
  // The id of a vocab string, or -1 when absent.
  int64_t token_to_id(const std::string& token) const override;
  // Where the tokenizer was loaded from (for error messages).
  const std::string& source() const override;

 private:
  BpeTokenizer(std::shared_ptr<const text_detail::BpeModel> model);
  std::shared_ptr<const text_detail::BpeModel> model_;
  std::shared_ptr<text_detail::BpeCache> cache_;  // shared by copies: same model, same answers
};

// GPT-2's pre-tokenisation: splits text into the byte ranges [begin, end) that
// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ matches, with JS
// semantics for \s and Unicode general categories for \p{L} / \p{N}. Each invalid UTF-8 byte is one
// "other" character. Exposed for tests and the benchmark.
std::vector<std::pair<size_t, size_t>> gpt2_pretokenize(const std::string& text);

}  // namespace rarlhf
