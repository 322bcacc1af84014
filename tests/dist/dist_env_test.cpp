// Launcher-environment parsing (torchrun and Slurm variables), the Slurm hostlist's first host,
// batch sharding, and the world-of-one communicator (every collective is the identity).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "rarlhf/common/error.h"
#include "rarlhf/dist/communicator.h"

using namespace rarlhf;
using namespace rarlhf::dist;

TEST(DistEnv, NoVariablesIsASingleProcess) {
  DistEnv d = detect_env(std::map<std::string, std::string>{});
  EXPECT_EQ(d.rank, 0);
  EXPECT_EQ(d.world_size, 1);
  EXPECT_EQ(d.source, "none");
}

TEST(DistEnv, TorchrunVariables) {
  DistEnv d = detect_env({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"}, {"LOCAL_WORLD_SIZE", "2"},
                          {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "12345"}});
  EXPECT_EQ(d.rank, 3);
  EXPECT_EQ(d.world_size, 8);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 2);
  EXPECT_EQ(d.master_addr, "node7");
  EXPECT_EQ(d.master_port, 12345);
  EXPECT_EQ(d.source, "torchrun");
}

TEST(DistEnv, SlurmVariablesAndDerivedMaster) {
  DistEnv d = detect_env({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "6"}, {"SLURM_LOCALID", "2"},
                          {"SLURM_NTASKS_PER_NODE", "3(x2)"}, {"SLURM_NODELIST", "gpu[017-018]"},
                          {"SLURM_JOB_ID", "4242"}, {"SLURM_STEP_ID", "0"}});
  EXPECT_EQ(d.rank, 5);
  EXPECT_EQ(d.world_size, 6);
  EXPECT_EQ(d.local_rank, 2);
  EXPECT_EQ(d.local_world_size, 3);
  EXPECT_EQ(d.master_addr, "gpu017");
  EXPECT_EQ(d.master_port, slurm_master_port(4242, 0));
  EXPECT_EQ(d.source, "slurm");
}

TEST(DistEnv, SlurmStepSizeWinsAndTheBatchShellIsOneProcess) {
  // srun -n 2 inside a 4-task allocation: the step has 2 tasks.
  DistEnv step = detect_env({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "4"}, {"SLURM_STEP_NUM_TASKS", "2"}});
  EXPECT_EQ(step.world_size, 2);
  EXPECT_EQ(step.rank, 1);
  // The batch script itself (no srun): SLURM_NTASKS=4 and SLURM_PROCID=0 are set, but it is one process.
  DistEnv batch = detect_env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}, {"SLURM_NODELIST", "n[1-2]"}});
  EXPECT_EQ(batch.world_size, 1);
  EXPECT_EQ(batch.source, "slurm-batch");
}

TEST(DistEnv, TorchrunWinsInTheSlurmBatchShell) {  // no srun step: launch_local.sh in an allocation
  DistEnv d = detect_env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "4"}});
  EXPECT_EQ(d.world_size, 2);
  EXPECT_EQ(d.source, "torchrun");
}

TEST(DistEnv, SlurmStepWinsOverStrayLauncherVariables) {
  // A RANK/WORLD_SIZE/MASTER_ADDR left in the user's environment must not give every task rank 0.
  const std::map<std::string, std::string> step = {
      {"SLURM_PROCID", "3"}, {"SLURM_NTASKS", "4"}, {"SLURM_STEP_NUM_TASKS", "4"}, {"SLURM_STEP_ID", "0"},
      {"SLURM_LOCALID", "1"}, {"SLURM_STEP_NODELIST", "gpu[07-08]"}, {"SLURM_NODELIST", "gpu[05-08]"},
      {"SLURM_STEP_TASKS_PER_NODE", "2(x2)"}, {"SLURM_JOB_ID", "77"}};
  auto env = step;
  env.insert({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"LOCAL_WORLD_SIZE", "8"}, {"MASTER_ADDR", "localhost"}});
  DistEnv d = detect_env(env);
  EXPECT_EQ(d.source, "slurm");
  EXPECT_EQ(d.rank, 3);
  EXPECT_EQ(d.world_size, 4);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.local_world_size, 2);
  EXPECT_EQ(d.master_addr, "gpu07");  // the step's first node, not the job's
  ASSERT_EQ(d.warnings.size(), 2u);
  EXPECT_NE(d.warnings[0].find("RANK=0 WORLD_SIZE=1"), std::string::npos) << d.warnings[0];
  EXPECT_NE(d.warnings[1].find("MASTER_ADDR=localhost ignored"), std::string::npos) << d.warnings[1];
  // Agreeing values are no news.
  auto agree = step;
  agree.insert({{"RANK", "3"}, {"WORLD_SIZE", "4"}, {"MASTER_ADDR", "gpu07"}});
  EXPECT_TRUE(detect_env(agree).warnings.empty());
  // RARLHF_MASTER_ADDR / RARLHF_MASTER_PORT choose explicitly (e.g. a fast interface's host name).
  auto chosen = env;
  chosen.insert({{"RARLHF_MASTER_ADDR", "gpu07-ib"}, {"RARLHF_MASTER_PORT", "23456"}, {"MASTER_PORT", "1234"}});
  DistEnv c = detect_env(chosen);
  EXPECT_EQ(c.master_addr, "gpu07-ib");
  EXPECT_EQ(c.master_port, 23456);
  chosen.erase("RARLHF_MASTER_PORT");
  EXPECT_EQ(detect_env(chosen).master_port, 1234);
}

TEST(DistEnv, ALauncherInsideAOneTaskStepKeepsItsRanks) {
  // launch_local.sh 2 ... under `srun -n 1`: the step has one task, the launcher made two ranks.
  DistEnv d = detect_env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "1"}, {"SLURM_STEP_NUM_TASKS", "1"},
                          {"SLURM_STEP_ID", "0"}, {"RANK", "1"}, {"WORLD_SIZE", "2"}, {"LOCAL_WORLD_SIZE", "2"},
                          {"MASTER_ADDR", "127.0.0.1"}, {"MASTER_PORT", "31000"}});
  EXPECT_EQ(d.source, "torchrun");
  EXPECT_EQ(d.rank, 1);
  EXPECT_EQ(d.world_size, 2);
  EXPECT_EQ(d.local_world_size, 2);
  EXPECT_EQ(d.master_addr, "127.0.0.1");
  EXPECT_EQ(d.master_port, 31000);
  EXPECT_TRUE(d.warnings.empty());
}

TEST(DistEnv, SlurmPortsAreStablePerStepAndApartForNeighbourJobs) {
  // Every rank of a step computes the same port, and again after a requeue (same job id).
  EXPECT_EQ(slurm_master_port(123456, 0), slurm_master_port(123456, 0));
  std::set<int> ports;
  for (int64_t job = 5000; job < 7000; ++job) {  // 2000 consecutive jobs sharing nodes
    for (int64_t step = 0; step < 3; ++step) {
      const int p = slurm_master_port(job, step);
      EXPECT_GE(p, 10000);
      EXPECT_LT(p, 30000);  // below Linux's ephemeral range (32768-60999)
      ports.insert(p);
    }
  }
  EXPECT_EQ(ports.size(), 6000u);
  EXPECT_EQ(slurm_master_port(4294967294LL, 4294967294LL), slurm_master_port(4294967294LL % 2000, 4));
  // The step id comes from the environment, and Slurm's special ids do not overflow the parse.
  DistEnv d = detect_env({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_STEP_ID", "4294967294"},
                          {"SLURM_JOB_ID", "99"}});
  EXPECT_EQ(d.master_port, slurm_master_port(99, 4294967294LL));
}

TEST(DistEnv, StoreBackendChoice) {
  EXPECT_EQ(detect_env(std::map<std::string, std::string>{}).store_backend, "auto");
  EXPECT_EQ(detect_env({{"RARLHF_TCPSTORE_BACKEND", "classic"}}).store_backend, "classic");
  EXPECT_THROW(detect_env({{"RARLHF_TCPSTORE_BACKEND", "uv"}}), ConfigError);
}

TEST(DistDevice, LocalRankMapsToItsGpuOrTheOnlyVisibleOne) {
  std::string note;
  EXPECT_EQ(cuda_device_for_rank(3, 4, &note), 3);  // one node, every GPU visible to every task
  EXPECT_TRUE(note.empty());
  EXPECT_EQ(cuda_device_for_rank(3, 1, &note), 0);  // --gpus-per-task=1: each task sees only its own
  EXPECT_NE(note.find("using cuda:0"), std::string::npos) << note;
  EXPECT_EQ(cuda_device_for_rank(0, 1), 0);
  EXPECT_THROW(cuda_device_for_rank(0, 0), ConfigError);
}

TEST(DistEnv, BadValuesAreConfigErrorsNamingTheVariable) {
  auto msg = [](const std::map<std::string, std::string>& env) {
    try {
      detect_env(env);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(msg({{"RANK", "x"}, {"WORLD_SIZE", "2"}}).find("RANK"), std::string::npos);
  EXPECT_NE(msg({{"RANK", "2"}, {"WORLD_SIZE", "2"}}).find("rank 2"), std::string::npos);
  EXPECT_NE(msg({{"RANK", "0"}}).find("WORLD_SIZE"), std::string::npos);
  EXPECT_NE(msg({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "70000"}}).find("MASTER_PORT"),
            std::string::npos);
  EXPECT_NE(msg({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "0"}, {"SLURM_STEP_ID", "0"}}).find("SLURM_NTASKS"),
            std::string::npos);
}

TEST(DistEnv, FirstSlurmHost) {
  EXPECT_EQ(first_slurm_host("node01"), "node01");
  EXPECT_EQ(first_slurm_host("node[01-04,07],gpu3"), "node01");
  EXPECT_EQ(first_slurm_host("a-[9,10]-ib"), "a-9-ib");
  EXPECT_EQ(first_slurm_host("gpu3,node[1-2]"), "gpu3");
  EXPECT_THROW(first_slurm_host("node[01-"), ConfigError);
}

TEST(DistShard, ContiguousEqualBlocks) {
  Shard s0 = shard_of(16, 0, 4), s3 = shard_of(16, 3, 4);
  EXPECT_EQ(s0.begin, 0);
  EXPECT_EQ(s0.end, 4);
  EXPECT_EQ(s3.begin, 12);
  EXPECT_EQ(s3.end, 16);
  EXPECT_THROW(shard_of(10, 0, 4), ConfigError);  // the global batch must divide by the world
}

TEST(DistCommunicator, WorldOfOneIsIdentity) {
  Communicator c;
  EXPECT_EQ(c.world_size(), 1);
  EXPECT_TRUE(c.is_main());
  at::Tensor t = torch::tensor({1.5, -2.0});
  c.all_reduce_sum(t);
  EXPECT_TRUE(torch::equal(t, torch::tensor({1.5, -2.0})));
  EXPECT_TRUE(torch::equal(c.all_gather(t), t));
  EXPECT_DOUBLE_EQ(c.sum(3.25), 3.25);
}
