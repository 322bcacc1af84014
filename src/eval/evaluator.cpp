// The eval pipeline behind `rarlhf eval`: see include/rarlhf/eval/evaluator.h. Numbered stages
// follow the paper's evaluation (reference/ra-rlhf.md §1.6-1.7): prompts, prompt scores, tail,
// generation, rewards, perplexity on human texts, metrics + files + plots.
#include "rarlhf/eval/evaluator.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/data/dataset.h"
#include "rarlhf/data/prompts.h"
#include "rarlhf/eval/report.h"
#include "rarlhf/eval/score_cache.h"
#include "rarlhf/generate/sampler.h"
#include "rarlhf/model/causal_lm.h"
#include "rarlhf/model/lora.h"
#include "rarlhf/model/nll.h"
#include "rarlhf/text/tokenizer.h"

namespace rarlhf {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Prompt texts -> scores through the on-disk cache; the reward model sees only the misses.
std::vector<double> cached_prompt_scores(const std::vector<Prompt>& prompts, RewardModel& reward,
                                         const std::string& path, EvalOutcome& out) {
  ScoreCache cache = load_score_cache(path, reward.describe());
  std::vector<std::string> texts;
  texts.reserve(prompts.size());
  for (const auto& p : prompts) texts.push_back(p.text);
  int64_t hits = 0;
  double unused = 0;
  for (const auto& t : texts) hits += cache.lookup(t, &unused) ? 1 : 0;
  int64_t missing = 0;
  auto scores = cache.score_all(texts, [&](const std::vector<std::string>& miss) {
    missing = static_cast<int64_t>(miss.size());
    RARLHF_LOG_INFO("eval: scoring {} prompts with {} (cache {})", miss.size(), reward.describe(), path);
    return reward.score(miss);
  });
  out.scored_now = missing;
  out.cached_scores = hits;
  if (missing > 0) {
    save_score_cache(path, cache);
  } else {
    RARLHF_LOG_INFO("eval: all {} prompt scores from the cache {}", texts.size(), path);
  }
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) {
      throw IoError(prompts[i].where + ": the reward model gave a non-finite prompt score; check reward.*");
    }
  }
  return scores;
}

// Per-text NLL of the human reference texts under the model under test (paper §1.7).
std::vector<TextNll> reference_nll(const Config& cfg, const CausalLm& lm, const Tokenizer& tok, int64_t* n_texts) {
  std::vector<TextNll> out;
  *n_texts = 0;
  if (cfg.eval.ppl_path.empty()) {
    RARLHF_LOG_INFO("eval: perplexity skipped (eval.ppl_path is empty)");
    return out;
  }
  auto examples = read_texts(cfg.data, cfg.eval.ppl_path);
  auto texts = perplexity_texts(examples, cfg.eval.ppl_label_filter, cfg.eval.ppl_max_chars);
  std::vector<std::vector<int64_t>> seqs;
  for (const auto& t : texts) {
    auto ids = tok.encode(t);
    if (!ids.empty()) seqs.push_back(std::move(ids));
  }
  if (seqs.empty()) {
    RARLHF_LOG_WARN("eval: perplexity skipped: no text in {} has label '{}'", cfg.eval.ppl_path,
                    cfg.eval.ppl_label_filter);
    return out;
  }
  *n_texts = static_cast<int64_t>(seqs.size());
  RARLHF_LOG_INFO("eval: perplexity on {} reference texts of {}", seqs.size(), cfg.eval.ppl_path);
  for (const auto& r : sequence_nll(lm, seqs, cfg.eval.ppl_batch_size)) out.push_back({r.nll_sum, r.tokens});
  return out;
}

}  // namespace

std::string default_prompt_cache_path(const Config& cfg, const std::string& reward_key) {
  fs::path parent = fs::path(cfg.run.out_dir).lexically_normal().parent_path();
  if (parent.empty()) parent = ".";
  return (parent / ("prompt_scores-" + ScoreCache::hash_text(reward_key).substr(0, 8) + ".jsonl")).string();
}

EvalOutcome run_eval(const Config& cfg, const EvalRequest& req, RewardModel& reward, const at::Device& device) {
  EvalOutcome out;
  out.split = req.split.empty() ? cfg.eval.split : req.split;
  using choice::EvalSplit;
  if (out.split != EvalSplit::kTest && out.split != EvalSplit::kTail) {
    throw ConfigError("eval.split: '" + out.split + "' is unknown; use " + EvalSplit::kTest + " or " + EvalSplit::kTail);
  }
  const std::string model_dir = req.model_dir.empty() ? cfg.model.path : req.model_dir;
  if (model_dir.empty()) throw ConfigError("model.path: empty; set it to the policy directory to evaluate");
  if (cfg.data.test_path.empty()) throw ConfigError("data.test_path: empty; set it to the evaluation prompts");
  const std::string trained = cfg.run.out_dir + "/policy";
  if (req.model_dir.empty() && is_model_dir(trained) &&
      fs::path(trained).lexically_normal() != fs::path(model_dir).lexically_normal()) {
    RARLHF_LOG_WARN("eval: evaluating model.path {} (the run's starting policy); this run's trained policy is {}, "
                    "set model.path to {} to evaluate it", model_dir, trained, trained);
  }
  const std::string name = req.name.empty() ? cfg.run.name : req.name;
  out.out_dir = req.out_dir.empty() ? cfg.run.out_dir + "/eval-" + out.split : req.out_dir;
  out.prompt_cache = req.prompt_cache.empty() ? default_prompt_cache_path(cfg, reward.describe()) : req.prompt_cache;

  // 0. The policy first: a bad model folder fails before any data is read or scored.
  Policy policy = load_policy(model_dir, cfg.model.dtype, device);
  policy.lm->eval();

  // 1. Test prompts: the first data.prompt_tokens tokens of each text, an eval.num_prompts subset.
  const std::string tok_dir = cfg.model.tokenizer.empty() ? model_dir : cfg.model.tokenizer;
  auto tok_ptr = load_tokenizer(tok_dir);
  const Tokenizer& tok = *tok_ptr;
  ReadReport report;
  // Class balance first (paper: Jigsaw/RTP test 50/50), then the num_prompts subset of it.
  auto prompts = load_prompts(cfg.data, cfg.data.test_path, tok, cfg.data.test_resample_share,
                              "data.test_resample_share", static_cast<uint64_t>(cfg.run.seed), &report);
  prompts = shuffle_select(prompts, static_cast<size_t>(cfg.eval.num_prompts), static_cast<uint64_t>(cfg.run.seed));
  out.test_prompts = static_cast<int64_t>(prompts.size());
  RARLHF_LOG_INFO("eval: {} test prompts from {} ({} rows, {} filtered, {} malformed)", prompts.size(),
                  cfg.data.test_path, report.rows, report.filtered, report.malformed);

  // 2. Prompt scores (reward model on the prompt alone), computed once per (prompts, reward).
  std::vector<double> prompt_scores = cached_prompt_scores(prompts, reward, out.prompt_cache, out);

  // 3. Tail split: keep only the tail prompts; their metrics then treat every record as tail.
  EvalConfig metric_cfg = cfg.eval;
  if (out.split == EvalSplit::kTail) {
    TailSplit tail = tail_split(prompt_scores, cfg.eval.tail_threshold, cfg.eval.tail_quantile);
    if (tail.indices.empty()) {
      const auto [lo, hi] = std::minmax_element(prompt_scores.begin(), prompt_scores.end());
      throw ConfigError("eval.tail_threshold: no test prompt has a prompt score <= " +
                        format_cell(cfg.eval.tail_threshold) + " (scores " + format_cell(*lo) + " .. " + format_cell(*hi) +
                        " over " + std::to_string(prompts.size()) +
                        " prompts); raise it or set eval.tail_quantile");
    }
    std::vector<Prompt> kept;
    std::vector<double> kept_scores;
    for (size_t i : tail.indices) {
      kept.push_back(prompts[i]);
      kept_scores.push_back(prompt_scores[i]);
    }
    prompts = std::move(kept);
    prompt_scores = std::move(kept_scores);
    metric_cfg.tail_quantile = 0;
    metric_cfg.tail_threshold = tail.threshold;
    RARLHF_LOG_INFO("eval: tail split: {} of {} prompts (prompt score <= {})", prompts.size(), out.test_prompts,
                    tail.threshold);
  }

  // eval.samples_per_prompt generations of each prompt, side by side: every record is one sample of
  // the reward (mean, tail, CVaR), and Dist-n pools each prompt's records (DExperts/Quark: 25).
  if (cfg.eval.samples_per_prompt > 1) {
    const size_t k = static_cast<size_t>(cfg.eval.samples_per_prompt);
    std::vector<Prompt> repeated;
    std::vector<double> repeated_scores;
    repeated.reserve(prompts.size() * k);
    for (size_t i = 0; i < prompts.size(); ++i) {
      for (size_t j = 0; j < k; ++j) {
        repeated.push_back(prompts[i]);
        repeated_scores.push_back(prompt_scores[i]);
      }
    }
    RARLHF_LOG_INFO("eval: {} generations of each of {} prompts", k, prompts.size());
    prompts = std::move(repeated);
    prompt_scores = std::move(repeated_scores);
  }

  // 4. Generate with the paper's settings, 5. score prompt+response (or the response alone).
  const std::vector<int64_t> prefix_ids = cfg.eval.prompt_prefix.empty()
                                              ? std::vector<int64_t>{}
                                              : tok.encode(cfg.eval.prompt_prefix);
  const bool with_prompt = cfg.reward.input == choice::RewardInput::kPromptResponse;
  const size_t bs = static_cast<size_t>(std::max<int64_t>(1, cfg.generate.batch_size));
  double total_tokens = 0;
  for (size_t start = 0; start < prompts.size(); start += bs) {
    const size_t end = std::min(prompts.size(), start + bs);
    std::vector<std::vector<int64_t>> inputs;
    for (size_t i = start; i < end; ++i) {
      std::vector<int64_t> ids = prefix_ids;
      ids.insert(ids.end(), prompts[i].ids.begin(), prompts[i].ids.end());
      inputs.push_back(std::move(ids));
    }
    GenerationResult gen;
    {
      torch::NoGradGuard no_grad;
      gen = generate(policy.lm, inputs, cfg.generate, tok.eos_id(), static_cast<uint64_t>(cfg.run.seed) + start);
    }
    total_tokens += gen.response_mask.sum().item<double>();  // the stop token counts, as in TRL
    const auto text_ids = response_tokens(gen, /*with_stop=*/false);
    std::vector<std::string> texts;
    for (size_t b = 0; b < inputs.size(); ++b) {
      const Prompt& p = prompts[start + b];
      GenerationRecord r;
      r.prompt = p.text;
      r.response = tok.decode(text_ids[b]);
      r.label = p.label;
      r.prompt_score = prompt_scores[start + b];
      texts.push_back(with_prompt ? r.prompt + r.response : r.response);
      out.records.push_back(std::move(r));
    }
    auto rewards = reward.score(texts);
    if (rewards.size() != texts.size()) {
      throw Error("the reward model (" + reward.describe() + ") returned " + std::to_string(rewards.size()) +
                  " scores for " + std::to_string(texts.size()) + " texts");
    }
    for (size_t b = 0; b < rewards.size(); ++b) out.records[start + b].reward = rewards[b];
    RARLHF_LOG_INFO("eval: generated {}/{}", end, prompts.size());
  }
  out.mean_response_tokens = total_tokens / static_cast<double>(prompts.size());

  // 6. Perplexity of the model under test on human reference texts.
  int64_t ppl_texts = 0;
  std::vector<TextNll> nll = reference_nll(cfg, policy.lm, tok, &ppl_texts);

  // 7. Metrics, files, plots.
  out.metrics = compute_eval_metrics(out.records, metric_cfg, nll.empty() ? nullptr : &nll);
  json extra = {{"split", out.split},
                {"model", model_dir},
                {"test_path", cfg.data.test_path},
                {"test_prompts", out.test_prompts},
                {"prompt_prefix", cfg.eval.prompt_prefix},
                {"prompt_score_cache", out.prompt_cache},
                {"reward_model", reward.describe()},
                {"response_tokens", {{"mean", out.mean_response_tokens}}},
                {"config", to_json(cfg)}};
  if (!cfg.eval.ppl_path.empty()) extra["perplexity_source"] = cfg.eval.ppl_path;
  write_eval_run(out.out_dir, name, out.records, out.metrics, extra);
  out.eval_json = eval_metrics_json(out.metrics, name);
  for (auto it = extra.begin(); it != extra.end(); ++it) out.eval_json[it.key()] = it.value();
  RARLHF_LOG_INFO("eval: wrote {}/eval.json and generations.jsonl", out.out_dir);
  if (cfg.eval.plots) out.plotted = plot_eval_runs({out.out_dir}, out.out_dir, metric_cfg.tail_quantile > 0
                                                                                   ? out.metrics.tail.threshold
                                                                                   : metric_cfg.tail_threshold);
  return out;
}

std::string eval_table(const std::vector<nlohmann::json>& evals) {
  const std::vector<std::string> head = {"run", "split", "n", "reward", "tail (n)", "CVaR_0.1", "PPL",
                                         "Dist-1", "Dist-2", "Dist-3", "resp_tok"};
  std::vector<std::vector<std::string>> rows = {head};
  for (const auto& j : evals) {
    std::string tail = format_cell(json_number_at(j, {"tail", "reward", "mean"}));
    double tn = json_number_at(j, {"tail", "count"});
    if (std::isfinite(tn)) tail += " (" + std::to_string(static_cast<int64_t>(tn)) + ")";
    const double n = json_number_at(j, {"generations"});
    rows.push_back({j.value("name", std::string("?")), j.contains("split") && j["split"].is_string()
                                                           ? j["split"].get<std::string>()
                                                           : "-",
                    std::isfinite(n) ? std::to_string(static_cast<int64_t>(n)) : "-",
                    format_cell(json_number_at(j, {"reward", "mean"})), tail, format_cell(json_number_at(j, {"cvar", "0.1"})),
                    format_cell(json_number_at(j, {"perplexity", "mean_per_text"}), 2), format_cell(json_number_at(j, {"dist", "dist1"})),
                    format_cell(json_number_at(j, {"dist", "dist2"})), format_cell(json_number_at(j, {"dist", "dist3"})),
                    format_cell(json_number_at(j, {"response_tokens", "mean"}), 1)});
  }
  std::vector<size_t> width(head.size(), 0);
  for (const auto& r : rows) {
    for (size_t c = 0; c < r.size(); ++c) width[c] = std::max(width[c], r[c].size());
  }
  std::ostringstream s;
  for (const auto& r : rows) {
    for (size_t c = 0; c < r.size(); ++c) {
      // Name left-aligned, numbers right-aligned.
      const std::string pad(width[c] - r[c].size(), ' ');
      s << (c == 0 ? r[c] + pad : pad + r[c]) << (c + 1 < r.size() ? "  " : "\n");
    }
  }
  return s.str();
}

std::string compare_eval_runs(const std::vector<std::string>& run_dirs, const std::string& out_dir, bool plots) {
  if (run_dirs.empty()) throw ConfigError("compare: no eval run folders given; name at least one");
  std::vector<json> evals;
  for (const auto& d : run_dirs) evals.push_back(read_eval_run_json(d));
  const std::string table = eval_table(evals);
  make_dirs(out_dir);
  json rows = json::array();
  for (size_t i = 0; i < evals.size(); ++i) {
    const json& j = evals[i];
    rows.push_back({{"dir", run_dirs[i]},
                    {"name", j["name"]},
                    {"split", j.value("split", std::string())},
                    {"reward", json_number_at(j, {"reward", "mean"})},
                    {"tail_reward", json_number_at(j, {"tail", "reward", "mean"})},
                    {"tail_count", json_number_at(j, {"tail", "count"})},
                    {"cvar_0.1", json_number_at(j, {"cvar", "0.1"})},
                    {"perplexity", json_number_at(j, {"perplexity", "mean_per_text"})},
                    {"dist1", json_number_at(j, {"dist", "dist1"})},
                    {"dist2", json_number_at(j, {"dist", "dist2"})},
                    {"dist3", json_number_at(j, {"dist", "dist3"})},
                    {"response_tokens", json_number_at(j, {"response_tokens", "mean"})}});
  }
  // NaN (absent) values are written as null by nlohmann::json.
  write_file_atomic(out_dir + "/compare.json", rows.dump(2) + "\n");
  write_file_atomic(out_dir + "/compare.txt", table);
  if (plots) {
    // Draw the tail threshold when all runs used the same threshold rule.
    double thr = json_number_at(evals[0], {"tail", "threshold"});
    for (const auto& j : evals) {
      if (json_number_at(j, {"tail", "threshold"}) != thr || std::isfinite(json_number_at(j, {"tail", "quantile"}))) thr = NAN;
    }
    plot_eval_runs(run_dirs, out_dir, thr);
  }
  return table;
}

}  // namespace rarlhf
