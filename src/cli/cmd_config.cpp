// `rarlhf config`: prints the resolved config (defaults <- --config <- --set) as JSON,
// or with --doc the markdown reference of every key (pasted into the README).
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.h"

namespace rarlhf::cli {

void add_config_command(CLI::App& app) {
  auto* sub = app.add_subcommand("config", "Print the resolved config as JSON (or --doc: the key reference)");
  auto args = std::make_shared<ConfigArgs>();
  auto doc = std::make_shared<bool>(false);
  add_config_options(sub, *args);
  sub->add_flag("--doc", *doc, "print the markdown reference of every config key");
  sub->callback([args, doc] {
    if (*doc) {
      std::cout << config_reference_markdown();
      return;
    }
    Config cfg = load_config(args->config_file, args->sets);
    std::cout << to_json(cfg).dump(2) << "\n";
  });
}

}  // namespace rarlhf::cli
