// rarlhf: one binary, a table of subcommands. Each subcommand lives in cmd_<name>.cpp and
// registers itself through the table below. Errors thrown anywhere are caught here once:
// ConfigError / IoError -> "rarlhf: error: ..." exit 1; usage errors -> help + exit 2.
// Reading path: main.cpp -> cmd_train.cpp -> PPOTrainer::train() (src/train/ppo_trainer.cpp).
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/strings.h"
#include "rarlhf/kernels/ops.h"

namespace {

// OpenMP and OpenBLAS read these at library load, before main runs: set them (unless the user
// did) and re-exec once. PASSIVE waiting stops idle OpenMP threads spinning against OpenBLAS's
// on small machines (DESIGN §5: one PPO iteration 29.6 s -> 18.6 s on 2 cores; still 2.7 s vs 3.0 s
// for a 4 x 128 iteration, bench/ppo_iteration_bench). Commands that only run inference (generate,
// eval, score, logprobs) keep libgomp's default spin-then-sleep instead: their products are our own
// OpenMP kernels, not OpenBLAS, and sleeping between a decoding step's ~250 parallel regions cost
// 30% of generation speed (SmolLM2-135M shape, B=8: 123 vs 170 tokens/s, family_generate_bench).
bool inference_only(int argc, char** argv) {
  if (argc < 2) return false;
  const std::string cmd = argv[1];
  return cmd == "generate" || cmd == "eval" || cmd == "score" || cmd == "logprobs";
}

void ensure_thread_env(int argc, char** argv) {
  if (std::getenv("RARLHF_ENV_SET")) return;
  bool changed = false;
  auto set_default = [&](const char* k, const char* v) {
    if (!std::getenv(k)) {
      setenv(k, v, 1);
      changed = true;
    }
  };
  if (!inference_only(argc, argv)) set_default("OMP_WAIT_POLICY", "PASSIVE");
  set_default("OPENBLAS_THREAD_TIMEOUT", "4");
  // Transparent huge pages for malloc: the 50 257-wide logits buffers are fresh multi-MB
  // allocations each step, and page faults on them dominated the CPU backward (37.8 -> 19.8 ms
  // for token_logprobs fwd+bwd at [256, 50257], bench/kernels_bench).
  set_default("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1");
  setenv("RARLHF_ENV_SET", "1", 1);
  if (changed) execv("/proc/self/exe", argv);  // on failure, carry on as we are
}

}  // namespace

int main(int argc, char** argv) {
  ensure_thread_env(argc, argv);
  using namespace rarlhf::cli;
  static const AddCommand kCommands[] = {
      add_config_command,
      add_sft_command,
      add_train_command,
      add_tokenize_command,
      add_generate_command,
      add_logprobs_command,
      add_score_command,
      add_schedule_command,
      add_eval_command,
      add_run_command,
      add_export_command,
      add_sweep_command,
      add_plot_command,
      add_convert_command,
  };

  try {
    rarlhf::cpu_linear_isa();  // a bad RARLHF_CPU_LINEAR fails here, before any command writes a file
  } catch (const rarlhf::Error& e) {
    std::cerr << "rarlhf: error: " << e.what() << "\n";
    return 1;
  }
  CLI::App app{"rarlhf: risk-averse RLHF (RA-RLHF) fine-tuning of language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", build_info_line());
  for (auto add : kCommands) add(app);

  // A mistyped subcommand would otherwise read "A subcommand is required".
  if (argc > 1 && argv[1][0] != '-') {
    std::vector<std::string> names;
    for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; })) names.push_back(sub->get_name());
    if (std::find(names.begin(), names.end(), argv[1]) == names.end()) {
      const std::string g = rarlhf::did_you_mean(argv[1], names);
      std::cerr << "rarlhf: error: '" << argv[1] << "' is not a command" << (g.empty() ? "" : "; did you mean '" + g + "'?")
                << " (rarlhf --help lists them)\n";
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0) {
      // Usage errors: the message, then the help of the subcommand it concerns (not only "Run with --help").
      const CLI::App* where = &app;
      for (const auto* sub : app.get_subcommands()) where = sub;
      std::cerr << "rarlhf: error: " << e.what() << "\n\n" << where->help();
      return 2;
    }
    return app.exit(e);
  } catch (const rarlhf::Error& e) {
    std::cerr << "rarlhf: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "rarlhf: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
