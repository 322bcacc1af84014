// libFuzzer harness: the run configuration. Input byte 0 picks the entry point: even = a config
// file (load_config: parse, apply, validate), odd = one --set assignment (the rest of the input).
// A config that loads must round-trip: to_json -> apply_json on a fresh Config -> validate ->
// to_json gives the same JSON.
#include <nlohmann/json.hpp>

#include "fuzz/fuzz_support.h"
#include "rarlhf/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace rarlhf;
  if (size == 0) return 0;
  const std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  fuzz::expect_clean([&] {
    Config cfg;
    if (data[0] % 2 == 0) {
      cfg = load_config(fuzz::put_file("config.json", rest), {});
    } else {
      apply_set(cfg, std::string(rest));
      validate(cfg);
    }
    const nlohmann::json j = to_json(cfg);
    Config back;
    apply_json(back, j, "round trip");
    validate(back);
    if (to_json(back) != j) fuzz::finding("config round trip changed: " + j.dump().substr(0, 400));
  });
  return 0;
}
