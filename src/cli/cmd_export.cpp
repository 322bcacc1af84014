// `rarlhf export`: reads a policy directory of any supported family and writes it back as a plain
// Hugging Face directory (config.json, model.safetensors, value_head.safetensors, tokenizer files) in
// the dtype asked for, e.g. to hand a trained policy to transformers, or to store a bf16 copy. A LoRA
// policy (a PEFT adapter directory) is written back as an adapter, or with --merge as the base with
// the adapters folded into its weights. The work is load_policy / merge_lora / save_policy.
#include <iostream>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/model/causal_lm.h"
#include "rarlhf/model/lora.h"

namespace rarlhf::cli {

void add_export_command(CLI::App& app) {
  auto* sub = app.add_subcommand("export", "Write a policy directory back as a Hugging Face checkpoint");
  auto model = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto dtype = std::make_shared<std::string>("float32");
  auto merge = std::make_shared<bool>(false);
  sub->add_option("--model,-m", *model, "policy directory (config.json + model.safetensors, or a PEFT adapter)")->required();
  sub->add_option("--out,-o", *out, "directory to write (replaced atomically)")->required();
  sub->add_option("--dtype", *dtype, "float32 | bfloat16 | float16 for the written weights");
  sub->add_flag("--merge", *merge, "a LoRA adapter: fold it into the base and write a plain checkpoint");
  sub->callback([model, out, dtype, merge] {
    if (*out == *model) throw ConfigError("export: --out must differ from --model");
    // float16 is GPU-only for computing, not for storing: load as float32 and cast at the end.
    const at::ScalarType st = parse_dtype(*dtype, "--dtype");
    Policy p = load_policy(*model, "float32", at::kCPU);
    const bool adapter = p.lm->lora() != nullptr;
    if (*merge && !adapter) throw ConfigError("export: --merge: " + *model + " is not a LoRA adapter (no adapter_config.json)");
    if (*merge) merge_lora(*p.lm);  // in float32, then cast
    if (adapter && !*merge && st != at::kFloat) {
      throw ConfigError("export: --dtype: an adapter is written as trained (float32); add --merge to cast the merged model");
    }
    p.lm->to(st);
    bool has_tokenizer = false;
    for (const char* f : {"tokenizer.json", "vocab.json", "encoder.json", "tokenizer.model"}) {
      has_tokenizer |= file_exists(*model + "/" + f);
    }
    save_policy(p, *out, has_tokenizer ? *model : "");
    std::cout << "export: " << p.lm->config().model_type << (adapter ? (*merge ? " policy + LoRA merged" : " LoRA adapter") : " policy")
              << " written to " << *out << " (" << *dtype << ")\n";
  });
}

}  // namespace rarlhf::cli
