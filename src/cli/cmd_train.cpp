// `rarlhf train --config FILE [--set k=v]... [--resume]`: PPO (risk.enabled=false, RLHF) or
// RA-RLHF (risk.enabled=true). Loads prompts, policy, reference and reward, then hands over to
// PPOTrainer::train() (src/train/ppo_trainer.cpp), whose numbered stages are the algorithm.
// Under torchrun-style variables or srun it runs data-parallel (include/rarlhf/dist/communicator.h).
#include <torch/cuda.h>
#include <torch/utils.h>

#include "cli.h"
#include "rarlhf/eval/report.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/signals.h"
#include "rarlhf/data/dataset.h"
#include "rarlhf/data/prompts.h"
#include "rarlhf/dist/communicator.h"
#include "rarlhf/reward/reward.h"
#include "rarlhf/model/lora.h"
#include "rarlhf/train/ppo_trainer.h"

namespace rarlhf::cli {

void add_train_command(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "PPO (RLHF) or RA-RLHF training of a policy (GPT-2, GPT-J, GPT-NeoX, Llama, ...)");
  auto args = std::make_shared<ConfigArgs>();
  auto resume = std::make_shared<bool>(false);
  add_config_options(sub, *args);
  sub->add_flag("--resume", *resume, "continue from run.out_dir/checkpoint if it exists");
  sub->callback([args, resume] {
    install_stop_signal_handlers();  // first: a stop while loading must still end in a checkpoint, not a kill
    Config cfg = load_and_init(*args);
    if (cfg.model.path.empty()) throw ConfigError("model.path: empty; set it to a Hugging Face causal-LM directory");
    dist::RankSetup rank = dist::setup_rank(cfg.logging.level, cfg.run.threads, resolve_device(cfg.run.device));
    const DirLock run_dir_lock = claim_run_dir(cfg.run.out_dir, "rarlhf train", rank.comm->is_main());
    c10::Device device = rank.device;
    auto tok_ptr = load_tokenizer(cfg.tokenizer_dir());
    const Tokenizer& tok = *tok_ptr;
    if (cfg.data.train_path.empty()) throw ConfigError("data.train_path: empty; set it to the prompt file");
    ReadReport report;
    auto prompts = load_prompts(cfg.data, cfg.data.train_path, tok, cfg.data.train_resample_share,
                                "data.train_resample_share", static_cast<uint64_t>(cfg.run.seed), &report);
    RARLHF_LOG_INFO("{}: {} prompts ({} rows read, {} filtered, {} malformed)", cfg.data.train_path, prompts.size(),
                    report.rows, report.filtered, report.malformed);
    // The reference is the initial policy unless model.ref_path names another one (paper §1). A LoRA
    // policy is its own reference: the same base weights, run with the adapters it started from.
    Policy policy;
    CausalLm ref{nullptr};
    std::shared_ptr<LoraAdaptersImpl> ref_adapters;
    if (cfg.ppo.from_scratch) {
      torch::manual_seed(cfg.run.seed);
      policy = init_policy(cfg.model.path, cfg.model.dtype, device);
      ref = cfg.model.ref_path.empty() ? clone_lm(policy.lm) : load_policy(cfg.model.ref_path, cfg.model.dtype, device).lm;
    } else {
      policy = load_policy(cfg.model.path, cfg.model.dtype, device);
      const bool loaded_adapters = policy.lm->lora() != nullptr;
      if (cfg.model.ref_path.empty() && (loaded_adapters || cfg.lora.r > 0)) {
        if (loaded_adapters) ref_adapters = policy.lm->lora()->frozen_copy();
      } else {
        const std::string ref_dir = cfg.model.ref_path.empty() ? cfg.model.path : cfg.model.ref_path;
        ref = load_policy(ref_dir, cfg.model.dtype, device).lm;
      }
      apply_lora_config(policy, cfg);
    }
    auto reward = make_reward(cfg.reward, device);
    if (rank.comm->is_main()) write_run_info(cfg, cfg.run.out_dir);
    PPOTrainer trainer(cfg, std::move(prompts), std::move(policy), std::move(ref), std::move(reward),
                       tok_ptr, device);
    trainer.set_communicator(rank.comm);
    trainer.set_reference_adapters(ref_adapters);
    if (*resume && !trainer.resume()) RARLHF_LOG_INFO("train: no checkpoint in {}; starting afresh", cfg.run.out_dir);
    bool finished = trainer.train();
    RARLHF_LOG_INFO("train: {} ({}/{} iterations) -> {}", finished ? "done" : "stopped", trainer.iteration(),
                    trainer.total_iterations(), cfg.run.out_dir);
    if (finished && cfg.logging.curves && rank.comm->is_main()) {
      if (plot_training_curves({cfg.run.out_dir}, cfg.run.out_dir + "/curves.png"))
        RARLHF_LOG_INFO("train: training curves -> {}/curves.png", cfg.run.out_dir);
    }
  });
}

}  // namespace rarlhf::cli
