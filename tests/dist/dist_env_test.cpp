// Launcher-environment parsing (torchrun and Slurm variables), the Slurm hostlist's first host,
// batch sharding, and the world-of-one communicator (every collective is the identity).
#include <gtest/gtest.h>
#include <torch/torch.h>

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
  EXPECT_EQ(d.master_port, 29500 + 4242 % 1000);
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

TEST(DistEnv, TorchrunWinsOverSlurm) {
  DistEnv d = detect_env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "4"}});
  EXPECT_EQ(d.world_size, 2);
  EXPECT_EQ(d.source, "torchrun");
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
