// Logging set-up: see include/rarlhf/common/log.h.
#include "rarlhf/common/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include "rarlhf/common/error.h"

namespace rarlhf {

void init_logging(const std::string& level, int rank, int world_size) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    throw ConfigError("logging.level: unknown level '" + level +
                      "'; use trace, debug, info, warn, error or off");
  }
  const std::string name = "rarlhf_" + std::to_string(rank);
  spdlog::drop(name);  // may be called again once the rank is known (distributed runs)
  auto logger = spdlog::stderr_color_mt(name);
  if (world_size > 1) {
    logger->set_pattern("[%H:%M:%S] [rank " + std::to_string(rank) + "] [%^%l%$] %v");
  } else {
    logger->set_pattern("[%H:%M:%S] [%^%l%$] %v");
  }
  // Rank gating: non-zero ranks print warnings and errors only.
  logger->set_level(rank == 0 ? lvl : std::max(lvl, spdlog::level::warn));
  spdlog::set_default_logger(logger);
}

}  // namespace rarlhf
