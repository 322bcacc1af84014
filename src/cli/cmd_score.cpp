// `rarlhf score`: scores the rows of a JSONL file with the configured reward model (reward.*:
// VADER or a Hugging Face classifier) and writes them back with a "score" field, plus a summary
// line on stderr. Example:
//   rarlhf score --input texts.jsonl --set reward.lexicon=assets/vader/vader_lexicon.txt --out scored.jsonl
#include <cstdio>
#include <memory>

#include "cli.h"
#include "rarlhf/eval/metrics.h"
#include "rarlhf/reward/reward.h"
#include "rarlhf/reward/score_jsonl.h"

namespace rarlhf::cli {

void add_score_command(CLI::App& app) {
  auto* sub = app.add_subcommand("score", "Score a JSONL file with the reward model (adds a \"score\" field)");
  auto args = std::make_shared<ConfigArgs>();
  auto spec = std::make_shared<ScoreJsonlSpec>();
  auto input = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  add_config_options(sub, *args);
  sub->add_option("--input", *input, "JSONL file, one object per line")->required();
  sub->add_option("--field", spec->field, "field holding the text (dotted paths allowed)")->capture_default_str();
  sub->add_option("--prompt-field", spec->prompt_field, "score prompt + response: the prompt field");
  sub->add_option("--response-field", spec->response_field, "score prompt + response: the response field");
  sub->add_option("--out", *out, "output JSONL (default: stdout)");
  sub->callback([args, spec, input, out] {
    Config cfg = load_and_init(*args);
    spec->input = cfg.reward.input;
    auto reward = make_reward(cfg.reward, resolve_device(cfg.run.device));
    std::vector<double> scores = score_jsonl(*reward, *input, *out, *spec);
    Summary s = summarize(scores);
    if (scores.empty()) {
      std::fprintf(stderr, "score: n=0 (no rows in %s)\n", input->c_str());
      return;
    }
    std::fprintf(stderr, "score: n=%lld mean=%.4f std=%.4f min=%.4f p10=%.4f p50=%.4f p90=%.4f max=%.4f  [%s]\n",
                 static_cast<long long>(s.n), s.mean, s.std, s.min, quantile(scores, 0.1), quantile(scores, 0.5),
                 quantile(scores, 0.9), s.max, reward->describe().c_str());
  });
}

}  // namespace rarlhf::cli
