// `rarlhf export`: reads a policy directory of any supported family and writes it back as a plain
// Hugging Face directory (config.json, model.safetensors, value_head.safetensors, tokenizer files) in
// the dtype asked for, e.g. to hand a trained policy to transformers, or to store a bf16 copy. The
// work is load_policy / save_policy (src/model/causal_lm.cpp).
#include <iostream>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/model/causal_lm.h"

namespace rarlhf::cli {

void add_export_command(CLI::App& app) {
  auto* sub = app.add_subcommand("export", "Write a policy directory back as a Hugging Face checkpoint");
  auto model = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto dtype = std::make_shared<std::string>("float32");
  sub->add_option("--model,-m", *model, "policy directory (config.json + model.safetensors)")->required();
  sub->add_option("--out,-o", *out, "directory to write (replaced atomically)")->required();
  sub->add_option("--dtype", *dtype, "float32 | bfloat16 | float16 for the written weights");
  sub->callback([model, out, dtype] {
    if (*out == *model) throw ConfigError("export: --out must differ from --model");
    // float16 is GPU-only for computing, not for storing: load as float32 and cast at the end.
    const at::ScalarType st = parse_dtype(*dtype, "--dtype");
    Policy p = load_policy(*model, "float32", at::kCPU);
    p.lm->to(st);
    bool has_tokenizer = false;
    for (const char* f : {"tokenizer.json", "vocab.json", "encoder.json", "tokenizer.model"}) {
      has_tokenizer |= file_exists(*model + "/" + f);
    }
    save_policy(p, *out, has_tokenizer ? *model : "");
    std::cout << "export: " << p.lm->config().model_type << " policy written to " << *out << " (" << *dtype << ")\n";
  });
}

}  // namespace rarlhf::cli
