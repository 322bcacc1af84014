// Test support: reading what a run wrote (JSONL files such as metrics.jsonl) and a free TCP port
// for the process groups of the distributed tests.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rarlhf::testing {

// One JSON value per non-blank line (throws on a malformed line); keys starting with one of
// drop_prefixes (e.g. "time/": wall-clock, never equal between runs) are removed from each object.
std::vector<nlohmann::json> read_jsonl(const std::string& path, const std::vector<std::string>& drop_prefixes = {});

// A TCP port on localhost that was free a moment ago (bound to port 0, then released).
int free_port();

}  // namespace rarlhf::testing
