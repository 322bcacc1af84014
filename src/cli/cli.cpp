// Shared subcommand plumbing: see cli.h.
#include "cli.h"

#include <dlfcn.h>
#include <torch/version.h>
#include <ATen/Parallel.h>
#include <ATen/Context.h>

#include <nlohmann/json.hpp>

#include "rarlhf/build_info.h"
#include "rarlhf/common/cpus.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/log.h"
#include "rarlhf/kernels/ops.h"
#include "rarlhf/common/random.h"
#include "rarlhf/model/lora.h"

#include <torch/torch.h>

namespace rarlhf::cli {

void add_config_options(CLI::App* sub, ConfigArgs& args) {
  sub->add_option("--config,-c", args.config_file, "JSON config file (may \"extends\" a base file)");
  sub->add_option("--set,-s", args.sets, "override a key: --set ppo.clip_range=0.1 (value is JSON)")
      ->take_last()
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  sub->add_option("--log-level", args.log_level, "trace|debug|info|warn|error|off");
}

std::vector<std::string> config_args_of(const ConfigArgs& args) {
  std::vector<std::string> a;
  if (!args.config_file.empty()) a = {"--config", args.config_file};
  for (const auto& s : args.sets) a.insert(a.end(), {"--set", s});
  if (!args.log_level.empty()) a.insert(a.end(), {"--log-level", args.log_level});
  return a;
}

namespace {
void set_cpu_threads(int64_t n) {
  const CpuLimits limits = read_cpu_limits();
  const int online = limits.online;
  if (n > 4 * online) {  // thousands of threads only thrash (and take minutes to spawn)
    throw ConfigError("run.threads: " + std::to_string(n) + " is more than 4 x the " + std::to_string(online) +
                      " CPUs online; use 0 for the CPUs this process may use, or a count up to " +
                      std::to_string(4 * online));
  }
  if (n <= 0) {
    std::string why;
    n = usable_cpus(limits, &why);
    RARLHF_LOG_DEBUG("threads: {} ({})", n, why);
  }
  at::set_num_threads(static_cast<int>(n));
  // OpenBLAS keeps its own pool: size it too, so the two don't oversubscribe the cores.
  using SetFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    fn(static_cast<int>(n));
  }
}
}  // namespace

Config load_and_init(const ConfigArgs& args) {
  Config cfg = load_config(args.config_file, args.sets);
  if (!args.log_level.empty()) {
    cfg.logging.level = args.log_level;
    cfg.sources["logging.level"] = "--log-level";  // validate() names it in its error
    validate(cfg);
  }
  init_logging(cfg.logging.level);
  set_cpu_threads(cfg.run.threads);
  return cfg;
}

bool apply_lora_config(Policy& policy, const Config& cfg) {
  if (cfg.lora.r == 0) return false;
  constexpr uint64_t kLoraInitStream = 0x4c6f5241;  // "LoRA"
  torch::manual_seed(derive_seed(static_cast<uint64_t>(cfg.run.seed), kLoraInitStream));
  add_lora(policy, lora_settings(cfg.lora), cfg.model.path, "lora");
  const auto& lora = *policy.lm->lora();
  int64_t n = 0, base = 0;
  for (const auto& p : lora.parameters()) n += p.numel();
  for (const auto& p : policy.lm->parameters()) base += p.numel();
  RARLHF_LOG_INFO("lora: r {} alpha {} on {} layers: {} trainable parameters ({:.3f}% of {}), base frozen", lora.settings().r,
                  lora.settings().alpha, lora.adapted_modules().size(), n, 100.0 * static_cast<double>(n) / static_cast<double>(base), base);
  return true;
}

c10::Device resolve_device(const std::string& spec) {
  const bool cuda = at::hasCUDA();
  if (spec == "auto") return cuda ? c10::Device(c10::kCUDA, 0) : c10::Device(c10::kCPU);
  if (spec == "cpu") return c10::Device(c10::kCPU);
  if (!cuda) {
    throw ConfigError("run.device: '" + spec + "' asked for, but this build has no CUDA device (" +
                      build_info_line() + "); use run.device=cpu or a CUDA LibTorch build");
  }
  try {
    return c10::Device(spec);
  } catch (const std::exception&) {
    throw ConfigError("run.device: '" + spec + "' is not a device; use auto, cpu, cuda or cuda:N");
  }
}

std::string build_info_line() {
  std::string s = std::string("rarlhf ") + RARLHF_VERSION + " (git " + RARLHF_GIT_HASH +
                  "), LibTorch " + TORCH_VERSION + ", CUDA kernels: " +
                  (RARLHF_CUDA_KERNELS ? "on" : "off") +
                  ", CUDA device: " + (at::hasCUDA() ? "yes" : "no") +
                  ", CPU inference kernels: " + cpu_linear_isa_name(cpu_linear_isa()) +
                  (cpu_linear_uses_onednn() ? " (+ oneDNN sgemm from 32 rows)" : "");
  return s;
}

DirLock claim_run_dir(const std::string& out_dir, const std::string& command, bool is_main) {
  if (!is_main) return DirLock();
  DirLock lock(out_dir, command);
  const int stray = remove_stray_temp_files(out_dir) + remove_stray_temp_files(out_dir + "/policy");
  if (stray > 0) RARLHF_LOG_INFO("{}: removed {} temporary file(s) left by a killed run", out_dir, stray);
  return lock;
}

void write_run_info(const Config& cfg, const std::string& out_dir) {
  make_dirs(out_dir);
  write_file_atomic(out_dir + "/config.json", to_json(cfg).dump(2) + "\n");
  nlohmann::json info = {{"version", RARLHF_VERSION},
                         {"git", RARLHF_GIT_HASH},
                         {"libtorch", TORCH_VERSION},
                         {"cuda_kernels", RARLHF_CUDA_KERNELS != 0},
                         {"cuda_available", at::hasCUDA()},
                         {"threads", at::get_num_threads()}};
  write_file_atomic(out_dir + "/build_info.json", info.dump(2) + "\n");
}

}  // namespace rarlhf::cli
