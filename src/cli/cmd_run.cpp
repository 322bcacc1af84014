// `rarlhf run --config FILE [--set k=v]... [--from STAGE] [--only STAGE]`: the whole experiment
// (pretrain -> sft -> rlhf -> ra_rlhf -> eval -> compare) from one config. Each training/eval stage
// is a child run of this same binary (`/proc/self/exe sft|train|eval ...`, output streamed), so a
// stage behaves exactly like the command a user would type; stage folders with DONE are skipped
// and interrupted ones are resumed. `compare` is done here: summary.md + overlay plots.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"
#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/log.h"
#include "rarlhf/data/dataset.h"

namespace rarlhf::cli {

namespace {

using json = nlohmann::json;

volatile sig_atomic_t g_child = 0;        // pid of the running stage (0 = none)
volatile sig_atomic_t g_interrupted = 0;  // SIGINT/SIGTERM seen: stop after the child exits

// The child checkpoints on SIGTERM/SIGINT/SIGUSR1 (install_stop_signal_handlers); the parent passes
// the signal on and remembers to stop. A terminal's Ctrl-C reaches both, which is harmless.
void forward_signal(int sig) {
  g_interrupted = 1;
  if (g_child > 0) kill(static_cast<pid_t>(g_child), sig);
}

bool exists(const std::string& p) { return file_exists(p); }

std::string quote_arg(const std::string& a) {
  if (a.find_first_of(" \t\"'$\\[]{}*?;&|<>()") == std::string::npos && !a.empty()) return a;
  std::string out = "'";
  for (char c : a) out += (c == '\'') ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs this binary with `args` (argv[1..]); returns its exit status (128 + signal when killed).
int run_child(const std::vector<std::string>& args) {
  std::string shown = "rarlhf";
  for (const auto& a : args) shown += " " + quote_arg(a);
  RARLHF_LOG_INFO("run: {}", shown);
  std::cout.flush();
  std::cerr.flush();
  std::vector<char*> argv;
  std::string self = "rarlhf";
  argv.push_back(self.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = fork();
  if (pid < 0) throw IoError("run: fork failed: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    execv("/proc/self/exe", argv.data());
    std::fprintf(stderr, "rarlhf: error: run: cannot exec /proc/self/exe: %s\n", std::strerror(errno));
    _exit(127);
  }
  g_child = pid;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw IoError("run: waitpid failed: " + std::string(std::strerror(errno)));
  }
  g_child = 0;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

struct Stage {
  std::string name;
  std::string what;
};

const char* describe(const std::string& s) {
  if (s == "pretrain") return "pre-training the policy from scratch (sft, sft.from_scratch=true)";
  if (s == "sft") return "supervised fine-tuning of the policy";
  if (s == "rlhf") return "PPO, risk-neutral (train, risk.enabled=false)";
  if (s == "ra_rlhf") return "RA-RLHF, soft-risk PPO (train, risk.enabled=true)";
  if (s == "eval") return "evaluating every model on the test and tail splits";
  return "summary table and overlay plots";
}

bool has(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// A stage's overrides, with "{out_dir}" replaced by run.out_dir (e.g. the merged test file as
// eval.ppl_path, which moves with the run folder).
std::vector<std::string> stage_sets(const Config& cfg, const std::string& stage) {
  std::vector<std::string> s;
  if (stage == "pretrain") s = cfg.pipeline.pretrain;
  if (stage == "sft") s = cfg.pipeline.sft;
  if (stage == "rlhf") s = cfg.pipeline.rlhf;
  if (stage == "ra_rlhf") s = cfg.pipeline.ra_rlhf;
  if (stage == "eval") s = cfg.pipeline.eval;
  for (auto& x : s) {
    for (size_t at = x.find("{out_dir}"); at != std::string::npos; at = x.find("{out_dir}", at + 1))
      x.replace(at, 9, cfg.run.out_dir);
  }
  return s;
}

// Reads `files` (each in data.format) and writes them as one JSONL {"text","label"} file, so that
// stages reading a single data path can use several source files (the demo: UCI imdb + amazon).
void merge_files(const Config& cfg, const std::vector<std::string>& files, const std::string& out,
                 const std::string& field) {
  std::ostringstream buf;
  int64_t n = 0;
  for (const auto& f : files) {
    ReadReport report;
    auto texts = read_texts(cfg.data, f, &report);
    for (const auto& t : texts) {
      buf << json{{"text", t.text}, {"label", t.label}}.dump(-1, ' ', false, json::error_handler_t::replace)
          << "\n";
      ++n;
    }
    RARLHF_LOG_INFO("run: {}: {} texts from {}", field, texts.size(), f);
  }
  if (n == 0) throw ConfigError(field + ": no texts in " + std::to_string(files.size()) + " files");
  write_file_atomic(out, buf.str());
}

double num_at(const json& j, std::initializer_list<const char*> path) {
  const json* p = &j;
  for (const char* k : path) {
    if (!p->is_object() || !p->contains(k)) return NAN;
    p = &(*p)[k];
  }
  return p->is_number() ? p->get<double>() : NAN;
}

std::string fmt(double x, int prec = 3) {
  if (!std::isfinite(x)) return "-";
  std::ostringstream o;
  o << std::fixed << std::setprecision(prec) << x;
  return o.str();
}

json read_json_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw IoError(path + ": cannot read; rerun the eval stage (`rarlhf run ... --only eval`)");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw IoError(path + ": not valid JSON (" + e.what() + "); delete the folder and rerun the eval stage");
  }
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto* sub = app.add_subcommand(
      "run", "The whole experiment from one config: pretrain -> sft -> rlhf -> ra_rlhf -> eval -> compare");
  auto args = std::make_shared<ConfigArgs>();
  auto from = std::make_shared<std::string>();
  auto only = std::make_shared<std::string>();
  add_config_options(sub, *args);
  sub->add_option("--from", *from, "start at this stage (earlier ones must be done)");
  sub->add_option("--only", *only, "run only this stage");
  sub->callback([args, from, only] {
    Config cfg = load_and_init(*args);
    const auto& P = cfg.pipeline;
    // Every stage's overrides must make a valid config before anything runs (errors name them).
    for (const char* st : {"pretrain", "sft", "rlhf", "ra_rlhf", "eval"}) {
      Config c = cfg;
      for (const auto& s : stage_sets(cfg, st)) {
        try {
          apply_set(c, s);
        } catch (const ConfigError& e) {
          throw ConfigError(std::string("pipeline.") + st + ": " + e.what());
        }
      }
      try {
        validate(c);
      } catch (const ConfigError& e) {
        throw ConfigError(std::string("pipeline.") + st + ": " + e.what());
      }
    }
    std::vector<std::string> todo = P.stages;
    for (const std::string* opt : {from.get(), only.get()}) {
      if (!opt->empty() && !has(P.stages, *opt))
        throw ConfigError(std::string(opt == from.get() ? "--from" : "--only") + ": '" + *opt +
                          "' is not in pipeline.stages");
    }
    if (!from->empty()) todo.erase(todo.begin(), std::find(todo.begin(), todo.end(), *from));
    if (!only->empty()) todo = {*only};

    const std::string root = cfg.run.out_dir;
    make_dirs(root);
    write_run_info(cfg, root);

    // Settings every child gets: the user's --set first, then the merged data files.
    std::vector<std::string> common;
    if (!args->config_file.empty()) common = {"--config", args->config_file};
    for (const auto& s : args->sets) common.insert(common.end(), {"--set", s});
    if (!args->log_level.empty()) common.insert(common.end(), {"--log-level", args->log_level});
    auto merged = [&](const std::vector<std::string>& files, const char* name, const char* key) {
      if (files.empty()) return;
      const std::string out = root + "/data/" + name + ".jsonl";
      make_dirs(root + "/data");
      merge_files(cfg, files, out, std::string("pipeline.") + (std::string(name) == "train" ? "train_files" : "test_files"));
      for (std::string s : {std::string("data.") + key + "=" + out, std::string("data.format=jsonl"),
                            std::string("data.text_field=text"), std::string("data.label_field=label")})
        common.insert(common.end(), {"--set", s});
    };
    merged(P.train_files, "train", "train_path");
    merged(P.test_files, "test", "test_path");

    auto with_sets = [&](std::vector<std::string> a, const std::vector<std::string>& sets) {
      for (const auto& s : sets) a.insert(a.end(), {"--set", s});
      return a;
    };
    // The policy a training stage starts from: the previous training stage's output when that
    // stage is part of the pipeline, else what the config (and the stage's overrides) say.
    auto policy_of = [&](const std::string& st) { return root + "/" + st + "/policy"; };
    auto start_sets = [&](const std::string& st) {
      std::vector<std::string> s;
      if (st == "pretrain") s = {"sft.from_scratch=true"};
      if (st == "sft") {
        s = {"sft.from_scratch=false"};
        if (has(P.stages, "pretrain")) s.push_back("model.path=" + policy_of("pretrain"));
      }
      if (st == "rlhf" || st == "ra_rlhf") {
        s = {std::string("risk.enabled=") + (st == "ra_rlhf" ? "true" : "false")};
        if (has(P.stages, "sft")) s.push_back("model.path=" + policy_of("sft"));
        else if (has(P.stages, "pretrain")) s.push_back("model.path=" + policy_of("pretrain"));
      }
      return s;
    };

    struct sigaction sa {};
    sa.sa_handler = forward_signal;
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    sigaction(SIGUSR1, &sa, nullptr);  // Slurm's warning before a time limit: checkpoint and stop
    auto fail = [&](const std::string& stage, int code) {
      std::cout.flush();
      std::cerr << "rarlhf: error: run: stage '" << stage << "' "
                << (g_interrupted ? "was interrupted" : "failed (exit " + std::to_string(code) + ")")
                << "; its output is above; rerun the same command to resume from it\n";
      std::exit(code == 0 ? 1 : code);
    };

    // The models compared: the starting model of the first training stage (unless trained from
    // scratch), then every training stage of the pipeline.
    auto models = [&]() {
      std::vector<std::pair<std::string, std::string>> m;
      const std::string first = has(P.stages, "pretrain") ? "" : has(P.stages, "sft") ? "sft" : "rlhf";
      if (!first.empty()) {
        Config c = cfg;
        for (size_t i = 0; i + 1 < common.size(); i += 2)
          if (common[i] == "--set") apply_set(c, common[i + 1]);
        for (const auto& s : start_sets(first)) apply_set(c, s);
        for (const auto& s : stage_sets(cfg, first)) apply_set(c, s);
        m.push_back({"base", c.model.path});
      }
      for (const char* st : {"pretrain", "sft", "rlhf", "ra_rlhf"})
        if (has(P.stages, st)) m.push_back({st, policy_of(st)});
      return m;
    };

    const auto t_start = std::chrono::steady_clock::now();
    size_t index = 0;
    for (const auto& st : todo) {
      ++index;
      const size_t pos = std::find(P.stages.begin(), P.stages.end(), st) - P.stages.begin() + 1;
      std::cout << "\n[" << pos << "/" << P.stages.size() << "] " << st << ": " << describe(st) << std::endl;
      const auto t0 = std::chrono::steady_clock::now();
      const std::string dir = root + "/" + st;
      if (st == "pretrain" || st == "sft" || st == "rlhf" || st == "ra_rlhf") {
        if (exists(dir + "/DONE")) {
          std::cout << "  done already (" << dir << "/DONE); skipped" << std::endl;
          continue;
        }
        std::vector<std::string> a = {st == "pretrain" || st == "sft" ? "sft" : "train"};
        a = with_sets(a, {});
        a.insert(a.end(), common.begin(), common.end());
        a = with_sets(a, start_sets(st));
        a = with_sets(a, stage_sets(cfg, st));
        a = with_sets(a, {"run.out_dir=" + dir, "run.name=" + cfg.run.name + "-" + st});
        a.push_back("--resume");
        if (st != "pretrain") {
          // The input policy must exist before a child spends minutes loading data.
          for (size_t i = 0; i + 1 < a.size(); ++i) {
            if (a[i] == "--set" && a[i + 1].rfind("model.path=" + root, 0) == 0 &&
                !exists(a[i + 1].substr(11) + "/config.json"))
              throw ConfigError("run: stage '" + st + "' needs " + a[i + 1].substr(11) +
                                "; run the earlier stages first (drop --from/--only)");
          }
        }
        int rc = run_child(a);
        if (rc != 0 || g_interrupted) fail(st, rc);
        // A child stopped by a signal sent to it alone checkpoints and exits 0 without DONE.
        if (!exists(dir + "/DONE")) {
          g_interrupted = 1;
          fail(st, 1);
        }
      } else if (st == "eval") {
        for (const auto& [name, path] : models()) {
          for (const auto& split : P.eval_splits) {
            const std::string edir = dir + "/" + name + "-" + split;
            if (exists(edir + "/DONE")) {
              std::cout << "  " << name << " on " << split << ": done already; skipped" << std::endl;
              continue;
            }
            if (!exists(path + "/config.json") && path.rfind(root, 0) == 0)
              throw ConfigError("run: eval needs " + path + "; run the '" + name + "' stage first");
            std::cout << "  " << name << " on the " << split << " split" << std::endl;
            std::vector<std::string> a = {"eval"};
            a.insert(a.end(), common.begin(), common.end());
            a = with_sets(a, stage_sets(cfg, "eval"));
            // run.out_dir = the eval folder: eval's prompt-score cache then sits in its parent,
            // shared by every model's eval (the prompts and reward are the same).
            a = with_sets(a, {"run.out_dir=" + edir});
            a.insert(a.end(), {"--model", path, "--split", split, "--name", name, "--out", edir});
            int rc = run_child(a);
            if (rc != 0 || g_interrupted) fail("eval (" + name + ", " + split + ")", rc);
            if (!exists(edir + "/eval.json"))
              throw IoError("run: eval of " + name + " wrote no " + edir + "/eval.json");
            write_file_atomic(edir + "/DONE", "eval " + name + " " + split + "\n");
          }
        }
      } else {  // compare
        const std::string edir = root + "/eval";
        std::ostringstream md;
        md << "| model | reward (test) | tail reward | CVaR_0.1 | perplexity | Dist-1 | Dist-2 | Dist-3 |\n"
           << "|---|---|---|---|---|---|---|---|\n";
        std::vector<std::string> test_dirs, tail_dirs;
        for (const auto& [name, path] : models()) {
          json test, tail;
          if (has(P.eval_splits, "test")) {
            test = read_json_file(edir + "/" + name + "-test/eval.json");
            test_dirs.push_back(edir + "/" + name + "-test");
          }
          if (has(P.eval_splits, "tail")) {
            tail = read_json_file(edir + "/" + name + "-tail/eval.json");
            tail_dirs.push_back(edir + "/" + name + "-tail");
          }
          const json& any = test.is_null() ? tail : test;
          // Tail reward: the tail split's mean reward; without it, the test run's tail subset.
          double tail_r = tail.is_null() ? num_at(test, {"tail", "reward", "mean"}) : num_at(tail, {"reward", "mean"});
          md << "| " << name << " | " << fmt(num_at(test, {"reward", "mean"})) << " | " << fmt(tail_r) << " | "
             << fmt(num_at(any, {"cvar", "0.1"})) << " | " << fmt(num_at(any, {"perplexity", "mean_per_text"}), 2)
             << " | " << fmt(num_at(any, {"dist", "dist1"})) << " | " << fmt(num_at(any, {"dist", "dist2"}))
             << " | " << fmt(num_at(any, {"dist", "dist3"})) << " |\n";
        }
        make_dirs(dir);
        // Overlay plots + eval's own comparison table, per split (`rarlhf eval --compare`).
        for (const auto* dirs : {&test_dirs, &tail_dirs}) {
          if (dirs->empty()) continue;
          std::vector<std::string> a = {"eval"};
          a.insert(a.end(), common.begin(), common.end());
          a = with_sets(a, stage_sets(cfg, "eval"));
          a = with_sets(a, {"run.out_dir=" + dir});
          a.push_back("--compare");
          a.insert(a.end(), dirs->begin(), dirs->end());
          a.insert(a.end(), {"--out", dir + (dirs == &test_dirs ? "/test" : "/tail")});
          int rc = run_child(a);
          if (rc != 0 || g_interrupted) fail("compare", rc);
        }
        std::ostringstream doc;
        doc << "# " << cfg.run.name << "\n\n"
            << "Reward, CVaR_0.1, perplexity (mean per text) and Dist-n from the "
            << (has(P.eval_splits, "test") ? "test" : "tail") << " split; tail reward from the tail split. "
            << "Plots: " << dir << "/.\n\n"
            << md.str();
        write_file_atomic(root + "/summary.md", doc.str());
        std::cout << "\n" << md.str() << "summary: " << root << "/summary.md" << std::endl;
      }
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      std::cout << "  " << st << " finished in " << fmt(secs, 1) << " s" << std::endl;
    }
    const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    std::cout << "\nrun: " << index << " stage(s) in " << fmt(total, 1) << " s -> " << root << std::endl;
  });
}

}  // namespace rarlhf::cli
