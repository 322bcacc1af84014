// The tokenizer interface commands use, whichever files a model directory has: BpeTokenizer
// (tokenizer.json, vocab.json + merges.txt, encoder.json + vocab.bpe) or SentencePiece
// (tokenizer.model). load_tokenizer() picks one; it does not train or download anything.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rarlhf {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // No special tokens added (added tokens written in the text still map to their ids).
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  // add_special_tokens = true: what the model expects around a text (BOS for Llama), as
  // tokenizers' encode(text, add_special_tokens=True) gives.
  virtual std::vector<int64_t> encode(const std::string& text, bool add_special_tokens) const = 0;
  // Special tokens are decoded too (skip_special_tokens=False). Throws std::out_of_range on a bad id.
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t eos_id() const = 0;  // throws IoError when the tokenizer has none
  virtual int64_t bos_id() const = 0;  // -1 when none
  virtual int64_t pad_id() const = 0;  // -1 when none
  virtual int64_t vocab_size() const = 0;
  virtual int64_t token_to_id(const std::string& token) const = 0;  // -1 when absent
  virtual const std::string& source() const = 0;                    // the file(s), for messages
};

// dir/tokenizer.json, else vocab.json + merges.txt, else encoder.json + vocab.bpe (BpeTokenizer), else
// tokenizer.model (SentencePiece); tokenizer_config.json beside them supplies bos/eos/pad and
// add_bos_token / add_eos_token. Throws IoError listing what it looked for.
std::shared_ptr<const Tokenizer> load_tokenizer(const std::string& dir);

}  // namespace rarlhf
