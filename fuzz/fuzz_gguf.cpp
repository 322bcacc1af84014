// libFuzzer harness: the GGUF reader (GgufFile), dequantization of every tensor it accepts, the
// tokenizer built from tokenizer.ggml.* and `rarlhf convert` on arbitrary bytes. Each either works or
// throws a one-line rarlhf::Error. A tensor that dequantizes must have its declared element count.
#include <ATen/ATen.h>

#include <filesystem>

#include "fuzz/fuzz_support.h"
#include "rarlhf/io/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rarlhf;
  const std::string path = fuzz::put_file("model.gguf", std::string_view(reinterpret_cast<const char*>(data), size));
  fuzz::expect_clean([&] {
    const GgufFile f(path);
    for (const auto& t : f.tensors()) {
      int64_t n = 1;
      for (int64_t d : t.ne) n *= d;
      if (n > (1 << 22)) continue;  // bounded work per input
      const at::Tensor x = f.dequantize(t);
      if (x.numel() != n) fuzz::finding("tensor " + t.name + ": dequantized element count differs");
    }
    if (f.has("tokenizer.ggml.model")) fuzz::expect_clean([&] { gguf_tokenizer_json(f).dump(); });
  });
  const std::string out = fuzz::scratch_dir() + "/converted";
  std::error_code ec;
  std::filesystem::remove_all(out, ec);
  fuzz::expect_clean([&] { convert_gguf(path, out, {}); });
  return 0;
}
