// `rarlhf plot --run DIR [DIR...] [--out FILE.png]`: training curves of train/sft runs from their
// metrics.jsonl (scripts/plot_training.py): score, KL, beta, kept episodes k(m), return threshold,
// clip fraction, losses; the seeds of one run (seed<N> folders, -s<N> names, Slurm array tasks) as
// mean +- std bands.
#include <iostream>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/eval/report.h"

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
    draw_training_curves(*runs, png, *title, /*quiet=*/false);
    std::cout << "plot: " << png << " (numbers: " << training_curves_csv(png) << ")" << std::endl;
  });
}

}  // namespace rarlhf::cli
