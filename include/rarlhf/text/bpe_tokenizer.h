// GPT-2 byte-level BPE tokenizer (native C++, torch-free): loads tokenizer.json (HF, model.type "BPE"),
// vocab.json + merges.txt, or encoder.json + vocab.bpe, and reproduces GPT-2's encode exactly
// (pre-tokenisation regex by hand with ICU categories, byte-to-unicode table, merges by rank).
// encode() is const and thread-safe (a sharded, mutex-guarded merge cache); decode() is the exact
// byte-level inverse, so decode(encode(x)) == x for any bytes, invalid UTF-8 included.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rarlhf {

namespace text_detail {
struct BpeModel;
struct BpeCache;
}  // namespace text_detail

class BpeTokenizer {
 public:
  // dir holds tokenizer.json (HF, BPE model) or vocab.json + merges.txt or encoder.json + vocab.bpe
  // (tried in that order). Throws IoError naming the file (and line) on any load problem.
  static BpeTokenizer from_dir(const std::string& dir);
  // vocab_json: {"token": id, ...}; merges_txt: optional "#version" line, then "a b" per line (rank = order).
  static BpeTokenizer from_files(const std::string& vocab_json, const std::string& merges_txt);

  // Special tokens ("<|endoftext|>", and tokenizer.json's added_tokens) in text map to their ids;
  // no BOS/EOS is added. Bytes the vocab cannot express map to "<unk>" (load fails if there is none).
  std::vector<int64_t> encode(const std::string& text) const;
  // Exact inverse for any bytes (invalid UTF-8 too). Throws std::out_of_range on an id outside the vocab.
  std::string decode(const std::vector<int64_t>& ids) const;
  // <|endoftext|> (50256 for GPT-2); throws IoError if the vocab has none.
  int64_t eos_id() const;
  // Number of ids: max id + 1 (50257 for GPT-2).
  int64_t vocab_size() const;
  // The vocab string of an id (byte-level alphabet, e.g. "Ġthe"); throws std::out_of_range.
  std::string token(int64_t id) const;
  // The id of a vocab string, or -1 when absent.
  int64_t token_to_id(const std::string& token) const;
  // Where the tokenizer was loaded from (for error messages).
  const std::string& source() const;

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
