// `rarlhf sft --config FILE [--set k=v]... [--resume]`: causal-LM fine-tuning of the policy on
// (label-filtered) texts — the paper's SFT stage — or pre-training from a config with
// sft.from_scratch. Hands over to SftTrainer::train() (src/train/sft_trainer.cpp); data-parallel
// under torchrun-style variables or srun (include/rarlhf/dist/communicator.h).
#include <torch/torch.h>

#include "cli.h"
#include "rarlhf/eval/report.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/random.h"
#include "rarlhf/common/signals.h"
#include "rarlhf/data/dataset.h"
#include "rarlhf/data/prompts.h"
#include "rarlhf/dist/communicator.h"
#include "rarlhf/text/tokenizer.h"
#include "rarlhf/train/sft_trainer.h"

namespace rarlhf::cli {

namespace {

Policy make_policy(const Config& cfg, const c10::Device& device) {
  if (!cfg.sft.from_scratch) {
    Policy p = load_policy(cfg.model.path, cfg.model.dtype, device);
    apply_lora_config(p, cfg);
    return p;
  }
  torch::manual_seed(cfg.run.seed);
  return init_policy(cfg.model.path, cfg.model.dtype, device);
}

}  // namespace

SftWindows sft_windows(const Config& cfg, const Tokenizer& tok) {
  ReadReport report;
  auto texts = sft_texts(cfg, &report);
  if (texts.size() < 2) {
    throw ConfigError("data.train_path: " + std::to_string(texts.size()) + " texts after sft.label_filter='" +
                      cfg.sft.label_filter + "'; need at least 2");
  }
  // Hold out eval_fraction of the texts (a seeded shuffle) for the eval loss.
  std::vector<size_t> order(texts.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  XorShift64Star rng{static_cast<uint64_t>(cfg.run.seed) * 0x9E3779B97F4A7C15ULL + 7};
  shuffle_in_place(order, rng);
  const size_t n_eval =
      cfg.sft.eval_fraction > 0 ? std::max<size_t>(1, static_cast<size_t>(cfg.sft.eval_fraction * texts.size())) : 0;
  std::vector<std::vector<int64_t>> train_docs, eval_docs;
  for (size_t i = 0; i < order.size(); ++i) {
    auto ids = tok.encode(texts[order[i]].text, /*add_special_tokens=*/true);
    (i < n_eval ? eval_docs : train_docs).push_back(std::move(ids));
  }
  auto cut = [&](const std::vector<std::vector<int64_t>>& docs) {
    return cfg.sft.packing ? pack_sequences(docs, tok.eos_id(), cfg.sft.seq_length)
                           : truncate_sequences(docs, cfg.sft.seq_length);
  };
  return {cut(train_docs), cut(eval_docs), static_cast<int64_t>(texts.size()), static_cast<int64_t>(n_eval)};
}

void add_sft_command(CLI::App& app) {
  auto* sub = app.add_subcommand("sft", "Supervised fine-tuning (causal LM) of the policy on texts");
  auto args = std::make_shared<ConfigArgs>();
  auto resume = std::make_shared<bool>(false);
  add_config_options(sub, *args);
  sub->add_flag("--resume", *resume, "continue from run.out_dir/checkpoint if it exists");
  sub->callback([args, resume] {
    install_stop_signal_handlers();  // first: a stop while loading must still end in a checkpoint, not a kill
    Config cfg = load_and_init(*args);
    if (cfg.model.path.empty()) throw ConfigError("model.path: empty; set it to a Hugging Face causal-LM directory");
    if (cfg.data.train_path.empty()) throw ConfigError("data.train_path: empty; set it to the SFT texts");
    dist::RankSetup rank = dist::setup_rank(cfg.logging.level, cfg.run.threads, resolve_device(cfg.run.device));
    const DirLock run_dir_lock = claim_run_dir(cfg.run.out_dir, "rarlhf sft", rank.comm->is_main());
    c10::Device device = rank.device;
    auto tok_ptr = load_tokenizer(cfg.tokenizer_dir());
    const Tokenizer& tok = *tok_ptr;
    SftWindows windows = sft_windows(cfg, tok);
    RARLHF_LOG_INFO("sft: {} texts ({} held out) -> {} train / {} eval {}", windows.texts, windows.held_out_texts,
                    windows.train.size(), windows.eval.size(), cfg.sft.packing ? "packed windows" : "truncated sequences");
    auto train_w = std::move(windows.train), eval_w = std::move(windows.eval);
    if (rank.comm->is_main()) write_run_info(cfg, cfg.run.out_dir);
    SftTrainer trainer(cfg, std::move(train_w), std::move(eval_w), make_policy(cfg, device), device,
                       cfg.tokenizer_dir());
    trainer.set_communicator(rank.comm);
    if (*resume && !trainer.resume()) RARLHF_LOG_INFO("sft: no checkpoint in {}; starting afresh", cfg.run.out_dir);
    bool finished = trainer.train();
    RARLHF_LOG_INFO("sft: {} ({}/{} steps) -> {}/policy", finished ? "done" : "stopped", trainer.step(),
                    trainer.total_steps(), cfg.run.out_dir);
    if (finished && cfg.logging.curves && rank.comm->is_main()) {
      if (plot_training_curves({cfg.run.out_dir}, cfg.run.out_dir + "/curves.png"))
        RARLHF_LOG_INFO("sft: training curves -> {}/curves.png", cfg.run.out_dir);
    }
  });
}

}  // namespace rarlhf::cli
