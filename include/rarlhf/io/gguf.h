// GGUF (llama.cpp's model file; format described in ggml's docs/gguf.md, versions 2 and 3) read
// natively: header, metadata key/values, tensor table, alignment, and dequantization of the tensor
// types llama.cpp files use (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and the K-quants Q4_K,
// Q5_K, Q6_K) into float32. The file is mapped, every header field is checked against the file
// before anything is read through it, and a malformed file is an IoError naming the file and the
// field (fuzz/fuzz_gguf.cpp), never a crash. convert_gguf() writes a Hugging Face model directory
// from a Llama- or Qwen2-architecture GGUF: `rarlhf convert --gguf`.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rarlhf {

// ggml's type ids (ggml.h enum ggml_type) of the types read here.
enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
  kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kBF16 = 30,
};
// "Q4_K", ... for a type id (also ids not read here, for messages); "type <n>" when unknown.
std::string ggml_type_name(uint32_t type);

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml's dimensions, ne[0] fastest; torch's shape is ne reversed
  uint32_t type = 0;
  uint64_t offset = 0;      // from the start of the data section
  uint64_t bytes = 0;
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
};

class GgufFile {
 public:
  // Maps and validates `path`. IoError naming the file and field on anything malformed: magic,
  // version (2 or 3), counts, string and array lengths, value types, tensor dims, types, offsets and
  // sizes (each tensor inside the file, aligned, not overlapping another).
  explicit GgufFile(const std::string& path);
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  // Every key/value: numbers as JSON numbers (u64 as unsigned), bool, string (bytes as stored: GGUF
  // strings are UTF-8), arrays as JSON arrays. type_of(key) gives GGUF's value type id.
  const nlohmann::json& metadata() const { return metadata_; }
  bool has(const std::string& key) const { return metadata_.contains(key); }
  // The value, or IoError "<file>: metadata <key> is missing" / "... is not <what>".
  const nlohmann::json& at(const std::string& key) const;
  uint64_t get_uint(const std::string& key) const;
  double get_float(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  uint32_t type_of(const std::string& key) const;

  const std::vector<GgufTensorInfo>& tensors() const { return tensors_; }
  const GgufTensorInfo* find(const std::string& name) const;  // nullptr when absent
  // The tensor as float32 in torch's shape; IoError for a type not read here.
  at::Tensor dequantize(const GgufTensorInfo& t) const;
  at::Tensor dequantize(const std::string& name) const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_start_ = 0;
  nlohmann::json metadata_ = nlohmann::json::object();
  std::vector<std::pair<std::string, uint32_t>> types_;  // key -> GGUF value type
  std::vector<GgufTensorInfo> tensors_;
};

// Dequantizes `blocks` raw bytes of `n` values of `type` into out[0..n) (n a multiple of the type's
// block size; the bytes exactly the blocks'). IoError (naming `what`) for a type not read here.
void dequantize_ggml(uint32_t type, const uint8_t* blocks, size_t bytes, int64_t n, float* out, const std::string& what);
// Bytes of n values of `type` (block size * type size per block); 0 for a type not read here or n not
// a multiple of the block size.
uint64_t ggml_row_bytes(uint32_t type, int64_t n);

// tokenizer.json / tokenizer_config.json content from a GGUF's tokenizer.ggml.* keys: model "gpt2"
// (byte-level BPE: tokens in id order, merges, token types CONTROL -> special added tokens,
// USER_DEFINED -> added tokens) with the pre-tokenizer of tokenizer.ggml.pre as llama.cpp applies it:
// gpt2 / default (GPT-2's regex), smollm / starcoder / refact / command-r / codeshell (each digit
// alone, then GPT-2's regex), llama-bpe (Llama 3's regex, ignore_merges), qwen2 (NFC, Qwen2's regex).
// IoError naming the key for another tokenizer model or pre-tokenizer.
nlohmann::json gguf_tokenizer_json(const GgufFile& f);
nlohmann::json gguf_tokenizer_config(const GgufFile& f);

struct GgufConvertOptions {
  std::string dtype = "float32";  // the weights written: float32 | bfloat16 | float16
};

// Writes a Hugging Face causal-LM directory from a GGUF file: config.json (llama or qwen2, from the
// <arch>.* keys), model.safetensors (dequantized, llama.cpp's Q/K row permutation undone for Llama),
// tokenizer.json + tokenizer_config.json (from tokenizer.ggml.*: GPT-2-style byte-level BPE with the
// pre-tokenizer of tokenizer.ggml.pre), generation_config.json, and rarlhf_convert.json (the source
// file, its sha-independent summary). Written into a temp folder renamed to out_dir: nothing half
// written. ConfigError/IoError naming the key for an architecture, tokenizer model or pre-tokenizer
// it does not handle. Returns a one-line summary.
std::string convert_gguf(const std::string& gguf_path, const std::string& out_dir, const GgufConvertOptions& opt);

}  // namespace rarlhf
