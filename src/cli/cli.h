// Shared pieces of the subcommands: the config options every command takes, and the run
// set-up (logging, threads, device, the run directory's config.json + build_info.json).
// CLI11 is included only by src/cli/*.cpp.
#pragma once
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include "rarlhf/common/fs.h"
#include "rarlhf/config/config.h"
#include "rarlhf/model/causal_lm.h"
#include "rarlhf/pipeline/pipeline.h"
#include "rarlhf/text/tokenizer.h"

namespace rarlhf::cli {

struct ConfigArgs {
  std::string config_file;
  std::vector<std::string> sets;
  std::string log_level;  // "" = logging.level from the config
};

// Adds --config FILE, --set KEY=JSON (repeatable) and --log-level to a subcommand.
void add_config_options(CLI::App* sub, ConfigArgs& args);

// The arguments that make a child run (`rarlhf run`'s stages, `rarlhf sweep`'s cells) resolve the
// same config: --config FILE, every --set, --log-level.
std::vector<std::string> config_args_of(const ConfigArgs& args);

// Loads + validates the config, sets up logging and CPU threads.
Config load_and_init(const ConfigArgs& args);

// Takes the run folder for `command` (rank 0 only; others get an empty lock): DirLock on it (a second
// run on the same folder fails before it writes anything), and removes stray temporaries that a
// killed run left in it and in its policy/ folder.
DirLock claim_run_dir(const std::string& out_dir, const std::string& command, bool is_main = true);

// Writes config.json and build_info.json into run.out_dir (atomically).
void write_run_info(const Config& cfg, const std::string& out_dir);

// auto | cpu | cuda | cuda:N -> a device; ConfigError when CUDA is asked for but absent.
c10::Device resolve_device(const std::string& spec);

// lora.r > 0: fresh LoRA adapters on the policy (A drawn from a stream of run.seed), its base frozen.
// Returns whether adapters were added.
bool apply_lora_config(Policy& policy, const Config& cfg);

// The SFT texts of the config (sft_texts: data.train_path after sft.label_filter), shuffled with run.seed,
// sft.eval_fraction held out, tokenized and cut to sft.seq_length (packed or truncated): what
// `rarlhf sft` trains on. ConfigError when fewer than 2 texts remain.
struct SftWindows {
  std::vector<std::vector<int64_t>> train, eval;
  int64_t texts = 0, held_out_texts = 0;
};
SftWindows sft_windows(const Config& cfg, const Tokenizer& tok);

// `rarlhf run`'s expected time (Pipeline::Estimator): counts each planned stage's work, times every
// distinct piece once on this machine with the run's base model, prints a line per stage and returns
// the total seconds (NaN when every stage is done already). advisory: an error (a model that does not
// load, say) prints "run: no time estimate: ..." and gives NaN, leaving it to the stage that meets it;
// else it is thrown. src/cli/run_estimate.cpp.
double estimate_run(const std::vector<PlannedStage>& plan, bool advisory);

// "rarlhf 0.1.0 (git abc1234) LibTorch 1.13.1, CUDA kernels: off, CUDA device: no".
std::string build_info_line();

// One entry per subcommand; main.cpp holds the table.
using AddCommand = void (*)(CLI::App& app);
void add_config_command(CLI::App& app);
void add_train_command(CLI::App& app);
void add_sft_command(CLI::App& app);
void add_tokenize_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_logprobs_command(CLI::App& app);
void add_score_command(CLI::App& app);
void add_schedule_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_run_command(CLI::App& app);
void add_export_command(CLI::App& app);
void add_sweep_command(CLI::App& app);
void add_plot_command(CLI::App& app);
void add_convert_command(CLI::App& app);

}  // namespace rarlhf::cli
