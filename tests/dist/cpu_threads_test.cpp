// run.threads=0 ("auto") uses the CPUs this process may use, not the machine's: the cgroup quota
// parsers against hand-worked files, the minimum over the limits, the affinity mask read back after
// sched_setaffinity, and `taskset -c 0 rarlhf train` / SLURM_CPUS_PER_TASK=1 recording one thread
// in build_info.json.
#include <gtest/gtest.h>
#include <sched.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "rarlhf/common/cpus.h"
#include "rarlhf/common/fs.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/tiny_policy.h"

using namespace rarlhf;
namespace fs = std::filesystem;

TEST(CpuLimits, CgroupQuotaFiles) {
  EXPECT_DOUBLE_EQ(*parse_cgroup_cpu_max("200000 100000\n"), 2.0);
  EXPECT_DOUBLE_EQ(*parse_cgroup_cpu_max("150000 100000"), 1.5);
  EXPECT_FALSE(parse_cgroup_cpu_max("max 100000\n"));
  EXPECT_FALSE(parse_cgroup_cpu_max(""));
  EXPECT_FALSE(parse_cgroup_cpu_max("garbage"));
  EXPECT_DOUBLE_EQ(*parse_cgroup_v1_quota("50000\n", "100000\n"), 0.5);
  EXPECT_FALSE(parse_cgroup_v1_quota("-1\n", "100000\n"));
}

TEST(CpuLimits, TheTightestLimitDecides) {
  CpuLimits l;
  l.online = 64;
  std::string why;
  EXPECT_EQ(usable_cpus(l, &why), 64);
  EXPECT_NE(why.find("64 online"), std::string::npos) << why;
  l.affinity = 16;
  EXPECT_EQ(usable_cpus(l, &why), 16);
  EXPECT_NE(why.find("affinity"), std::string::npos) << why;
  l.cgroup_quota = 2.5;  // rounded up: a 2.5-CPU quota keeps 3 threads busy part-time
  EXPECT_EQ(usable_cpus(l, &why), 3);
  EXPECT_NE(why.find("cgroup"), std::string::npos) << why;
  l.slurm_cpus_per_task = 2;
  EXPECT_EQ(usable_cpus(l, &why), 2);
  EXPECT_NE(why.find("SLURM_CPUS_PER_TASK"), std::string::npos) << why;
  l.cgroup_quota = 0.2;  // never below one thread
  EXPECT_EQ(usable_cpus(l), 1);
}

TEST(CpuLimits, AffinityMaskIsRead) {
  const CpuLimits all = read_cpu_limits({});
  ASSERT_TRUE(all.affinity.has_value());
  EXPECT_LE(*all.affinity, all.online);
  // On a thread pinned to one CPU (sched_getaffinity reads the calling thread's mask).
  int pinned = -1;
  std::thread([&] {
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      cpu_set_t cur;
      CPU_ZERO(&cur);
      sched_getaffinity(0, sizeof(cur), &cur);
      if (CPU_ISSET(c, &cur)) {
        CPU_SET(c, &one);
        break;
      }
    }
    if (sched_setaffinity(0, sizeof(one), &one) == 0) pinned = usable_cpus(read_cpu_limits({}));
  }).join();
  EXPECT_EQ(pinned, 1);
  EXPECT_EQ(*read_cpu_limits({{"SLURM_CPUS_PER_TASK", "3"}}).slurm_cpus_per_task, 3);
  EXPECT_FALSE(read_cpu_limits({{"SLURM_CPUS_PER_TASK", "x"}}).slurm_cpus_per_task);
}

TEST(CpuLimits, TrainRecordsTheThreadsItMayUse) {
  const std::string bin = rarlhf::testing::rarlhf_binary();
  if (!fs::exists(bin)) GTEST_SKIP() << "build the rarlhf target first";
  if (!fs::exists(rarlhf::testing::shared_data("tiny-gpt2-vocab21/vocab.json"))) GTEST_SKIP() << "needs ../shared/data";
  if (std::system("command -v taskset >/dev/null 2>&1") != 0) GTEST_SKIP() << "taskset (util-linux) missing";
  const CpuLimits here = read_cpu_limits({});
  const int usable = usable_cpus(here);
  if (usable < 2) GTEST_SKIP() << "needs two usable CPUs to tell a restricted count apart";
  rarlhf::testing::TempDir tmp("cputhreads");
  const std::string cfg = rarlhf::testing::write_tiny_rl_run(tmp.path(), 1);
  auto threads_of = [&](const std::vector<std::string>& prefix, const std::map<std::string, std::string>& env,
                        const std::string& name) {
    std::vector<std::string> argv = prefix;
    argv.insert(argv.end(), {"train", "--config", cfg, "--set", "run.threads=0", "--set",
                             "run.out_dir=" + tmp.path() + "/" + name});
    const std::string log = tmp.path() + "/" + name + ".log";
    EXPECT_EQ(rarlhf::testing::run(argv, env, log, 120), 0) << read_file(log);
    return nlohmann::json::parse(read_file(tmp.path() + "/" + name + "/build_info.json")).at("threads").get<int>();
  };
  EXPECT_EQ(threads_of({bin}, {}, "free"), usable);
  EXPECT_EQ(threads_of({"taskset", "-c", "0", bin}, {}, "taskset"), 1);
  EXPECT_EQ(threads_of({bin}, {{"SLURM_CPUS_PER_TASK", "1"}}, "slurm"), 1);
}
