// `rarlhf logprobs`: per-token log-probabilities and perplexity of texts under a policy
// (BOS prepended, as Hugging Face evaluate's perplexity with add_start_token). Input: .txt (one text
// per line) or .jsonl ("text" field). Output JSONL, one line per text {index, tokens, nll, perplexity,
// token_logprobs}, then {"summary": ...} with perplexity = exp(total NLL / total tokens) and
// mean_perplexity = mean of per-text perplexities (evaluate's "mean_perplexity"). Engine: sequence_nll.
#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/data/dataset.h"
#include "rarlhf/model/nll.h"
#include "rarlhf/text/tokenizer.h"

namespace rarlhf::cli {

void add_logprobs_command(CLI::App& app) {
  auto* sub = app.add_subcommand("logprobs", "Token log-probabilities and perplexity of texts under a policy");
  auto args = std::make_shared<ConfigArgs>();
  auto model = std::make_shared<std::string>();
  auto input = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  add_config_options(sub, *args);
  sub->add_option("--model,-m", *model, "policy directory (default: model.path)");
  sub->add_option("--input,-i", *input, ".txt (one text per line) or .jsonl (\"text\" field)")->required();
  sub->add_option("--out,-o", *out, "output .jsonl (default: stdout)");
  sub->callback([=] {
    Config cfg = load_and_init(*args);
    const std::string dir = model->empty() ? cfg.model.path : *model;
    if (dir.empty()) throw ConfigError("logprobs: no model; pass --model DIR or set model.path");
    Policy policy = load_policy(dir, cfg.model.dtype, resolve_device(cfg.run.device));
    auto tok_ptr = load_tokenizer(dir);
    const Tokenizer& tok = *tok_ptr;

    DataConfig dc;
    dc.format = ends_with(*input, ".jsonl") ? choice::DataFormat::kJsonl : choice::DataFormat::kLines;
    dc.text_field = "text";
    dc.label_field = "";
    dc.on_error = choice::OnError::kFail;
    auto texts = read_texts(dc, *input);
    if (texts.empty()) throw IoError(*input + ": no texts found");
    std::vector<std::vector<int64_t>> seqs;
    for (const auto& t : texts) seqs.push_back(tok.encode(t.text));
    auto res = sequence_nll(policy.lm, seqs, cfg.eval.ppl_batch_size);

    std::ostringstream lines;
    double nll = 0, ppl_sum = 0;
    int64_t tokens = 0, counted = 0;
    for (size_t i = 0; i < res.size(); ++i) {
      const auto& r = res[i];
      const double ppl = r.tokens ? std::exp(r.nll_sum / r.tokens) : NAN;
      nlohmann::json j = {{"index", i}, {"tokens", r.tokens}, {"nll", r.nll_sum},
                          {"perplexity", r.tokens ? nlohmann::json(ppl) : nlohmann::json(nullptr)},
                          {"token_logprobs", r.token_logprobs}};
      lines << j.dump() << "\n";
      nll += r.nll_sum;
      tokens += r.tokens;
      if (r.tokens) {
        ppl_sum += ppl;
        ++counted;
      }
    }
    const double ppl = tokens ? std::exp(nll / tokens) : NAN;
    nlohmann::json summary = {{"texts", res.size()}, {"tokens", tokens}, {"nll", nll},
                              {"perplexity", ppl}, {"mean_perplexity", counted ? ppl_sum / counted : NAN}};
    lines << nlohmann::json{{"summary", summary}}.dump() << "\n";
    RARLHF_LOG_INFO("logprobs: {} texts, {} tokens, perplexity {:.4f}", res.size(), tokens, ppl);
    if (out->empty()) {
      std::cout << lines.str();
    } else {
      write_file_atomic(*out, lines.str());
    }
  });
}

}  // namespace rarlhf::cli
