// `rarlhf eval --config FILE [--model DIR] [--split test|tail] [--name NAME] [--out DIR]`: the paper's
// evaluation of one policy (reward, tail reward, CVaR, perplexity, Dist-n, plots) via run_eval();
// `rarlhf eval --compare DIR... --out DIR`: one table and overlaid plots of finished eval runs via
// compare_eval_runs(). The work is in src/eval/evaluator.cpp.
#include <iostream>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/eval/evaluator.h"

namespace rarlhf::cli {

void add_eval_command(CLI::App& app) {
  auto* sub = app.add_subcommand("eval", "Evaluate a policy (reward, tail, CVaR, perplexity, Dist-n, plots) "
                                         "or compare eval runs");
  auto args = std::make_shared<ConfigArgs>();
  auto req = std::make_shared<EvalRequest>();
  auto compare = std::make_shared<std::vector<std::string>>();
  add_config_options(sub, *args);
  sub->add_option("--model,-m", req->model_dir, "policy directory (default: model.path)");
  sub->add_option("--split", req->split, "test | tail (default: eval.split)");
  sub->add_option("--name", req->name, "run name in eval.json and plots (default: run.name)");
  sub->add_option("--out,-o", req->out_dir, "output folder (default: run.out_dir/eval-<split>)");
  sub->add_option("--prompt-cache", req->prompt_cache,
                  "prompt-score cache file (default: <parent of run.out_dir>/prompt_scores-<reward hash>.jsonl)");
  sub->add_option("--compare", *compare, "eval run folders to compare (no generation); needs --out")
      ->expected(1, -1);
  sub->callback([args, req, compare] {
    Config cfg = load_and_init(*args);
    if (!compare->empty()) {
      if (req->out_dir.empty()) throw ConfigError("--compare: needs --out DIR for the table and plots");
      std::cout << compare_eval_runs(*compare, req->out_dir, cfg.eval.plots);
      return;
    }
    const c10::Device device = resolve_device(cfg.run.device);
    auto reward = make_reward(cfg.reward, device);
    EvalOutcome res = run_eval(cfg, *req, *reward, device);
    write_run_info(cfg, res.out_dir);
    std::cout << eval_table({res.eval_json});
    std::cout << "prompt scores: " << res.cached_scores << " cached, " << res.scored_now << " computed ("
              << res.prompt_cache << ")\n"
              << "wrote " << res.out_dir << "/eval.json, generations.jsonl"
              << (res.plotted ? ", reward_hist.png, quantile_plot.png" : "") << "\n";
  });
}

}  // namespace rarlhf::cli
