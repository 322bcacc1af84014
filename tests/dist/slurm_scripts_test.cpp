// The Slurm scripts (scripts/slurm/*) do what they say, checked without Slurm: fake `srun`, `sbatch`
// and `scontrol` written into a temporary bin folder first on PATH record their argv and environment.
// - train.sbatch through a requeue cycle with a real tiny `rarlhf train`: the fake srun sends SIGUSR1
//   as soon as rarlhf can catch it (while it loads the model, as --signal=USR1@N would late in a job),
//   rarlhf checkpoints and exits 0, the script requeues the job; run again as Slurm would after the
//   requeue, it resumes and writes DONE, and stops requeueing. srun gets --cpus-per-task and the
//   environment of RARLHF_SLURM_SETUP. A failing run and a missing or failing setup hook never requeue.
// - An array task requeues itself alone (<array job>_<task>).
// - grid.sh against an sbatch that prints "id;cluster": every dependency and path names an earlier
//   numeric job id, the baselines are submitted, the count matches the header; garbage stops it.
// - shellcheck, and the dry runs print a checked command.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "rarlhf/common/fs.h"
#include "support/files.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/tiny_policy.h"

using namespace rarlhf;
namespace fs = std::filesystem;

namespace {

const std::string kSrc = RARLHF_SOURCE_DIR;
const std::string kBin = rarlhf::testing::rarlhf_binary();
const std::string kTokDir = rarlhf::testing::tiny_vocab_dir();
const std::string kLexicon = rarlhf::testing::shared_data("sentiment-lexicons/vader_lexicon.txt");

using rarlhf::testing::run;

std::vector<std::string> lines_of(const std::string& path) {
  std::vector<std::string> out;
  if (!fs::exists(path)) return out;
  std::istringstream in(read_file(path));
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// srun: a one-task step. Logs "argv: ..." and "env: ..." lines; with FAKE_SRUN_USR1 (a metrics file)
// set, its first call sends SIGUSR1 to the command as soon as the command catches USR1 (bit 9 of
// SigCgt in /proc/<pid>/status; before that a signal would kill any program), logging how many
// metrics lines existed then (0: still loading), as --signal=USR1@N does late in a real job.
const char* kFakeSrun = R"(#!/usr/bin/env bash
log=$FAKE_SLURM_LOG/srun.log
n=$(( $(cat "$FAKE_SLURM_LOG/srun.count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$FAKE_SLURM_LOG/srun.count"
echo "argv: $*" >> "$log"
echo "env: marker=${RARLHF_TEST_MARKER:-} cpus=${SLURM_CPUS_PER_TASK:-} restart=${SLURM_RESTART_COUNT:-}" >> "$log"
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do shift; done
export SLURM_STEP_ID=0 SLURM_STEP_NUM_TASKS=1 SLURM_PROCID=0 SLURM_LOCALID=0 SLURM_NTASKS=1
"$@" &
pid=$!
if [ "$n" = 1 ] && [ -n "${FAKE_SRUN_USR1:-}" ]; then
  for _ in $(seq 1 3000); do
    mask=$(awk '/^SigCgt:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || break
    [ -n "$mask" ] && (( (16#$mask >> 9) & 1 )) && break
    sleep 0.01
  done
  metrics=$(cat "$FAKE_SRUN_USR1" 2>/dev/null | wc -l)
  kill -USR1 "$pid" && echo "usr1: sent with $metrics metrics lines written" >> "$log"
fi
wait "$pid"
)";

const char* kFakeScontrol = R"(#!/usr/bin/env bash
echo "$*" >> "$FAKE_SLURM_LOG/scontrol.log"
)";

// sbatch --parsable: "<id>;clusterA" with ids 1000, 1001, ...; FAKE_SBATCH_REPLY replaces the reply.
const char* kFakeSbatch = R"(#!/usr/bin/env bash
n=$(( $(cat "$FAKE_SLURM_LOG/sbatch.count" 2>/dev/null || echo 0) + 1 ))
echo "$n" > "$FAKE_SLURM_LOG/sbatch.count"
id=$(( 999 + n ))
echo "$id $*" >> "$FAKE_SLURM_LOG/sbatch.log"
echo "${FAKE_SBATCH_REPLY:-$id;clusterA}"
)";

// A stand-in for rarlhf that succeeds without writing DONE (a run stopped by the time limit).
const char* kFakeRarlhf = R"(#!/usr/bin/env bash
echo "$*" >> "$FAKE_SLURM_LOG/rarlhf.log"
)";

class SlurmScriptsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_.emplace("slurm");
    root_ = tmp_->path();
    bin_ = root_ + "/bin";
    logs_ = root_ + "/logs";
    submit_ = root_ + "/submit";
    fs::create_directories(logs_);
    fs::create_directories(submit_);
    fs::create_directory_symlink(kSrc + "/scripts", submit_ + "/scripts");  // $SLURM_SUBMIT_DIR/scripts/slurm/lib.sh
    write_exe("bin/srun", kFakeSrun);
    write_exe("bin/scontrol", kFakeScontrol);
    write_exe("bin/sbatch", kFakeSbatch);
  }
  void write_exe(const std::string& name, const std::string& text) {
    const std::string p = tmp_->write(name, text);
    fs::permissions(p, fs::perms::owner_all, fs::perm_options::add);
  }
  // The environment of a batch script of job `job_id`, the fakes first on PATH.
  std::map<std::string, std::string> slurm_env(const std::string& job_id) const {
    const char* path = std::getenv("PATH");
    return {{"PATH", bin_ + ":" + (path ? path : "/usr/bin:/bin")},
            {"FAKE_SLURM_LOG", logs_},
            {"SLURM_JOB_ID", job_id},
            {"SLURM_SUBMIT_DIR", submit_},
            {"SLURM_CPUS_PER_TASK", "3"},
            {"RARLHF_GRID_DIR", root_ + "/grid"},  // grid.sh's manifest, not in the source tree
            {"RARLHF_BIN", kBin}};
  }
  std::string log(const std::string& name) const { return logs_ + "/" + name; }

  std::optional<rarlhf::testing::TempDir> tmp_;  // removed with the fixture
  std::string root_, bin_, logs_, submit_;
};

// A real tiny `rarlhf train` (the DistCliTest config) under submit/configs/tiny/rl.json: runs/tiny-rl/<job>.
class SlurmTrainTest : public SlurmScriptsTest {
 protected:
  void SetUp() override {
    if (!fs::exists(kTokDir + "/vocab.json") || !fs::exists(kLexicon)) GTEST_SKIP() << "needs ../shared/data";
    if (!fs::exists(kBin)) GTEST_SKIP() << "build the rarlhf target first";
    SlurmScriptsTest::SetUp();
    // The shared tiny run (tests/support/tiny_policy.h), smaller still; the job script picks out_dir.
    auto c = nlohmann::json::parse(read_file(rarlhf::testing::write_tiny_rl_run(root_, kIterations)));
    c["run"].erase("out_dir");
    c["ppo"]["batch_size"] = 8;
    c["ppo"]["ppo_epochs"] = 1;
    c["generate"]["max_new_tokens"] = 4;
    tmp_->write("submit/configs/tiny/rl.json", c.dump(2));
    tmp_->write("setup.sh", "export RARLHF_TEST_MARKER=from-setup-hook\n");
  }
  static constexpr int64_t kIterations = 3;
  const std::string config_ = "configs/tiny/rl.json";  // relative to the submit dir
};

}  // namespace

TEST_F(SlurmTrainTest, UsrOneWhileLoadingRequeuesAndTheRequeuedJobResumesToDone) {
  auto env = slurm_env("777");
  env["RARLHF_SLURM_SETUP"] = root_ + "/setup.sh";
  const std::string out = submit_ + "/runs/tiny-rl/777";
  env["FAKE_SRUN_USR1"] = out + "/metrics.jsonl";  // signal on the first srun; count these lines then
  int runs = 0;
  size_t requeues = 0;
  for (; runs < 4; ++runs) {
    if (runs > 0) env["SLURM_RESTART_COUNT"] = std::to_string(runs);
    const std::string run_log = log("batch" + std::to_string(runs + 1) + ".out");
    const int rc = run({"bash", kSrc + "/scripts/slurm/train.sbatch", config_}, env, run_log, 120);
    ASSERT_EQ(rc, 0) << "run " << runs + 1 << ":\n" << read_file(run_log);
    const size_t now = lines_of(log("scontrol.log")).size();
    if (runs == 0) {
      EXPECT_TRUE(fs::exists(out + "/checkpoint/trainer_state.json")) << read_file(run_log);
      EXPECT_FALSE(fs::exists(out + "/DONE"));
      ASSERT_EQ(now, 1u) << "the stopped run must requeue itself:\n" << read_file(run_log);
    }
    if (now == requeues) break;  // no new requeue: the job is finished
    requeues = now;
  }
  EXPECT_EQ(runs, 1) << "a second run, then no more requeues";
  EXPECT_EQ(lines_of(log("scontrol.log")), std::vector<std::string>{"requeue 777"});
  EXPECT_TRUE(fs::exists(out + "/DONE"));
  EXPECT_TRUE(fs::exists(out + "/policy/model.safetensors"));
  const auto ms = rarlhf::testing::read_jsonl(out + "/metrics.jsonl");
  ASSERT_EQ(ms.size(), static_cast<size_t>(kIterations)) << "each iteration once, no duplicate after the resume";
  for (size_t i = 0; i < ms.size(); ++i) EXPECT_EQ(ms[i]["iteration"].get<int64_t>(), static_cast<int64_t>(i));
  EXPECT_TRUE(contains(read_file(log("batch2.out")), "resum")) << read_file(log("batch2.out"));

  const auto srun = lines_of(log("srun.log"));
  ASSERT_EQ(std::count_if(srun.begin(), srun.end(), [](auto& l) { return l.rfind("argv:", 0) == 0; }), 2);
  for (const auto& l : srun) {
    if (l.rfind("argv:", 0) == 0) {
      EXPECT_TRUE(contains(l, " --kill-on-bad-exit=1 ")) << l;
      EXPECT_TRUE(contains(l, " --cpus-per-task=3 ")) << l;
      EXPECT_TRUE(contains(l, " train --config " + config_ + " --set run.out_dir=runs/tiny-rl/777 --resume")) << l;
    } else if (l.rfind("env:", 0) == 0) {
      EXPECT_TRUE(contains(l, "marker=from-setup-hook cpus=3")) << l;
    }
  }
  // The signal came as soon as rarlhf caught USR1: on Debian's LibTorch during start-up (0 lines
  // logged); a faster loader (pip's LibTorch 2.13) may have logged an iteration by then. Either way
  // before the end.
  const auto sent = std::find_if(srun.begin(), srun.end(), [](auto& l) { return l.rfind("usr1: sent with ", 0) == 0; });
  ASSERT_NE(sent, srun.end()) << read_file(log("srun.log"));
  EXPECT_LT(std::stoi(sent->substr(16)), kIterations) << *sent;
}

TEST_F(SlurmTrainTest, AFailedRunReturnsItsStatusAndIsNotRequeued) {
  auto env = slurm_env("778");
  // Valid config, but the policy folder is not there: rarlhf fails when it loads the model.
  const int rc = run({"bash", kSrc + "/scripts/slurm/train.sbatch", config_, "--set",
                      "model.path=\"" + root_ + "/no-such-policy\""},
                     env, log("batch.out"), 120);
  const std::string out = read_file(log("batch.out"));
  EXPECT_NE(rc, 0) << out;
  EXPECT_EQ(lines_of(log("srun.log")).size(), 2u) << "srun ran once";
  EXPECT_FALSE(fs::exists(log("scontrol.log"))) << "a failure must not requeue:\n" << out;
  EXPECT_TRUE(contains(out, "not requeueing")) << out;
}

TEST_F(SlurmScriptsTest, AMissingOrFailingSetupHookStopsTheJobBeforeSrun) {
  write_exe("fake-rarlhf", kFakeRarlhf);
  tmp_->write("submit/configs/x/y.json", "{}");
  tmp_->write("failing-setup.sh", "echo loading modules\nfalse\n");
  for (const std::string& hook : {root_ + "/no-such-setup.sh", root_ + "/failing-setup.sh"}) {
    auto env = slurm_env("779");
    env["RARLHF_BIN"] = root_ + "/fake-rarlhf";
    env["RARLHF_SLURM_SETUP"] = hook;
    ASSERT_NE(run({"bash", kSrc + "/scripts/slurm/train.sbatch", "configs/x/y.json"}, env, log("batch.out"), 60), 0)
        << hook;
    std::vector<std::string> out;
    for (const auto& l : lines_of(log("batch.out"))) {
      if (l != "loading modules") out.push_back(l);  // the hook's own output
    }
    ASSERT_EQ(out.size(), 1u) << "one error line:\n" << read_file(log("batch.out"));
    EXPECT_TRUE(contains(out[0], "RARLHF_SLURM_SETUP='" + hook + "'")) << out[0];
    EXPECT_FALSE(fs::exists(log("srun.log"))) << "srun must not run";
    EXPECT_FALSE(fs::exists(log("scontrol.log")));
  }
}

TEST_F(SlurmScriptsTest, AnArrayTaskRequeuesItselfAlone) {
  write_exe("fake-rarlhf", kFakeRarlhf);
  tmp_->write("submit/configs/x/y.json", "{}");
  // Slurm gives the first task of array 5000 the job id 5000 itself: a bare "5000" names the whole array.
  for (const auto& [task, job_id] : std::vector<std::pair<std::string, std::string>>{{"0", "5000"}, {"1", "5001"}}) {
    auto env = slurm_env(job_id);
    env["RARLHF_BIN"] = root_ + "/fake-rarlhf";
    env["SLURM_ARRAY_JOB_ID"] = "5000";
    env["SLURM_ARRAY_TASK_ID"] = task;
    ASSERT_EQ(run({"bash", kSrc + "/scripts/slurm/seeds.sbatch", "train", "configs/x/y.json", "--set",
                   "model.path=runs/x-sft/4999_{seed}/policy"},
                  env, log("batch.out"), 60),
              0)
        << read_file(log("batch.out"));
  }
  EXPECT_EQ(lines_of(log("scontrol.log")), (std::vector<std::string>{"requeue 5000_0", "requeue 5000_1"}));
  const auto calls = lines_of(log("rarlhf.log"));
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_TRUE(contains(calls[1], "--set run.seed=1 --set run.out_dir=runs/x-y/5000_1 --resume")) << calls[1];
  EXPECT_TRUE(contains(calls[1], "model.path=runs/x-sft/4999_1/policy")) << calls[1];
}

TEST_F(SlurmScriptsTest, GridSubmitsEveryCellWithNumericDependenciesOnAMultiClusterSite) {
  auto env = slurm_env("1");
  const std::string grid_log = log("grid.out");
  ASSERT_EQ(run({"bash", kSrc + "/scripts/slurm/grid.sh"}, env, grid_log, 60), 0) << read_file(grid_log);
  // The header's count.
  std::smatch m;
  const std::string header = read_file(kSrc + "/scripts/slurm/grid.sh");
  ASSERT_TRUE(std::regex_search(header, m, std::regex(R"((\d+) sbatch submissions in all)"))) << "header count";
  const size_t promised = std::stoul(m[1]);

  struct Sub {
    std::string id, args;
  };
  std::vector<Sub> subs;
  for (const auto& l : lines_of(log("sbatch.log"))) subs.push_back({l.substr(0, l.find(' ')), l.substr(l.find(' '))});
  EXPECT_EQ(subs.size(), promised);
  EXPECT_EQ(subs.size(), 16u) << "2 tasks x (SFT, RLHF, RA-RLHF, their 3 evals, 2 baseline evals)";
  auto find = [&](const std::string& what) -> const Sub* {
    const Sub* hit = nullptr;
    for (const auto& s : subs) {
      if (contains(s.args, what)) {
        EXPECT_EQ(hit, nullptr) << "twice: " << what;
        hit = &s;
      }
    }
    EXPECT_NE(hit, nullptr) << "never submitted: " << what;
    return hit;
  };
  std::set<std::string> earlier;
  const std::regex dep(R"(--dependency=aftercorr:(\S+))");
  for (const auto& s : subs) {
    EXPECT_TRUE(contains(s.args, " --parsable --array=0-2 ")) << s.args;
    for (auto it = std::sregex_iterator(s.args.begin(), s.args.end(), dep); it != std::sregex_iterator(); ++it) {
      const std::string d = (*it)[1];
      EXPECT_TRUE(std::regex_match(d, std::regex("[0-9]+"))) << "not a numeric job id: " << s.args;
      EXPECT_TRUE(earlier.count(d)) << "not an earlier submission: " << s.args;
    }
    // Every config it names exists.
    std::smatch c;
    ASSERT_TRUE(std::regex_search(s.args, c, std::regex(R"( (configs/paper/\S+\.json))"))) << s.args;
    EXPECT_TRUE(fs::exists(kSrc + "/" + c[1].str())) << c[1];
    earlier.insert(s.id);
  }
  for (const std::string task : {"imdb", "jigsaw"}) {
    const Sub* sft = find("seeds.sbatch sft configs/paper/" + task + "/sft.json");
    ASSERT_NE(sft, nullptr);
    for (const std::string method : {"rlhf", "ra-rlhf"}) {
      const Sub* tr = find("seeds.sbatch train configs/paper/" + task + "/" + method + ".json");
      ASSERT_NE(tr, nullptr);
      EXPECT_TRUE(contains(tr->args, "--dependency=aftercorr:" + sft->id + " ")) << tr->args;
      EXPECT_TRUE(contains(tr->args, "--set model.path=runs/" + task + "-sft/" + sft->id + "_{seed}/policy")) << tr->args;
      const Sub* ev = find("seeds.sbatch eval configs/paper/" + task + "/" + method + ".json");
      ASSERT_NE(ev, nullptr);
      EXPECT_TRUE(contains(ev->args, "--dependency=aftercorr:" + tr->id + " ")) << ev->args;
      EXPECT_TRUE(contains(ev->args, "--model runs/" + task + "-" + method + "/" + tr->id + "_{seed}/policy")) << ev->args;
    }
    const Sub* sft_eval = find("seeds.sbatch eval configs/paper/" + task + "/sft.json");
    ASSERT_NE(sft_eval, nullptr);
    EXPECT_TRUE(contains(sft_eval->args, "--model runs/" + task + "-sft/" + sft->id + "_{seed}/policy")) << sft_eval->args;
    for (const std::string baseline : {"gpt2", "gpt2-prompted"}) {
      const Sub* b = find("seeds.sbatch eval configs/paper/" + task + "/" + baseline + ".json");
      ASSERT_NE(b, nullptr);
      EXPECT_FALSE(contains(b->args, "--dependency")) << b->args;
      EXPECT_FALSE(contains(b->args, "--model")) << "the config's own model.path: " << b->args;
    }
  }
  // The sweep manifest names what the jobs will write: per task and seed, each eval's eval.json
  // under its eval job and each training stage's metrics.jsonl under its training job.
  const auto manifest = nlohmann::json::parse(read_file(root_ + "/grid/sweep.json"));
  ASSERT_EQ(manifest["cells"].size(), 6u);  // 2 tasks x seeds 0-2
  const Sub* ra_eval = find("seeds.sbatch eval configs/paper/jigsaw/ra-rlhf.json");
  const Sub* ra_train = find("seeds.sbatch train configs/paper/jigsaw/ra-rlhf.json");
  ASSERT_TRUE(ra_eval && ra_train);
  const auto& cell = manifest["cells"][4];  // jigsaw, seed 1
  EXPECT_EQ(cell["point"], "jigsaw");
  EXPECT_EQ(cell["seed"], 1);
  EXPECT_EQ(cell["evals"]["ra-rlhf"], "runs/jigsaw-ra-rlhf/" + ra_eval->id + "_1/eval-test/eval.json");
  EXPECT_EQ(cell["metrics"]["ra-rlhf"], "runs/jigsaw-ra-rlhf/" + ra_train->id + "_1/metrics.jsonl");
  EXPECT_EQ(cell["evals"].size(), 5u);
  // The paths are relative to the checkout grid.sh ran in, which the manifest names.
  EXPECT_TRUE(fs::equivalent(manifest["base"].get<std::string>(), kSrc)) << manifest["base"];
  if (fs::exists(kBin)) {
    // Those files, made up here, aggregate through `rarlhf sweep --aggregate`: per (task, model) the
    // mean over the seeds; KL = the mean of each training stage's last 10 objective/kl; SFT (the
    // reference) 0; the baselines none.
    const std::string work = root_ + "/work";
    std::map<std::string, double> want_reward, want_kl;
    for (const auto& c : manifest["cells"]) {
      const int seed = c["seed"].get<int>();
      for (auto it = c["evals"].begin(); it != c["evals"].end(); ++it) {
        const double r = seed + 0.25 * static_cast<double>(it.key().size());
        tmp_->write("work/" + it->get<std::string>(),
                    nlohmann::json{{"name", it.key()}, {"reward", {{"mean", r}}},
                                   {"tail", {{"reward", {{"mean", r - 1}}}, {"count", 3}}}}.dump());
        want_reward[c["point"].get<std::string>() + "/" + it.key()] += r / 3;
      }
      for (auto it = c["metrics"].begin(); it != c["metrics"].end(); ++it) {
        std::string lines;
        for (int i = 0; i < 12; ++i)
          lines += nlohmann::json{{"iteration", i}, {"objective/kl", i < 2 ? 100.0 : seed + 1.0}}.dump() + "\n";
        tmp_->write("work/" + it->get<std::string>(), lines);
        want_kl[c["point"].get<std::string>() + "/" + it.key()] += (seed + 1.0) / 3;  // the last 10 only
      }
    }
    // The made-up files lie under work/: a copy of the manifest with that base aggregates them from
    // any directory.
    nlohmann::json moved = manifest;
    moved["base"] = work;
    tmp_->write("work/sweep.json", moved.dump());
    const std::string agg_log = log("aggregate.out");
    ASSERT_EQ(run({"bash", "-c", "cd / && " + kBin + " sweep --aggregate " + work}, {}, agg_log, 60), 0)
        << read_file(agg_log);
    const auto summary = nlohmann::json::parse(read_file(work + "/summary.json"));
    ASSERT_EQ(summary["groups"].size(), 10u);  // 2 tasks x 5 models
    for (const auto& g : summary["groups"]) {
      const std::string key = g["point"].get<std::string>() + "/" + g["model"].get<std::string>();
      EXPECT_NEAR(g["mean"]["reward"].get<double>(), want_reward.at(key), 1e-12) << key;
      EXPECT_NEAR(g["std"]["reward"].get<double>(), 1.0, 1e-12) << key;  // seeds 0, 1, 2 apart by 1
      if (want_kl.count(key)) {
        EXPECT_NEAR(g["mean"]["kl"].get<double>(), want_kl.at(key), 1e-12) << key;
      } else if (g["model"] == "sft") {
        EXPECT_EQ(g["mean"]["kl"].get<double>(), 0.0) << key;
      } else {
        EXPECT_TRUE(g["mean"]["kl"].is_null()) << key;
      }
    }
  }

  // The dry run prints the same 16 submissions and submits nothing.
  fs::remove(log("sbatch.log"));
  fs::remove(log("sbatch.count"));
  env["RARLHF_DRY_RUN"] = "1";
  ASSERT_EQ(run({"bash", kSrc + "/scripts/slurm/grid.sh"}, env, grid_log, 60), 0) << read_file(grid_log);
  const auto dry = lines_of(grid_log);
  EXPECT_EQ(std::count_if(dry.begin(), dry.end(), [](auto& l) { return l.rfind("sbatch ", 0) == 0; }),
            static_cast<long>(promised))
      << read_file(grid_log);
  EXPECT_FALSE(fs::exists(log("sbatch.log")));
}

// Slurm's step syntax (0-10:2) would run other seeds than the manifest lists: refused up front.
TEST_F(SlurmScriptsTest, GridRefusesSeedsItCannotList) {
  for (const std::string seeds : {"0-10:2", "a", "3-1"}) {
    auto env = slurm_env("1");
    env["RARLHF_SEEDS"] = seeds;
    const std::string grid_log = log("grid.out");
    EXPECT_NE(run({"bash", kSrc + "/scripts/slurm/grid.sh"}, env, grid_log, 60), 0) << seeds;
    const std::string out = read_file(grid_log);
    EXPECT_TRUE(contains(out, "grid: RARLHF_SEEDS='" + seeds + "'")) << out;
    EXPECT_FALSE(fs::exists(log("sbatch.log"))) << "nothing submitted: " << seeds;
  }
}

TEST_F(SlurmScriptsTest, GridStopsWhenSbatchPrintsNoJobId) {
  auto env = slurm_env("1");
  env["FAKE_SBATCH_REPLY"] = "sbatch: warning: something odd";
  const std::string grid_log = log("grid.out");
  EXPECT_NE(run({"bash", kSrc + "/scripts/slurm/grid.sh"}, env, grid_log, 60), 0);
  const std::string out = read_file(grid_log);
  EXPECT_TRUE(contains(out, "grid: sbatch for imdb-sft printed 'sbatch: warning: something odd', not a job id")) << out;
  EXPECT_EQ(lines_of(log("sbatch.log")).size(), 1u) << "nothing submitted after the bad reply";
}

TEST(SlurmScripts, PassShellcheck) {
  if (std::system("command -v shellcheck >/dev/null 2>&1") != 0) GTEST_SKIP() << "shellcheck not installed";
  const std::string cmd = "cd '" + kSrc + "' && shellcheck -x scripts/slurm/*.sbatch scripts/slurm/*.sh scripts/launch_local.sh scripts/bench_scaling.sh";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST(SlurmScripts, DryRunsPrintACheckedCommand) {
  if (!fs::exists(kBin)) GTEST_SKIP() << "build the rarlhf target first";
  rarlhf::testing::TempDir tmp("slurmdry");
  const std::string log = tmp.path("out.log");
  const std::string hook = tmp.write("setup.sh", "module load cuda\n");
  std::map<std::string, std::string> env = {{"RARLHF_DRY_RUN", "1"}, {"SLURM_JOB_ID", "4242"},
                                            {"SLURM_SUBMIT_DIR", kSrc}, {"RARLHF_BIN", kBin}};
  struct Case {
    std::vector<std::string> args;
    std::map<std::string, std::string> extra_env;
    std::vector<std::string> expect;
    long lines = 1;  // the srun line (and the setup hook's)
  };
  const std::vector<Case> cases = {
      {{"scripts/slurm/sft.sbatch", "configs/paper/imdb/sft.json"}, {},
       {"srun --kill-on-bad-exit=1 ", " sft --config configs/paper/imdb/sft.json ",
        "run.out_dir=runs/imdb-sft/4242 --resume"}},
      {{"scripts/slurm/train.sbatch", "configs/paper/jigsaw/ra-rlhf.json", "--set", "ppo.batch_size=256"}, {},
       {" train --config configs/paper/jigsaw/ra-rlhf.json ", "run.out_dir=runs/jigsaw-ra-rlhf/4242 --resume",
        "--set ppo.batch_size=256"}},
      {{"scripts/slurm/eval.sbatch", "configs/paper/imdb/rlhf.json", "--model", "runs/imdb-rlhf/1/policy"}, {},
       {" eval --config configs/paper/imdb/rlhf.json ", "run.out_dir=runs/imdb-rlhf/4242 --model runs/imdb-rlhf/1/policy"}},
      {{"scripts/slurm/seeds.sbatch", "train", "configs/paper/imdb/ra-rlhf.json", "--set",
        "model.path=runs/imdb-sft/9_{seed}/policy"},
       {{"SLURM_ARRAY_JOB_ID", "4240"}, {"SLURM_ARRAY_TASK_ID", "2"}},
       {"--set run.seed=2 ", "run.out_dir=runs/imdb-ra-rlhf/4240_2 --resume", "model.path=runs/imdb-sft/9_2/policy"}},
      {{"scripts/slurm/seeds.sbatch", "eval", "configs/paper/jigsaw/gpt2-prompted.json"},
       {{"SLURM_ARRAY_JOB_ID", "4240"}, {"SLURM_ARRAY_TASK_ID", "1"}, {"SLURM_CPUS_PER_TASK", "8"},
        {"RARLHF_SLURM_SETUP", hook}},
       {"source " + hook + "\n", "srun --kill-on-bad-exit=1 --cpus-per-task=8 ",
        " eval --config configs/paper/jigsaw/gpt2-prompted.json --set run.seed=1 --set run.out_dir=runs/jigsaw-gpt2-prompted/4240_1 \n"},
       2},
  };
  for (const auto& c : cases) {
    auto e = env;
    for (const auto& [k, v] : c.extra_env) e[k] = v;
    std::vector<std::string> argv = {"bash", kSrc + "/" + c.args[0]};
    argv.insert(argv.end(), c.args.begin() + 1, c.args.end());
    ASSERT_EQ(run(argv, e, log, 60), 0) << c.args[0] << ": " << read_file(log);
    const std::string out = read_file(log);
    for (const auto& s : c.expect) EXPECT_NE(out.find(s), std::string::npos) << c.args[0] << " lacks '" << s << "':\n" << out;
    EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), c.lines) << "the command line only:\n" << out;
  }
  // A config the binary rejects, a missing config and a missing setup hook fail the dry run.
  ASSERT_NE(run({"bash", kSrc + "/scripts/slurm/train.sbatch", "configs/paper/imdb/ra-rlhf.json", "--set",
                 "ppo.batch_size=-3"},
                env, log, 60),
            0);
  ASSERT_NE(run({"bash", kSrc + "/scripts/slurm/train.sbatch", "configs/no-such.json"}, env, log, 60), 0);
  env["RARLHF_SLURM_SETUP"] = tmp.path("no-such-setup.sh");
  ASSERT_NE(run({"bash", kSrc + "/scripts/slurm/train.sbatch", "configs/paper/imdb/rlhf.json"}, env, log, 60), 0);
  EXPECT_TRUE(contains(read_file(log), "RARLHF_SLURM_SETUP")) << read_file(log);
}
