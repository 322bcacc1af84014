// safetensors read/write (https://github.com/huggingface/safetensors, format described in its README):
// 8-byte little-endian header length N, N bytes of JSON {name: {dtype, shape, data_offsets}, "__metadata__"},
// then the raw little-endian tensor bytes. Reading maps the file and hands out zero-copy CPU tensors
// (copy-on-write pages) when the data is aligned; every header field is validated first, so a corrupted
// file is an IoError naming the file and tensor, never a crash. Writing is atomic.
#pragma once
#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace rarlhf {

using TensorMap = std::map<std::string, at::Tensor>;  // ordered: deterministic output

// CPU tensors in the file's dtype (F64/F32/F16/BF16/I64/I32/I16/I8/U8/BOOL).
TensorMap load_safetensors(const std::string& path);

// The "__metadata__" map of a file (validated like load_safetensors, tensors not materialised).
std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);

// Writes the tensors in the given order (any device/dtype above; made contiguous on CPU),
// "__metadata__" = metadata, header padded with spaces to a multiple of 8 bytes. Atomic.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// The weights of a Hugging Face model directory: <dir>/model.safetensors, else the shards that
// <dir>/model.safetensors.index.json's weight_map names (merged; a name that leaves the directory, a
// missing weight_map or bad JSON is an IoError naming the index). Sets *source to the file read (the
// name to use in later errors). A directory with only pytorch_model.bin is an IoError "<dir>: ...;
// <bin_hint>" (how to convert it), one with neither "<dir>: no model.safetensors; <missing_hint>".
TensorMap load_hf_weights(const std::string& dir, std::string* source, const std::string& bin_hint,
                          const std::string& missing_hint);

}  // namespace rarlhf
