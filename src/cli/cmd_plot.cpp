// `rarlhf plot --run DIR [DIR...] [--out FILE.png]`: training curves of train/sft runs from their
// metrics.jsonl (scripts/plot_training.py): score, KL, beta, kept episodes k(m), return threshold,
// clip fraction, losses; the seeds of one run (seed<N> folders, -s<N> names) as mean +- std bands.
#include <iostream>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/process.h"

namespace rarlhf::cli {

void add_plot_command(CLI::App& app) {
  auto* sub = app.add_subcommand("plot", "Training curves (metrics.jsonl) of one or more train/sft runs, seeds as bands");
  auto runs = std::make_shared<std::vector<std::string>>();
  auto out = std::make_shared<std::string>();
  auto title = std::make_shared<std::string>();
  sub->add_option("--run", *runs, "run folders holding metrics.jsonl")->required()->expected(1, 1000);
  sub->add_option("--out", *out, "PNG to write (default: curves.png in the first run folder; a .csv beside it)");
  sub->add_option("--title", *title, "figure title");
  sub->callback([runs, out, title] {
    for (const auto& r : *runs) {
      if (!file_exists(r + "/metrics.jsonl"))
        throw IoError(r + ": no metrics.jsonl; point --run at a train or sft run folder (run.out_dir)");
    }
    const std::string png = out->empty() ? runs->front() + "/curves.png" : *out;
    std::string csv = png;
    if (csv.size() > 4 && csv.compare(csv.size() - 4, 4, ".png") == 0) csv.resize(csv.size() - 4);
    std::vector<std::string> args = *runs;
    args.insert(args.end(), {"--out", png, "--csv", csv + ".csv"});
    if (!title->empty()) args.insert(args.end(), {"--title", *title});
    run_plot_script(find_bundled_script("plot_training.py"), args);
    std::cout << "plot: " << png << " (numbers: " << csv << ".csv)" << std::endl;
  });
}

}  // namespace rarlhf::cli
