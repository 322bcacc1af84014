// Logging through spdlog with rank-0 gating: in a multi-process run only rank 0 prints info and
// below; warnings and errors print on every rank, prefixed with the rank.
#pragma once
#include <spdlog/spdlog.h>

#include <string>

namespace rarlhf {

// level: trace|debug|info|warn|error|off. Throws ConfigError on an unknown level.
void init_logging(const std::string& level, int rank = 0, int world_size = 1);

}  // namespace rarlhf

#define RARLHF_LOG_DEBUG(...) ::spdlog::debug(__VA_ARGS__)
#define RARLHF_LOG_INFO(...) ::spdlog::info(__VA_ARGS__)
#define RARLHF_LOG_WARN(...) ::spdlog::warn(__VA_ARGS__)
#define RARLHF_LOG_ERROR(...) ::spdlog::error(__VA_ARGS__)
