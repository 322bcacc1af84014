// `rarlhf convert --gguf FILE --out DIR [--dtype D]`: a Hugging Face causal-LM directory from a
// llama.cpp GGUF file (Llama / Mistral / SmolLM2 / Qwen2 architectures; the tensor types of
// include/rarlhf/io/gguf.h dequantized), which every other command then loads as model.path. The
// work is convert_gguf (src/io/gguf_convert.cpp).
#include <iostream>

#include "cli.h"
#include "rarlhf/io/gguf.h"

namespace rarlhf::cli {

void add_convert_command(CLI::App& app) {
  auto* sub = app.add_subcommand("convert", "Write a Hugging Face model directory from a GGUF file (dequantized)");
  auto gguf = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto dtype = std::make_shared<std::string>("float32");
  sub->add_option("--gguf", *gguf, "the GGUF file (llama.cpp; llama or qwen2 architecture)")->required();
  sub->add_option("--out,-o", *out, "directory to write (new or empty; written whole or not at all)")->required();
  sub->add_option("--dtype", *dtype, "float32 | bfloat16 | float16 for the written weights (default float32)");
  sub->callback([gguf, out, dtype] {
    GgufConvertOptions opt;
    opt.dtype = *dtype;
    std::cout << "convert: " << convert_gguf(*gguf, *out, opt) << std::endl;
  });
}

}  // namespace rarlhf::cli
