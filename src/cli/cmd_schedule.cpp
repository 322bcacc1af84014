// `rarlhf schedule --config FILE [--set k=v]... [--iterations M] [--format table|json] [--plot out.png]`:
// prints the soft-risk schedule k(m), the episodes kept at every iteration (paper Eq. 8-10 or the
// legacy rule, from the risk.* and ppo.batch_size settings), and optionally plots it.
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/pipeline/soft_risk_report.h"

namespace rarlhf::cli {

void add_schedule_command(CLI::App& app) {
  auto* sub = app.add_subcommand("schedule", "Print (and plot) the soft-risk schedule: episodes kept per iteration");
  auto args = std::make_shared<ConfigArgs>();
  auto iterations = std::make_shared<int64_t>(0);
  auto format = std::make_shared<std::string>("table");
  auto plot = std::make_shared<std::string>();
  add_config_options(sub, *args);
  sub->add_option("--iterations,-M", *iterations, "M, the number of iterations (default: ppo.total_iterations)");
  sub->add_option("--format", *format, "table | json")->check(CLI::IsMember({"table", "json"}));
  sub->add_option("--plot", *plot, "also write a PNG of the schedule (needs python3-matplotlib)");
  sub->callback([args, iterations, format, plot] {
    const Config cfg = load_and_init(*args);
    const int64_t M = *iterations > 0 ? *iterations : cfg.ppo.total_iterations;
    if (M <= 0)
      throw ConfigError("ppo.total_iterations: 0 means one pass over the prompts, unknown here; pass --iterations M "
                        "(IMDB 194, Jigsaw 288) or set it");
    const nlohmann::json s = soft_risk_schedule_json(cfg.ppo.batch_size, M, cfg.risk);
    std::cout << (*format == "json" ? s.dump() + "\n" : soft_risk_schedule_table(s));
    if (!plot->empty()) plot_soft_risk_schedule(s, *plot);
  });
}

}  // namespace rarlhf::cli
