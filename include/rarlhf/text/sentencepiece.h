// SentencePiece tokenizer (.model files) for policies that use one. libsentencepiece cannot share
// a process namespace with LibTorch (conflicting bundled protobufs, DESIGN §5), so it lives in a
// shim (librarlhf_spm_shim.so, src/spm_shim) that this class loads with dlmopen(LM_ID_NEWLM).
// Optional: when the shim was not built, from_file() throws an IoError saying how to enable it.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace rarlhf {

class SentencePieceTokenizer {
 public:
  static SentencePieceTokenizer from_file(const std::string& model_path);
  std::vector<int64_t> encode(const std::string& text) const;
  std::string decode(const std::vector<int64_t>& ids) const;
  int64_t vocab_size() const;
  int64_t eos_id() const;  // -1 when the model has none
  int64_t unk_id() const;
  int64_t bos_id() const;  // -1 when the model has none
  int64_t pad_id() const;  // -1 when the model has none
  int64_t token_to_id(const std::string& piece) const;  // -1 when absent
  const std::string& path() const;

  // Trains a model with spm_train flags (tests, small experiments). Throws IoError on failure.
  static void train(const std::string& spm_train_args);
  static bool available();  // the shim can be loaded

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace rarlhf
