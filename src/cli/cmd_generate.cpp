// `rarlhf generate`: samples continuations of prompts with a policy directory (any supported family), using the
// generate.* settings (paper: top_k 0, top_p 1, fixed length). Prompts: .jsonl with a "prompt" or
// "text" field per line, or .txt with one prompt per line. Output JSONL {prompt, response, prompt_ids,
// response_ids} to --out (atomic) or stdout. The work is in generate() (src/generate/sampler.cpp).
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/common/text_lines.h"
#include "rarlhf/generate/sampler.h"
#include "rarlhf/text/tokenizer.h"

namespace rarlhf::cli {
namespace {

std::vector<std::string> read_prompts(const std::string& path) {
  const bool jsonl = ends_with(path, ".jsonl") || ends_with(path, ".json");
  std::vector<std::string> out;
  for_each_line(read_file(path), [&](int64_t n, const std::string& line) {
    if (!jsonl) {
      out.push_back(line);
      return;
    }
    const auto where = path + ":" + std::to_string(n);
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception&) {
      throw IoError(where + ": not a JSON object; write one {\"prompt\": \"...\"} per line");
    }
    const char* key = j.is_object() && j.contains("prompt") ? "prompt" : "text";
    if (!j.is_object() || !j.contains(key) || !j[key].is_string()) {
      throw IoError(where + ": no string \"prompt\" or \"text\" field");
    }
    out.push_back(j[key].get<std::string>());
  });
  if (out.empty()) throw IoError(path + ": no prompts found");
  return out;
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto* sub = app.add_subcommand("generate", "Sample continuations of prompts with a policy (GPT-2, GPT-J, GPT-NeoX, Llama, ...)");
  auto args = std::make_shared<ConfigArgs>();
  auto model = std::make_shared<std::string>();
  auto prompts_path = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  add_config_options(sub, *args);
  sub->add_option("--model,-m", *model, "policy directory (default: model.path)");
  sub->add_option("--prompts,-p", *prompts_path, ".jsonl (\"prompt\"/\"text\" field) or .txt (one per line)")
      ->required();
  sub->add_option("--out,-o", *out, "output .jsonl (default: stdout)");
  sub->callback([=] {
    Config cfg = load_and_init(*args);
    const std::string dir = model->empty() ? cfg.model.path : *model;
    if (dir.empty()) throw ConfigError("generate: no model; pass --model DIR or set model.path");
    const auto device = resolve_device(cfg.run.device);
    Policy policy = load_policy(dir, cfg.model.dtype, device);
    auto tok_ptr = load_tokenizer(dir);
    const Tokenizer& tok = *tok_ptr;
    const auto texts = read_prompts(*prompts_path);
    std::ostringstream lines;
    const int64_t bs = cfg.generate.batch_size;
    for (size_t start = 0; start < texts.size(); start += bs) {
      const size_t end = std::min(texts.size(), start + static_cast<size_t>(bs));
      std::vector<std::vector<int64_t>> ids;
      for (size_t i = start; i < end; ++i) {
        ids.push_back(tok.encode(texts[i], /*add_special_tokens=*/true));
        if (ids.back().empty()) throw IoError(*prompts_path + ": prompt " + std::to_string(i + 1) + " is empty");
      }
      auto res = generate(policy.lm, ids, cfg.generate, tok.eos_id(), cfg.run.seed + start);
      const auto responses = response_tokens(res, /*with_stop=*/true);
      const auto text_ids = response_tokens(res, /*with_stop=*/false);
      for (size_t b = 0; b < ids.size(); ++b) {
        nlohmann::json j = {{"prompt", texts[start + b]}, {"response", tok.decode(text_ids[b])},
                            {"prompt_ids", ids[b]}, {"response_ids", responses[b]}};
        lines << j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
      }
      RARLHF_LOG_INFO("generate: {}/{} prompts", end, texts.size());
    }
    if (out->empty()) {
      std::cout << lines.str();
    } else {
      write_file_atomic(*out, lines.str());
      RARLHF_LOG_INFO("generate: wrote {}", *out);
    }
  });
}

}  // namespace rarlhf::cli
