// load_tokenizer(): picks the tokenizer a model directory has, and the Tokenizer adapter over
// SentencePieceTokenizer (tokenizer.model). BpeTokenizer implements Tokenizer itself.
// SentencePiece's own Encode adds no BOS/EOS; encode(text, true) adds them as Llama's tokenizers do.
#include "rarlhf/text/tokenizer.h"

#include <nlohmann/json.hpp>
#include <stdexcept>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/text/bpe_tokenizer.h"
#include "rarlhf/text/sentencepiece.h"

namespace rarlhf {

namespace {

class SentencePieceAdapter : public Tokenizer {
 public:
  SentencePieceAdapter(SentencePieceTokenizer sp, bool add_bos, bool add_eos)
      : sp_(std::move(sp)), add_bos_(add_bos), add_eos_(add_eos) {}
  std::vector<int64_t> encode(const std::string& text) const override { return sp_.encode(text); }
  std::vector<int64_t> encode(const std::string& text, bool add_special_tokens) const override {
    std::vector<int64_t> out;
    if (add_special_tokens && add_bos_ && sp_.bos_id() >= 0) out.push_back(sp_.bos_id());
    std::vector<int64_t> body = sp_.encode(text);
    out.insert(out.end(), body.begin(), body.end());
    if (add_special_tokens && add_eos_ && sp_.eos_id() >= 0) out.push_back(sp_.eos_id());
    return out;
  }
  std::string decode(const std::vector<int64_t>& ids) const override {
    for (int64_t id : ids) {
      if (id < 0 || id >= vocab_size()) {
        throw std::out_of_range("token id " + std::to_string(id) + " is not in the vocab of " + source() + " (size " +
                                std::to_string(vocab_size()) + ")");
      }
    }
    return sp_.decode(ids);
  }
  int64_t eos_id() const override {
    if (sp_.eos_id() < 0) throw IoError(source() + ": the SentencePiece model has no eos piece; train it with --eos_id");
    return sp_.eos_id();
  }
  int64_t bos_id() const override { return sp_.bos_id(); }
  int64_t pad_id() const override { return sp_.pad_id(); }
  int64_t vocab_size() const override { return sp_.vocab_size(); }
  int64_t token_to_id(const std::string& token) const override { return sp_.token_to_id(token); }
  const std::string& source() const override { return sp_.path(); }

 private:
  SentencePieceTokenizer sp_;
  bool add_bos_, add_eos_;
};

// add_bos_token / add_eos_token of tokenizer_config.json; defaults as transformers' LlamaTokenizer.
void read_spm_flags(const std::string& path, bool& add_bos, bool& add_eos) {
  add_bos = true;
  add_eos = false;
  if (!file_exists(path)) return;
  nlohmann::json c;
  try {
    c = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::parse_error& e) {
    throw IoError(path + ": invalid JSON (" + e.what() + "); fix or remove it");
  }
  for (auto [key, out] : {std::pair<const char*, bool*>{"add_bos_token", &add_bos}, {"add_eos_token", &add_eos}}) {
    if (!c.is_object() || !c.contains(key) || c[key].is_null()) continue;
    if (!c[key].is_boolean()) throw IoError(path + ": " + key + ": expected true or false, got " + c[key].dump());
    *out = c[key].get<bool>();
  }
}

}  // namespace

std::shared_ptr<const Tokenizer> load_tokenizer(const std::string& dir) {
  auto in = [&](const char* name) { return dir + "/" + name; };
  if (file_exists(in("tokenizer.json")) || (file_exists(in("vocab.json")) && file_exists(in("merges.txt"))) ||
      (file_exists(in("encoder.json")) && file_exists(in("vocab.bpe")))) {
    return std::make_shared<BpeTokenizer>(BpeTokenizer::from_dir(dir));
  }
  if (file_exists(in("tokenizer.model"))) {
    bool add_bos = true, add_eos = false;
    read_spm_flags(in("tokenizer_config.json"), add_bos, add_eos);
    return std::make_shared<SentencePieceAdapter>(SentencePieceTokenizer::from_file(in("tokenizer.model")), add_bos,
                                                  add_eos);
  }
  throw IoError(dir + ": no tokenizer found (looked for tokenizer.json, vocab.json + merges.txt, encoder.json + "
                "vocab.bpe, tokenizer.model); point the model or tokenizer path at a Hugging Face model folder");
}

}  // namespace rarlhf
