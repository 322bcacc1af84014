// `rarlhf train --config FILE [--set k=v]... [--resume]`: PPO (risk.enabled=false, RLHF) or
// RA-RLHF (risk.enabled=true). Loads prompts, policy, reference and reward, then hands over to
// PPOTrainer::train() (src/train/ppo_trainer.cpp), whose numbered stages are the algorithm.
// Under torchrun-style variables or srun it runs data-parallel (include/rarlhf/dist/communicator.h).
#include <torch/cuda.h>
#include <torch/utils.h>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/log.h"
#include "rarlhf/data/dataset.h"
#include "rarlhf/data/prompts.h"
#include "rarlhf/dist/communicator.h"
#include "rarlhf/reward/reward.h"
#include "rarlhf/common/signals.h"
#include "rarlhf/train/ppo_trainer.h"

namespace rarlhf::cli {

std::vector<TrainPrompt> load_train_prompts(const Config& cfg, const Tokenizer& tok,
                                            const std::string& path) {
  if (path.empty()) throw ConfigError("data.train_path: empty; set it to the prompt file");
  ReadReport report;
  auto examples = read_texts(cfg.data, path, &report);
  if (report.malformed > 0) {
    RARLHF_LOG_WARN("{}: skipped {} malformed rows (first: {})", path, report.malformed,
                    report.problems.empty() ? "" : report.problems.front());
  }
  if (cfg.data.train_resample_share > 0) {
    const size_t before = examples.size();
    examples = resample_prompt_set(examples, cfg.data, cfg.data.train_resample_share, "data.train_resample_share",
                                   path, static_cast<uint64_t>(cfg.run.seed));
    RARLHF_LOG_INFO("{}: resampled {} texts to {} with {:.0f}% '{}'", path, before, examples.size(),
                    100 * cfg.data.train_resample_share, cfg.data.resample_label);
  }
  std::vector<TrainPrompt> prompts;
  // Paper §1.6: the query text is the decode of the prompt ids.
  for (auto& p : build_prompts(examples, tok, cfg.data.prompt_tokens)) prompts.push_back({std::move(p.text), std::move(p.ids)});
  RARLHF_LOG_INFO("{}: {} prompts ({} rows read, {} filtered)", path, prompts.size(), report.rows,
                  report.filtered);
  return prompts;
}

void add_train_command(CLI::App& app) {
  auto* sub = app.add_subcommand("train", "PPO (RLHF) or RA-RLHF training of a policy (GPT-2, GPT-J, GPT-NeoX, Llama, ...)");
  auto args = std::make_shared<ConfigArgs>();
  auto resume = std::make_shared<bool>(false);
  add_config_options(sub, *args);
  sub->add_flag("--resume", *resume, "continue from run.out_dir/checkpoint if it exists");
  sub->callback([args, resume] {
    Config cfg = load_and_init(*args);
    if (cfg.model.path.empty()) throw ConfigError("model.path: empty; set it to a Hugging Face causal-LM directory");
    dist::RankSetup rank = dist::setup_rank(cfg.logging.level, cfg.run.threads, resolve_device(cfg.run.device));
    c10::Device device = rank.device;
    auto tok_ptr = load_tokenizer(cfg.tokenizer_dir());
    const Tokenizer& tok = *tok_ptr;
    auto prompts = load_train_prompts(cfg, tok, cfg.data.train_path);
    // The reference is the initial policy unless model.ref_path names another one (paper §1).
    Policy policy;
    CausalLm ref{nullptr};
    if (cfg.ppo.from_scratch) {
      torch::manual_seed(cfg.run.seed);
      policy = init_policy(cfg.model.path, cfg.model.dtype, device);
      ref = cfg.model.ref_path.empty() ? clone_lm(policy.lm) : load_policy(cfg.model.ref_path, cfg.model.dtype, device).lm;
    } else {
      policy = load_policy(cfg.model.path, cfg.model.dtype, device);
      const std::string ref_dir = cfg.model.ref_path.empty() ? cfg.model.path : cfg.model.ref_path;
      ref = load_policy(ref_dir, cfg.model.dtype, device).lm;
    }
    auto reward = make_reward(cfg.reward, device);
    if (rank.comm->is_main()) write_run_info(cfg, cfg.run.out_dir);
    PPOTrainer trainer(cfg, std::move(prompts), std::move(policy), std::move(ref), std::move(reward),
                       tok_ptr, device);
    trainer.set_communicator(rank.comm);
    if (*resume && !trainer.resume()) RARLHF_LOG_INFO("train: no checkpoint in {}; starting afresh", cfg.run.out_dir);
    install_stop_signal_handlers();
    bool finished = trainer.train();
    RARLHF_LOG_INFO("train: {} ({}/{} iterations) -> {}", finished ? "done" : "stopped", trainer.iteration(),
                    trainer.total_iterations(), cfg.run.out_dir);
  });
}

}  // namespace rarlhf::cli
