// libFuzzer harness: load_safetensors / load_safetensors_metadata on arbitrary bytes. A file that
// loads must survive a round trip: saved again and reloaded, the same names, dtypes, shapes, bytes
// and metadata.
#include <ATen/ATen.h>

#include <cstring>

#include "fuzz/fuzz_support.h"
#include "rarlhf/io/safetensors.h"

namespace {

bool same_bytes(const at::Tensor& a, const at::Tensor& b) {
  if (a.scalar_type() != b.scalar_type() || a.sizes() != b.sizes()) return false;
  const at::Tensor ca = a.contiguous(), cb = b.contiguous();
  const size_t n = static_cast<size_t>(ca.numel()) * ca.element_size();
  return n == 0 || std::memcmp(ca.data_ptr(), cb.data_ptr(), n) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rarlhf;
  const std::string path = fuzz::put_file("model.safetensors",
                                          std::string_view(reinterpret_cast<const char*>(data), size));
  fuzz::expect_clean([&] { load_safetensors_metadata(path); });
  fuzz::expect_clean([&] {
    const TensorMap tensors = load_safetensors(path);
    const auto metadata = load_safetensors_metadata(path);
    std::vector<std::pair<std::string, at::Tensor>> list(tensors.begin(), tensors.end());
    const std::string again = fuzz::scratch_dir() + "/again.safetensors";
    save_safetensors(again, list, metadata);
    const TensorMap back = load_safetensors(again);
    if (back.size() != tensors.size()) fuzz::finding("round trip changed the tensor count");
    for (const auto& [name, t] : tensors) {
      auto it = back.find(name);
      if (it == back.end()) fuzz::finding("round trip lost tensor " + name);
      if (!same_bytes(t, it->second)) fuzz::finding("round trip changed tensor " + name);
    }
    if (load_safetensors_metadata(again) != metadata) fuzz::finding("round trip changed __metadata__");
  });
  return 0;
}
