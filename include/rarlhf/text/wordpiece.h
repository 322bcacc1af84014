// WordPiece tokenizer for BERT / DistilBERT reward models (vocab.txt + tokenizer_config.json).
// Follows BERT's BasicTokenizer + WordpieceTokenizer (Devlin et al. 2019; google-research/bert
// tokenization.py, as in transformers' BertTokenizer): clean control chars, space out CJK
// ideographs, NFC, split on whitespace, lower-case + strip accents (NFD, drop Mn), split off
// punctuation, then greedy longest-match-first sub-words with "##" continuations. Torch-free,
// immutable after load (encode is const and thread-safe). Unicode properties come from ICU.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace rarlhf {

struct WordPieceOptions {
  bool lower_case = true;              // tokenizer_config.json "do_lower_case"
  int strip_accents = -1;              // "strip_accents": -1 = null (follow lower_case), 0 = no, 1 = yes
  bool tokenize_chinese_chars = true;  // "tokenize_chinese_chars"
  int64_t max_chars_per_word = 100;    // longer words become [UNK]
};

class WordPieceTokenizer {
 public:
  // dir/vocab.txt (required) and dir/tokenizer_config.json (optional: do_lower_case,
  // strip_accents, tokenize_chinese_chars). Throws IoError naming the file when missing/malformed.
  static WordPieceTokenizer from_dir(const std::string& dir);
  // One token per line, id = line number from 0; must contain [UNK], [CLS], [SEP], [PAD].
  static WordPieceTokenizer from_vocab_file(const std::string& vocab_txt, const WordPieceOptions& opts);

  // Word pieces of `text` without special tokens, e.g. "Héllo, unaffable!" ->
  // {"hello", ",", "una", "##ffa", "##ble", "!"} (with a vocabulary that has those pieces).
  std::vector<std::string> tokenize(const std::string& text) const;
  // [CLS] pieces [SEP] as ids, pieces truncated so that the total is <= max_length (>= 2).
  std::vector<int64_t> encode(const std::string& text, int64_t max_length = 512) const;

  int64_t token_to_id(const std::string& token) const;  // -1 when absent
  const std::string& id_to_token(int64_t id) const;     // throws std::out_of_range
  int64_t vocab_size() const { return static_cast<int64_t>(id_to_token_.size()); }
  int64_t cls_id() const { return cls_id_; }
  int64_t sep_id() const { return sep_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t unk_id() const { return unk_id_; }
  const WordPieceOptions& options() const { return opts_; }

 private:
  void wordpiece(const std::u32string& word, std::vector<std::string>& out) const;

  WordPieceOptions opts_;
  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  int64_t cls_id_ = -1, sep_id_ = -1, pad_id_ = -1, unk_id_ = -1;
};

// BERT's BasicTokenizer alone (clean, CJK, NFC, whitespace, lower/accents, punctuation): the
// words before WordPiece. Exposed for tests.
std::vector<std::string> bert_basic_tokenize(const std::string& text, const WordPieceOptions& opts);

}  // namespace rarlhf
