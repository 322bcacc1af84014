// Run configuration: one plain struct per concern, each field with its default. Torch-free.
// Field names are spelled exactly like their JSON keys; each struct lists its fields once in
// visit_fields(key, field, doc[, choices]), which drives JSON in/out, unknown-key checks, the
// choice checks of validate() and the docs; the doc string is the one description of a key.
// Layering: struct defaults <- --config file.json (may "extends" a base file) <- --set a.b=JSON.
// Settings come from the RA-RLHF paper (reference/ra-rlhf.md §1.3-1.7) unless said otherwise.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace rarlhf {

// The values of each key that takes one of a fixed set of names. A key's visit_fields() entry
// passes its kAll: validate() checks the value against it and the reference lists it, and the
// code that dispatches on the key compares with the named constants, so a value is added (or
// renamed) here and in its one dispatch site, nowhere else.
namespace choice {
struct Dtype {  // model.dtype
  static constexpr const char* kFloat32 = "float32";
  static constexpr const char* kBfloat16 = "bfloat16";
  static constexpr const char* kFloat16 = "float16";
  static inline const std::vector<std::string> kAll = {kFloat32, kBfloat16, kFloat16};
};
struct DataFormat {  // data.format
  static constexpr const char* kJsonl = "jsonl";
  static constexpr const char* kCsv = "csv";
  static constexpr const char* kLines = "lines";
  static constexpr const char* kImdbDir = "imdb_dir";
  static constexpr const char* kJigsawCsv = "jigsaw_csv";
  static constexpr const char* kRtpJsonl = "rtp_jsonl";
  static constexpr const char* kUciJson = "uci_json";
  static inline const std::vector<std::string> kAll = {kJsonl,     kCsv,      kLines,  kImdbDir,
                                                       kJigsawCsv, kRtpJsonl, kUciJson};
};
struct OnError {  // data.on_error
  static constexpr const char* kSkip = "skip";
  static constexpr const char* kFail = "fail";
  static inline const std::vector<std::string> kAll = {kSkip, kFail};
};
struct KlPenalty {  // ppo.kl_penalty
  static constexpr const char* kK1 = "k1";
  static constexpr const char* kK3 = "k3";
  static inline const std::vector<std::string> kAll = {kK1, kK3};
};
struct RiskSchedule {  // risk.schedule
  static constexpr const char* kPaper = "paper";
  static constexpr const char* kLegacy = "legacy";
  static inline const std::vector<std::string> kAll = {kPaper, kLegacy};
};
struct RiskSelection {  // risk.selection
  static constexpr const char* kLowest = "lowest";
  static constexpr const char* kRandom = "random";
  static inline const std::vector<std::string> kAll = {kLowest, kRandom};
};
struct RewardType {  // reward.type
  static constexpr const char* kVader = "vader";
  static constexpr const char* kHfClassifier = "hf_classifier";
  static inline const std::vector<std::string> kAll = {kVader, kHfClassifier};
};
struct RewardInput {  // reward.input
  static constexpr const char* kPromptResponse = "prompt+response";
  static constexpr const char* kResponse = "response";
  static inline const std::vector<std::string> kAll = {kPromptResponse, kResponse};
};
struct LrSchedule {  // sft.lr_schedule
  static constexpr const char* kLinear = "linear";
  static constexpr const char* kConstant = "constant";
  static inline const std::vector<std::string> kAll = {kLinear, kConstant};
};
struct LineBreaks {  // data.imdb_line_breaks
  static constexpr const char* kRaw = "raw";
  static constexpr const char* kNewline = "newline";
  static inline const std::vector<std::string> kAll = {kRaw, kNewline};
};
struct EvalSplit {  // eval.split
  static constexpr const char* kTest = "test";
  static constexpr const char* kTail = "tail";
  static inline const std::vector<std::string> kAll = {kTest, kTail};
};
struct LogLevel {  // logging.level (spdlog's level names)
  static inline const std::vector<std::string> kAll = {"trace", "debug", "info", "warn", "error", "off"};
};
}  // namespace choice

// The fields below carry their defaults only: what a key means is its visit_fields() doc, the one
// description (it is what `rarlhf config --doc` and the README print).
struct RunConfig {
  std::string name = "run";
  std::string out_dir = "runs/run";
  int64_t seed = 42;
  std::string device = "auto";
  int64_t threads = 0;
  int64_t save_every = 0;
  template <class V> void visit_fields(V&& v) {
    v("name", name, "run name, used in logs and plots");
    v("out_dir", out_dir, "output directory (config.json, metrics.jsonl, checkpoints, eval)");
    v("seed", seed, "seed for torch, sampling and data shuffling");
    v("device", device, "auto | cpu | cuda | cuda:N (auto = cuda when available)");
    v("threads", threads, "CPU threads for torch and OpenBLAS; 0 = all cores");
    v("save_every", save_every, "checkpoint every N iterations (train) or optimizer steps (sft); 0 = only at the end");
  }
};

struct ModelConfig {
  std::string path;
  std::string ref_path;
  std::string tokenizer;
  std::string dtype = choice::Dtype::kFloat32;
  bool gradient_checkpointing = false;
  template <class V> void visit_fields(V&& v) {
    v("path", path, "Hugging Face causal-LM directory (config.json, model.safetensors, tokenizer): gpt2, gptj, gpt_neox, llama, mistral, qwen2");
    v("ref_path", ref_path, "reference policy for the KL penalty; \"\" = frozen copy of path");
    v("tokenizer", tokenizer, "tokenizer.json, vocab.json+merges.txt or tokenizer.model directory; \"\" = model.path");
    v("dtype", dtype, "weights' dtype; the logprob path stays fp32; bfloat16 training steps fp32 master weights (LoRA: fp32 adapters on a bf16 base); float16 is for generate/eval/score on a GPU (training it needs loss scaling: refused)", choice::Dtype::kAll);
    v("gradient_checkpointing", gradient_checkpointing, "recompute each block's activations during backward instead of keeping them (sft, train: less memory, one more forward; same gradients)");
  }
};

// LoRA adapters (PEFT names and format) on the policy; r = 0 trains every weight. With LoRA the base
// stays frozen, sft/train write policy/ as a PEFT adapter (adapter_config.json +
// adapter_model.safetensors naming the base) and the KL reference is the base with the adapters off.
struct LoraConfig {
  int64_t r = 0;
  double alpha = 8;
  double dropout = 0;
  std::vector<std::string> target_modules;
  bool use_rslora = false;
  template <class V> void visit_fields(V&& v) {
    v("r", r, "LoRA rank; 0 = full fine-tuning (PEFT's r)");
    v("alpha", alpha, "scaling numerator: the update is B A x * alpha / r (PEFT's lora_alpha)");
    v("dropout", dropout, "dropout on the adapters' input in training mode (PEFT's lora_dropout; train needs ppo.dropout=true)");
    v("target_modules", target_modules, "PEFT module names (q_proj, v_proj, c_attn, query_key_value, ...) or [\"all-linear\"]; [] = PEFT's default for the family");
    v("use_rslora", use_rslora, "rank-stabilised scaling alpha / sqrt(r) (PEFT's use_rslora)");
  }
};

struct DataConfig {
  std::string format = choice::DataFormat::kJsonl;
  std::string train_path;
  std::string test_path;
  std::string text_field = "text";
  std::string label_field = "label";
  std::string score_field;
  int64_t min_chars = 0;
  int64_t prompt_tokens = 64;
  int64_t max_examples = 0;
  std::string on_error = choice::OnError::kSkip;
  std::string imdb_line_breaks = choice::LineBreaks::kRaw;
  // Class balance of the prompt sets (paper §1.5, Jigsaw and RTP: train 70/30 non-toxic/toxic,
  // test 50/50).
  std::string resample_label;
  double train_resample_share = 0;
  double test_resample_share = 0;
  template <class V> void visit_fields(V&& v) {
    v("format", format, "how data.train_path and data.test_path are read", choice::DataFormat::kAll);
    v("train_path", train_path, "training prompts / SFT texts");
    v("test_path", test_path, "evaluation prompts");
    v("text_field", text_field, "JSONL/CSV field holding the text");
    v("label_field", label_field, "JSONL/CSV field holding the label (\"\" = none)");
    v("score_field", score_field, "JSONL/CSV field with a precomputed prompt score (\"\" = none; imdb-rarlhf CSVs: score); jigsaw_csv reads \"reward\"");
    v("min_chars", min_chars, "keep texts longer than this many characters (Unicode code points, as Python's len; paper IMDB: 200)");
    v("prompt_tokens", prompt_tokens, "prompt = first N tokens (IMDB 64, Jigsaw 8, RTP 32)");
    v("max_examples", max_examples, "cap on examples read; 0 = all");
    v("on_error", on_error, "malformed rows: skip (counted, reported with file:line) or fail", choice::OnError::kAll);
    v("imdb_line_breaks", imdb_line_breaks, "imdb_dir: raw = keep the reviews' <br /> tags (HF imdb, the paper tokenizes and scores them); newline = <br /> -> \\n", choice::LineBreaks::kAll);
    v("resample_label", resample_label, "label whose share the resampling fixes (\"\" = off; paper Jigsaw/RTP: toxic)");
    v("train_resample_share", train_resample_share, "share of RL train prompts with resample_label, resampled without replacement to the largest such set (paper: 0.3); 0 = as read");
    v("test_resample_share", test_resample_share, "share of eval prompts with resample_label, resampled likewise (paper: 0.5); 0 = as read");
  }
};

struct SftConfig {
  double learning_rate = 1e-5;
  double weight_decay = 0.0;
  int64_t epochs = 1;
  int64_t batch_size = 8;
  int64_t grad_accum = 1;
  int64_t seq_length = 64;
  bool packing = false;
  std::string lr_schedule = choice::LrSchedule::kLinear;
  int64_t warmup_steps = 0;
  double max_grad_norm = 1.0;
  double dropout = -1.0;
  int64_t eval_every = 0;
  double eval_fraction = 0.05;
  std::string label_filter;
  bool from_scratch = false;
  template <class V> void visit_fields(V&& v) {
    v("learning_rate", learning_rate, "AdamW learning rate (paper: 1e-5)");
    v("weight_decay", weight_decay, "AdamW weight decay");
    v("epochs", epochs, "passes over the training texts");
    v("batch_size", batch_size, "sequences per micro-batch");
    v("grad_accum", grad_accum, "micro-batches per optimizer step (paper: 64 x 16)");
    v("seq_length", seq_length, "tokens per training sequence (paper: 64)");
    v("packing", packing, "false = each text truncated to its first seq_length tokens (the paper's SFTTrainer, packing=False); true = texts joined with EOS and cut into seq_length windows");
    v("lr_schedule", lr_schedule, "linear = decay to 0 over the run's optimizer steps after warmup (HF Trainer's default, the paper's SFT); constant", choice::LrSchedule::kAll);
    v("warmup_steps", warmup_steps, "optimizer steps of linear warmup from 0 (HF Trainer's default: 0)");
    v("max_grad_norm", max_grad_norm, "clip the global gradient norm to this; 0 = off (HF Trainer's default: 1.0)");
    v("dropout", dropout, "dropout while training: -1 = the checkpoint's config.json (GPT-2: attn_pdrop/embd_pdrop/resid_pdrop, HF default 0.1, as the paper's SFT), 0 = off, p = p everywhere");
    v("eval_every", eval_every, "held-out loss every N steps; 0 = end of each epoch");
    v("eval_fraction", eval_fraction, "fraction of texts held out for the eval loss");
    v("label_filter", label_filter, "train only on texts with this label; \"\" = all (paper: positive / non-toxic)");
    v("from_scratch", from_scratch, "random init from model.path/config.json instead of its weights (pre-training)");
  }
};

struct PpoConfig {
  int64_t batch_size = 128;
  int64_t mini_batch_size = 128;
  int64_t ppo_epochs = 4;
  int64_t total_iterations = 0;
  double learning_rate = 1.41e-5;
  double init_kl_coef = 0.2;
  bool adaptive_kl = true;
  double kl_target = 6.0;
  double kl_horizon = 10000;
  std::string kl_penalty = choice::KlPenalty::kK1;
  double gamma = 1.0;
  double lam = 0.95;
  double clip_range = 0.2;
  double clip_range_value = 0.2;
  double vf_coef = 0.1;
  double ratio_threshold = 10.0;
  double max_grad_norm = 0.0;
  bool dropout = false;
  bool whiten_advantages = true;
  bool custom_kernels = true;
  bool from_scratch = false;
  template <class V> void visit_fields(V&& v) {
    v("batch_size", batch_size, "episodes per iteration B (paper: 128)");
    v("mini_batch_size", mini_batch_size, "episodes per gradient step; divides batch_size");
    v("ppo_epochs", ppo_epochs, "optimisation passes over each batch (paper: 4)");
    v("total_iterations", total_iterations, "M; 0 = one pass over the prompts (paper)");
    v("learning_rate", learning_rate, "Adam learning rate, constant (paper: 1.41e-5)");
    v("init_kl_coef", init_kl_coef, "initial KL coefficient beta (paper: 0.2)");
    v("adaptive_kl", adaptive_kl, "adaptive KL controller (Ziegler et al.); false = fixed beta");
    v("kl_target", kl_target, "adaptive KL target (paper: 6)");
    v("kl_horizon", kl_horizon, "adaptive KL horizon (paper: 10000)");
    v("kl_penalty", kl_penalty, "per-token KL estimate in the reward: k1 = log ratio, k3 = exp(-d) - 1 + d (>= 0)", choice::KlPenalty::kAll);
    v("gamma", gamma, "discount (paper: 1)");
    v("lam", lam, "GAE lambda (paper: 0.95)");
    v("clip_range", clip_range, "policy ratio clip (paper: 0.2)");
    v("clip_range_value", clip_range_value, "value clip (paper: 0.2)");
    v("vf_coef", vf_coef, "value loss weight (paper: 0.1)");
    v("ratio_threshold", ratio_threshold, "a minibatch whose mean ratio exceeds this gets a zero loss, Adam still stepping (TRL v0.7); 0 = off");
    v("max_grad_norm", max_grad_norm, "gradient clipping norm; 0 = off (paper)");
    v("dropout", dropout, "false = no dropout in rollouts and updates (their log-probs agree; our choice); true = TRL v0.7's train-mode passes: the checkpoint's dropout in the policy (gpt2) and 0.1 before the value head, the reference in eval mode");
    v("whiten_advantages", whiten_advantages, "whiten advantages over kept tokens");
    v("custom_kernels", custom_kernels, "fused token-logprob / GAE / whiten kernels; false = plain LibTorch ops (A/B runs)");
    v("from_scratch", from_scratch, "random-init policy (and reference) from model.path/config.json; smoke runs, toy rewards");
  }
};

struct RiskConfig {
  bool enabled = false;
  double alpha = 0.4;
  int64_t n = 30;
  double rho = 0.95;
  std::string schedule = choice::RiskSchedule::kPaper;
  std::string selection = choice::RiskSelection::kLowest;
  template <class V> void visit_fields(V&& v) {
    v("enabled", enabled, "false = risk-neutral PPO (RLHF); true = RA-RLHF");
    v("alpha", alpha, "final fraction of each batch kept, lowest returns (IMDB 0.4, Jigsaw 0.2)");
    v("n", n, "warm start: iterations m <= n use the full batch (paper: 30)");
    v("rho", rho, "fraction of M at which the kept fraction reaches alpha (paper: 0.95)");
    v("schedule", schedule, "kept-fraction schedule: paper = Eq. 8-10, legacy = the reference code's old rule", choice::RiskSchedule::kAll);
    v("selection", selection, "which k(m) episodes are kept: lowest = lowest returns (RA-RLHF), random = drawn at random (ablation control)", choice::RiskSelection::kAll);
  }
};

struct GenerateConfig {
  int64_t max_new_tokens = 48;
  int64_t min_new_tokens = 48;
  double temperature = 1.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  bool greedy = false;
  int64_t batch_size = 32;
  // Not a setting: set by the trainer when the KL reference has a smaller vocabulary than the policy
  // (GPT-J's 50,400 rows against GPT-2's 50,257): ids >= this are never sampled. 0 = no limit.
  int64_t vocab_limit = 0;
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
  std::string type = choice::RewardType::kVader;
  std::string path;
  std::string lexicon;
  int64_t label_index = 1;
  double sign = 1.0;
  double scale = 1.0;
  int64_t batch_size = 32;
  int64_t max_length = 512;
  std::string input = choice::RewardInput::kPromptResponse;
  template <class V> void visit_fields(V&& v) {
    v("type", type, "reward model", choice::RewardType::kAll);
    v("path", path, "hf_classifier: Hugging Face classifier directory (config.json, model.safetensors, tokenizer files)");
    v("lexicon", lexicon, "vader: path to vader_lexicon.txt");
    v("label_index", label_index, "logit used as reward (distilbert-imdb 1, toxic-bert 0)");
    v("sign", sign, "reward = sign * scale * score (toxic-bert: -1)");
    v("scale", scale, "reward multiplier (e.g. VADER compound x 3 to match a logit's range)");
    v("batch_size", batch_size, "texts per scoring batch");
    v("max_length", max_length, "classifier truncation, tokens");
    v("input", input, "text the reward model scores", choice::RewardInput::kAll);
  }
};

struct EvalConfig {
  std::string split = choice::EvalSplit::kTest;
  double tail_threshold = -2.5;
  double tail_quantile = 0.0;
  int64_t num_prompts = 0;
  int64_t samples_per_prompt = 1;
  std::vector<double> cvar_alphas = {0.05, 0.1, 0.2, 0.4};
  std::string ppl_path;
  int64_t ppl_max_chars = 1000;
  std::string ppl_label_filter;
  int64_t ppl_batch_size = 4;
  bool plots = true;
  std::string prompt_prefix;
  template <class V> void visit_fields(V&& v) {
    v("split", split, "prompts evaluated: test = all test prompts, tail = those of eval.tail_threshold / tail_quantile", choice::EvalSplit::kAll);
    v("tail_threshold", tail_threshold, "tail = prompt score <= this (IMDB -2.5, Jigsaw +5)");
    v("tail_quantile", tail_quantile, "> 0: tail = worst q fraction of prompts by prompt score instead");
    v("num_prompts", num_prompts, "0 = all test prompts (paper IMDB: 5000)");
    v("samples_per_prompt", samples_per_prompt, "generations per test prompt; reward, tail and CVaR are over all of them (a tail_quantile over prompts, each with all its generations), Dist-n pools each prompt's (DExperts/Quark: 25)");
    v("cvar_alphas", cvar_alphas, "CVaR levels reported");
    v("ppl_path", ppl_path, "human reference texts for perplexity; \"\" = skip");
    v("ppl_max_chars", ppl_max_chars, "cut reference texts to N chars (IMDB 1000, Jigsaw 120)");
    v("ppl_label_filter", ppl_label_filter, "reference texts with this label only; \"\" = all");
    v("ppl_batch_size", ppl_batch_size, "texts per perplexity batch");
    v("plots", plots, "write PNG plots (needs python3-matplotlib)");
    v("prompt_prefix", prompt_prefix, "eval only: instruction put before each prompt for the model, not scored by the reward (the paper's prompted-GPT-2 baseline)");
  }
};

struct LoggingConfig {
  std::string level = "info";
  bool progress = true;
  bool tensorboard = true;
  bool curves = true;
  template <class V> void visit_fields(V&& v) {
    v("level", level, "log level", choice::LogLevel::kAll);
    v("progress", progress, "progress line with ETA when stderr is a terminal");
    v("tensorboard", tensorboard, "train and sft also write metrics.jsonl's numbers as a TensorBoard event file in run.out_dir (tensorboard --logdir runs/)");
    v("curves", curves, "train and sft draw run.out_dir/curves.png from metrics.jsonl when they finish (needs python3-matplotlib; rarlhf plot for several runs)");
  }
};

// The stages `rarlhf run` knows, in pipeline order. One constant for validation and for the
// pipeline's stage table (src/pipeline/stages.cpp; tests/pipeline checks that the two agree).
inline const std::vector<std::string> kPipelineStages = {"pretrain", "sft", "rlhf", "ra_rlhf", "eval", "compare"};

// `rarlhf run`: the experiment as stages, each a run of this binary with its own --set overrides
// (applied after the chain's model paths, so a stage may override them). Stage outputs go to
// run.out_dir/<stage>; a stage whose folder has a DONE marker is skipped.
struct PipelineConfig {
  std::vector<std::string> stages = {"sft", "rlhf", "ra_rlhf", "eval", "compare"};  // in order; each one of
                                                                                   // kPipelineStages
  std::vector<std::string> train_files;  // > 0 files: read with data.format, merged into
                                         // run.out_dir/data/train.jsonl = every stage's data.train_path
  std::vector<std::string> test_files;   // likewise -> run.out_dir/data/test.jsonl = data.test_path
  // --set overrides ("key=JSON"; "{out_dir}" = run.out_dir) keyed by stage: JSON key pipeline.<stage>.
  // compare has no key of its own: its `eval --compare` runs take the eval stage's.
  std::map<std::string, std::vector<std::string>> overrides;
  std::vector<std::string> eval_splits = {"test", "tail"};  // eval.split values run for every model

  // The overrides of `stage` as written (no "{out_dir}" substitution); [] when it has none.
  const std::vector<std::string>& overrides_of(const std::string& stage) const {
    static const std::vector<std::string> kNone;
    auto it = overrides.find(stage);
    return it == overrides.end() ? kNone : it->second;
  }
  template <class V> void visit_fields(V&& v) {
    v("stages", stages, "stages run, in this order", kPipelineStages);
    v("train_files", train_files, "files (data.format) merged into the stages' training texts; [] = data.train_path");
    v("test_files", test_files, "files (data.format) merged into the stages' test prompts; [] = data.test_path");
    v("pretrain", overrides["pretrain"], "--set overrides of the pretrain stage (sft from scratch)");
    v("sft", overrides["sft"], "--set overrides of the sft stage");
    v("rlhf", overrides["rlhf"], "--set overrides of the rlhf stage (train, risk off)");
    v("ra_rlhf", overrides["ra_rlhf"], "--set overrides of the ra_rlhf stage (train, risk on)");
    v("eval", overrides["eval"], "--set overrides of every eval run (the compare stage's too)");
    v("eval_splits", eval_splits, "eval.split values evaluated for every model", choice::EvalSplit::kAll);
  }
};

struct Config {
  // The tokenizer directory in use: model.tokenizer, else model.path.
  const std::string& tokenizer_dir() const { return model.tokenizer.empty() ? model.path : model.tokenizer; }

  RunConfig run;
  ModelConfig model;
  LoraConfig lora;
  DataConfig data;
  SftConfig sft;
  PpoConfig ppo;
  RiskConfig risk;
  GenerateConfig generate;
  RewardConfig reward;
  EvalConfig eval;
  LoggingConfig logging;
  PipelineConfig pipeline;

  // Where each key's value came from, by dotted key ("ppo.batch_size" -> "configs/imdb.json" or
  // "--set"), so that validate() can name it; a key left at its default has no entry. Not a
  // setting: visit_sections() and to_json() leave it out.
  std::map<std::string, std::string> sources;

  template <class V> void visit_sections(V&& v) {
    v("run", run);
    v("model", model);
    v("lora", lora);
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

// Overlays `j` onto `cfg`. `origin` (a file name or "--set") prefixes error messages and is
// recorded in cfg.sources for every key `j` sets.
// Unknown keys -> ConfigError with the dotted path and a did-you-mean; wrong types -> ConfigError.
void apply_json(Config& cfg, const nlohmann::json& j, const std::string& origin);

// Loads a JSON config file (following "extends": "base.json", relative to the file) onto cfg.
void apply_file(Config& cfg, const std::string& path);

// Applies "a.b.c=VALUE"; VALUE is parsed as JSON, or taken as a string when it is not JSON.
void apply_set(Config& cfg, const std::string& assignment);

// Every key's rules (its choices, ranges, cross-field rules); throws ConfigError
// "<origin>: <key>: <what>; <what to do>", origin from cfg.sources (none for a default value).
void validate(const Config& cfg);

// Defaults <- file (if non-empty) <- sets, then validate().
Config load_config(const std::string& file, const std::vector<std::string>& sets);

nlohmann::json to_json(const Config& cfg);

// Markdown reference of every field: key, type, default, meaning.
std::string config_reference_markdown();

}  // namespace rarlhf
