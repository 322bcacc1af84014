// Run configuration: one plain struct per concern, defaults and meaning beside each field.
// Torch-free. Field names are spelled exactly like their JSON keys; each struct lists its
// fields once in visit_fields(), which drives JSON in/out, unknown-key checks and the docs.
// Layering: struct defaults <- --config file.json (may "extends" a base file) <- --set a.b=JSON.
// Settings come from the RA-RLHF paper (reference/ra-rlhf.md §1.3-1.7) unless said otherwise.
#pragma once
#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace rarlhf {

struct RunConfig {
  std::string name = "run";        // run name, used in logs and plots
  std::string out_dir = "runs/run";  // outputs: config.json, metrics.jsonl, checkpoints, eval
  int64_t seed = 42;               // seeds torch, sampling and data shuffling
  std::string device = "auto";     // auto | cpu | cuda | cuda:N (auto = cuda when available)
  int64_t threads = 0;             // CPU threads for torch and OpenBLAS; 0 = all cores
  int64_t save_every = 0;          // checkpoint every N iterations/steps; 0 = only at the end
  template <class V> void visit_fields(V&& v) {
    v("name", name, "run name, used in logs and plots");
    v("out_dir", out_dir, "output directory (config, metrics, checkpoints, eval)");
    v("seed", seed, "seed for torch, sampling and data shuffling");
    v("device", device, "auto | cpu | cuda | cuda:N (auto = cuda when available)");
    v("threads", threads, "CPU threads for torch and OpenBLAS; 0 = all cores");
    v("save_every", save_every, "checkpoint every N iterations; 0 = only at the end");
  }
};

struct ModelConfig {
  std::string path;               // Hugging Face causal-LM directory (config.json, model.safetensors, tokenizer)
  std::string ref_path;           // reference policy for the KL penalty; "" = a frozen copy of `path`
  std::string tokenizer;          // tokenizer directory; "" = `path`
  std::string dtype = "float32";  // float32 | bfloat16 | float16 (weights; logprobs stay fp32)
  template <class V> void visit_fields(V&& v) {
    v("path", path, "Hugging Face causal-LM directory: gpt2, gptj, gpt_neox, llama, mistral, qwen2");
    v("ref_path", ref_path, "reference policy for the KL penalty; \"\" = frozen copy of path");
    v("tokenizer", tokenizer, "tokenizer.json, vocab.json+merges.txt or tokenizer.model directory; \"\" = model.path");
    v("dtype", dtype, "float32 | bfloat16 | float16 weights (logprob path stays fp32)");
  }
};

struct DataConfig {
  std::string format = "jsonl";   // jsonl | csv | lines | imdb_dir | jigsaw_csv | rtp_jsonl | uci_json
  std::string train_path;         // training prompts / SFT texts
  std::string test_path;          // evaluation prompts
  std::string text_field = "text";    // JSONL/CSV column with the text
  std::string label_field = "label";  // JSONL/CSV column with the label ("" = none)
  std::string score_field;            // JSONL/CSV column with a precomputed prompt score ("" = none;
                                      // e.g. "score" in imdb-rarlhf CSVs); jigsaw_csv reads "reward"
  int64_t min_chars = 0;          // drop texts with len(text) <= min_chars (paper IMDB: 200)
  int64_t prompt_tokens = 64;     // prompt = first N GPT-2 tokens (IMDB 64, Jigsaw 8, RTP 32)
  int64_t max_examples = 0;       // 0 = all
  std::string on_error = "skip";  // malformed rows: skip (counted, reported) | fail
  // Class balance of the prompt sets (paper §1.5, Jigsaw and RTP: train 70/30 non-toxic/toxic,
  // test 50/50): resample without replacement to the largest set with this share of resample_label.
  std::string resample_label;        // "" = no resampling (paper Jigsaw/RTP: "toxic")
  double train_resample_share = 0;   // share of RL training prompts labelled resample_label; 0 = as read
  double test_resample_share = 0;    // share of evaluation prompts labelled resample_label; 0 = as read
  template <class V> void visit_fields(V&& v) {
    v("format", format, "jsonl | csv | lines | imdb_dir | jigsaw_csv | rtp_jsonl | uci_json");
    v("train_path", train_path, "training prompts / SFT texts");
    v("test_path", test_path, "evaluation prompts");
    v("text_field", text_field, "JSONL/CSV field holding the text");
    v("label_field", label_field, "JSONL/CSV field holding the label (\"\" = none)");
    v("score_field", score_field, "JSONL/CSV field with a precomputed prompt score (\"\" = none)");
    v("min_chars", min_chars, "keep texts longer than this many characters (paper IMDB: 200)");
    v("prompt_tokens", prompt_tokens, "prompt = first N tokens (IMDB 64, Jigsaw 8, RTP 32)");
    v("max_examples", max_examples, "cap on examples read; 0 = all");
    v("on_error", on_error, "malformed rows: skip (counted, reported with file:line) | fail");
    v("resample_label", resample_label, "label whose share the resampling fixes (\"\" = off; paper: toxic)");
    v("train_resample_share", train_resample_share, "share of RL train prompts with resample_label (paper: 0.3); 0 = as read");
    v("test_resample_share", test_resample_share, "share of eval prompts with resample_label (paper: 0.5); 0 = as read");
  }
};

struct SftConfig {
  double learning_rate = 1e-5;    // AdamW (paper: 1e-5)
  double weight_decay = 0.0;
  int64_t epochs = 1;
  int64_t batch_size = 8;         // sequences per micro-batch
  int64_t grad_accum = 1;         // micro-batches per optimizer step (paper: 64 x 16)
  int64_t seq_length = 64;        // tokens per training sequence (paper: 64)
  int64_t eval_every = 0;         // held-out loss every N steps; 0 = at the end of each epoch
  double eval_fraction = 0.05;    // fraction of texts held out for the eval loss
  std::string label_filter;       // keep only texts with this label ("" = all; paper: positive / non-toxic)
  bool from_scratch = false;      // random init from model.path/config.json (pre-training) instead of its weights
  template <class V> void visit_fields(V&& v) {
    v("learning_rate", learning_rate, "AdamW learning rate (paper: 1e-5)");
    v("weight_decay", weight_decay, "AdamW weight decay");
    v("epochs", epochs, "passes over the training texts");
    v("batch_size", batch_size, "sequences per micro-batch");
    v("grad_accum", grad_accum, "micro-batches per optimizer step");
    v("seq_length", seq_length, "tokens per training sequence (paper: 64)");
    v("eval_every", eval_every, "held-out loss every N steps; 0 = end of each epoch");
    v("eval_fraction", eval_fraction, "fraction of texts held out for the eval loss");
    v("label_filter", label_filter, "train only on texts with this label; \"\" = all");
    v("from_scratch", from_scratch, "random init from model.path/config.json instead of its weights");
  }
};

struct PpoConfig {
  int64_t batch_size = 128;          // episodes per iteration B
  int64_t mini_batch_size = 128;     // episodes per gradient step; must divide batch_size
  int64_t ppo_epochs = 4;            // optimisation passes over each batch
  int64_t total_iterations = 0;      // M; 0 = one pass over the prompts (paper)
  double learning_rate = 1.41e-5;    // Adam, constant
  double init_kl_coef = 0.2;         // initial beta
  bool adaptive_kl = true;           // adaptive controller (Ziegler et al.); false = fixed beta
  double kl_target = 6.0;            // adaptive KL target
  double kl_horizon = 10000;         // adaptive KL horizon
  std::string kl_penalty = "k1";     // per-token KL estimate in the reward: k1 (log ratio) | k3
  double gamma = 1.0;                // discount
  double lam = 0.95;                 // GAE lambda
  double clip_range = 0.2;           // policy ratio clip
  double clip_range_value = 0.2;     // value clip
  double vf_coef = 0.1;              // value loss weight
  double ratio_threshold = 10.0;     // skip a minibatch whose mean ratio exceeds this; 0 = off
  double max_grad_norm = 0.0;        // 0 = no gradient clipping (paper)
  bool whiten_advantages = true;     // masked whitening over kept tokens
  bool custom_kernels = true;        // fused token-logprob / GAE / whiten kernels; false = plain ops (A/B)
  bool from_scratch = false;         // random-init policy from model.path/config.json (smoke runs, toy rewards)
  template <class V> void visit_fields(V&& v) {
    v("batch_size", batch_size, "episodes per iteration B (paper: 128)");
    v("mini_batch_size", mini_batch_size, "episodes per gradient step; divides batch_size");
    v("ppo_epochs", ppo_epochs, "optimisation passes over each batch (paper: 4)");
    v("total_iterations", total_iterations, "M; 0 = one pass over the prompts (paper)");
    v("learning_rate", learning_rate, "Adam learning rate, constant (paper: 1.41e-5)");
    v("init_kl_coef", init_kl_coef, "initial KL coefficient beta (paper: 0.2)");
    v("adaptive_kl", adaptive_kl, "adaptive KL controller; false = fixed beta");
    v("kl_target", kl_target, "adaptive KL target (paper: 6)");
    v("kl_horizon", kl_horizon, "adaptive KL horizon (paper: 10000)");
    v("kl_penalty", kl_penalty, "per-token KL estimate in the reward: k1 | k3");
    v("gamma", gamma, "discount (paper: 1)");
    v("lam", lam, "GAE lambda (paper: 0.95)");
    v("clip_range", clip_range, "policy ratio clip (paper: 0.2)");
    v("clip_range_value", clip_range_value, "value clip (paper: 0.2)");
    v("vf_coef", vf_coef, "value loss weight (paper: 0.1)");
    v("ratio_threshold", ratio_threshold, "skip minibatches whose mean ratio exceeds this; 0 = off");
    v("max_grad_norm", max_grad_norm, "gradient clipping norm; 0 = off (paper)");
    v("whiten_advantages", whiten_advantages, "whiten advantages over kept tokens");
    v("custom_kernels", custom_kernels, "fused kernels; false = plain LibTorch ops (A/B runs)");
    v("from_scratch", from_scratch, "random-init policy (and reference) from model.path/config.json; smoke runs");
  }
};

struct RiskConfig {
  bool enabled = false;        // false = risk-neutral PPO (RLHF)
  double alpha = 0.4;          // alpha: final fraction of each batch kept (lowest returns)
  int64_t n = 30;              // warm start: iterations m <= n use the full batch
  double rho = 0.95;           // fraction of M at which the kept fraction reaches alpha
  std::string schedule = "paper";  // paper (Eq. 8-10) | legacy (the reference code's "old" rule)
  std::string selection = "lowest";  // lowest (RA-RLHF) | random: k(m) episodes at random (ablation control)
  template <class V> void visit_fields(V&& v) {
    v("enabled", enabled, "false = risk-neutral PPO (RLHF); true = RA-RLHF");
    v("alpha", alpha, "final fraction of each batch kept, lowest returns (IMDB 0.4, Jigsaw 0.2)");
    v("n", n, "warm start: iterations m <= n use the full batch (paper: 30)");
    v("rho", rho, "fraction of M at which the kept fraction reaches alpha (paper: 0.95)");
    v("schedule", schedule, "paper (Eq. 8-10) | legacy (reference code's old rule)");
    v("selection", selection, "lowest (RA-RLHF) | random: same k(m), episodes drawn at random (ablation)");
  }
};

struct GenerateConfig {
  int64_t max_new_tokens = 48;   // response length (IMDB 48, Jigsaw/RTP 32)
  int64_t min_new_tokens = 48;   // EOS suppressed before this many tokens (paper: = max_new_tokens)
  double temperature = 1.0;
  int64_t top_k = 0;             // 0 = off
  double top_p = 1.0;            // 1 = off
  bool greedy = false;           // argmax instead of sampling
  int64_t batch_size = 32;       // prompts per generation batch (generate/eval)
  template <class V> void visit_fields(V&& v) {
    v("max_new_tokens", max_new_tokens, "response length (IMDB 48, Jigsaw/RTP 32)");
    v("min_new_tokens", min_new_tokens, "EOS suppressed before this many tokens (paper: = max)");
    v("temperature", temperature, "sampling temperature");
    v("top_k", top_k, "top-k sampling; 0 = off (paper)");
    v("top_p", top_p, "nucleus sampling; 1 = off (paper)");
    v("greedy", greedy, "argmax decoding instead of sampling");
    v("batch_size", batch_size, "prompts per generation batch (generate, eval)");
  }
};

struct RewardConfig {
  std::string type = "vader";        // vader | hf_classifier
  std::string path;                  // hf_classifier: HF directory (config.json, model.safetensors, vocab)
  std::string lexicon;               // vader: vader_lexicon.txt
  int64_t label_index = 1;           // logit used as reward (distilbert-imdb: 1; toxic-bert: 0)
  double sign = 1.0;                 // reward = sign * logit (toxic-bert: -1)
  double scale = 1.0;                // reward multiplier (e.g. VADER compound x 3 to match logit range)
  int64_t batch_size = 32;
  int64_t max_length = 512;          // classifier truncation in tokens
  std::string input = "prompt+response";  // prompt+response | response
  template <class V> void visit_fields(V&& v) {
    v("type", type, "vader | hf_classifier");
    v("path", path, "hf_classifier: Hugging Face classifier directory");
    v("lexicon", lexicon, "vader: path to vader_lexicon.txt");
    v("label_index", label_index, "logit used as reward (distilbert-imdb 1, toxic-bert 0)");
    v("sign", sign, "reward = sign * scale * score (toxic-bert: -1)");
    v("scale", scale, "reward multiplier");
    v("batch_size", batch_size, "texts per scoring batch");
    v("max_length", max_length, "classifier truncation, tokens");
    v("input", input, "prompt+response | response");
  }
};

struct EvalConfig {
  std::string split = "test";       // test | tail
  double tail_threshold = -2.5;     // tail = prompts whose prompt score <= this (IMDB -2.5, Jigsaw +5)
  double tail_quantile = 0.0;       // > 0: tail = worst q of prompts by prompt score instead
  int64_t num_prompts = 0;          // 0 = all test prompts (paper IMDB: 5000)
  std::vector<double> cvar_alphas = {0.05, 0.1, 0.2, 0.4};
  std::string ppl_path;             // human reference texts for perplexity ("" = skip)
  int64_t ppl_max_chars = 1000;     // reference texts cut to this many chars (IMDB 1000, Jigsaw 120)
  std::string ppl_label_filter;     // keep reference texts with this label ("" = all)
  int64_t ppl_batch_size = 4;
  bool plots = true;                // write PNG plots (python3-matplotlib)
  std::string prompt_prefix;        // eval only: text put before every prompt given to the model, not
                                    // scored by the reward (the paper's "prompted GPT-2" baseline)
  template <class V> void visit_fields(V&& v) {
    v("split", split, "test | tail");
    v("tail_threshold", tail_threshold, "tail = prompt score <= this (IMDB -2.5, Jigsaw +5)");
    v("tail_quantile", tail_quantile, "> 0: tail = worst q fraction of prompts instead");
    v("num_prompts", num_prompts, "0 = all test prompts (paper IMDB: 5000)");
    v("cvar_alphas", cvar_alphas, "CVaR levels reported");
    v("ppl_path", ppl_path, "human reference texts for perplexity; \"\" = skip");
    v("ppl_max_chars", ppl_max_chars, "cut reference texts to N chars (IMDB 1000, Jigsaw 120)");
    v("ppl_label_filter", ppl_label_filter, "reference texts with this label only; \"\" = all");
    v("ppl_batch_size", ppl_batch_size, "texts per perplexity batch");
    v("plots", plots, "write PNG plots (needs python3-matplotlib)");
    v("prompt_prefix", prompt_prefix, "eval only: instruction put before each prompt for the model (not scored)");
  }
};

struct LoggingConfig {
  std::string level = "info";   // trace | debug | info | warn | error | off
  bool progress = true;         // progress line with ETA when stderr is a terminal
  template <class V> void visit_fields(V&& v) {
    v("level", level, "trace | debug | info | warn | error | off");
    v("progress", progress, "progress line with ETA on a terminal");
  }
};

// `rarlhf run`: the experiment as stages, each a run of this binary with its own --set overrides
// (applied after the chain's model paths, so a stage may override them). Stage outputs go to
// run.out_dir/<stage>; a stage whose folder has a DONE marker is skipped.
struct PipelineConfig {
  std::vector<std::string> stages = {"sft", "rlhf", "ra_rlhf", "eval", "compare"};  // in order; subset of
                                   // pretrain | sft | rlhf | ra_rlhf | eval | compare
  std::vector<std::string> train_files;  // > 0 files: read with data.format, merged into
                                         // run.out_dir/data/train.jsonl = every stage's data.train_path
  std::vector<std::string> test_files;   // likewise -> run.out_dir/data/test.jsonl = data.test_path
  std::vector<std::string> pretrain;  // --set overrides of each stage ("key=JSON"; "{out_dir}" = run.out_dir)
  std::vector<std::string> sft;
  std::vector<std::string> rlhf;
  std::vector<std::string> ra_rlhf;
  std::vector<std::string> eval;
  std::vector<std::string> eval_splits = {"test", "tail"};  // eval.split values run for every model
  template <class V> void visit_fields(V&& v) {
    v("stages", stages, "stages run in order: pretrain | sft | rlhf | ra_rlhf | eval | compare");
    v("train_files", train_files, "files (data.format) merged into the stages' training texts; [] = data.train_path");
    v("test_files", test_files, "files (data.format) merged into the stages' test prompts; [] = data.test_path");
    v("pretrain", pretrain, "--set overrides of the pretrain stage (sft from scratch)");
    v("sft", sft, "--set overrides of the sft stage");
    v("rlhf", rlhf, "--set overrides of the rlhf stage (train, risk off)");
    v("ra_rlhf", ra_rlhf, "--set overrides of the ra_rlhf stage (train, risk on)");
    v("eval", eval, "--set overrides of every eval run");
    v("eval_splits", eval_splits, "eval.split values evaluated for every model");
  }
};

struct Config {
  // The tokenizer directory in use: model.tokenizer, else model.path.
  const std::string& tokenizer_dir() const { return model.tokenizer.empty() ? model.path : model.tokenizer; }

  RunConfig run;
  ModelConfig model;
  DataConfig data;
  SftConfig sft;
  PpoConfig ppo;
  RiskConfig risk;
  GenerateConfig generate;
  RewardConfig reward;
  EvalConfig eval;
  LoggingConfig logging;
  PipelineConfig pipeline;
  template <class V> void visit_sections(V&& v) {
    v("run", run);
    v("model", model);
    v("data", data);
    v("sft", sft);
    v("ppo", ppo);
    v("risk", risk);
    v("generate", generate);
    v("reward", reward);
    v("eval", eval);
    v("logging", logging);
    v("pipeline", pipeline);
  }
};

// Overlays `j` onto `cfg`. `origin` (a file name or "--set") prefixes error messages.
// Unknown keys -> ConfigError with the dotted path and a did-you-mean; wrong types -> ConfigError.
void apply_json(Config& cfg, const nlohmann::json& j, const std::string& origin);

// Loads a JSON config file (following "extends": "base.json", relative to the file) onto cfg.
void apply_file(Config& cfg, const std::string& path);

// Applies "a.b.c=VALUE"; VALUE is parsed as JSON, or taken as a string when it is not JSON.
void apply_set(Config& cfg, const std::string& assignment);

// Cross-field rules; throws ConfigError naming the field.
void validate(const Config& cfg);

// Defaults <- file (if non-empty) <- sets, then validate().
Config load_config(const std::string& file, const std::vector<std::string>& sets);

nlohmann::json to_json(const Config& cfg);

// Markdown reference of every field: key, type, default, meaning.
std::string config_reference_markdown();

}  // namespace rarlhf
