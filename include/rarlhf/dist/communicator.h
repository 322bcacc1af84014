// Data-parallel process group for train/sft: rank, world size and rendezvous from the standard
// launcher environment (torchrun's RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT or Slurm's
// SLURM_PROCID/SLURM_NTASKS/SLURM_LOCALID), and the four collectives the trainers need, over torch
// c10d (TCPStore rendezvous; Gloo for CPU tensors, NCCL for CUDA). A world of one needs no c10d:
// every collective is then the identity, so single-process runs take the same code path.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace rarlhf::dist {

struct DistEnv {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;  // ranks on this node: LOCAL_WORLD_SIZE or SLURM_NTASKS_PER_NODE ("2(x3)" -> 2)
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "none";  // "torchrun", "slurm", "slurm-batch" (batch shell, no srun: one process) or "none"
  std::string store_backend = "auto";  // RARLHF_TCPSTORE_BACKEND: auto (libuv where built in), libuv or classic
  std::vector<std::string> warnings;   // disagreements between the launcher's variables, logged by setup_rank
};

// Reads the environment in `env` (tests pass a map; the program passes the process environment via
// the overload below). Which launcher:
//   - inside a multi-task srun step (SLURM_PROCID + SLURM_STEP_ID or SLURM_STEP_NUM_TASKS): Slurm's
//     SLURM_PROCID / SLURM_STEP_NUM_TASKS (else SLURM_NTASKS) / SLURM_LOCALID, even when RANK or
//     WORLD_SIZE are set (a warning names the disagreement);
//   - else RANK / WORLD_SIZE / LOCAL_RANK (torchrun, launch_local.sh, also inside a one-task step);
//   - else the Slurm batch shell without srun ("slurm-batch") or nothing: one process.
// Master address: RARLHF_MASTER_ADDR; in a Slurm step the first host of SLURM_STEP_NODELIST (else
// SLURM_NODELIST / SLURM_JOB_NODELIST), a different MASTER_ADDR warned about and ignored; otherwise
// MASTER_ADDR, the job's first host, 127.0.0.1. Port: RARLHF_MASTER_PORT, MASTER_PORT, in a Slurm
// step slurm_master_port(SLURM_JOB_ID, SLURM_STEP_ID), else 29500. Throws ConfigError naming the
// variable when a value is malformed or inconsistent (rank outside [0, world)).
DistEnv detect_env(const std::map<std::string, std::string>& env);
DistEnv detect_env();

// The rendezvous port of a Slurm step: 10000 + (job id mod 2000) * 10 + step id mod 10, in
// [10000, 29999] (below Linux's ephemeral range): jobs whose ids are less than 2000 apart, and up to
// ten concurrent steps of one job, never share a port on a node. Same on every rank of the step and
// again after a requeue (same job id).
int slurm_master_port(int64_t job_id, int64_t step_id);

// The CUDA device index for local rank `local_rank` when `visible` devices are visible:
// local_rank itself when it exists (one node, every GPU visible to every task), else 0 (sites that
// bind each task to its own GPU: --gpus-per-task, CUDA_VISIBLE_DEVICES per task); `note` then says
// so. ConfigError when no device is visible.
int cuda_device_for_rank(int local_rank, int visible, std::string* note = nullptr);

// First host name of a Slurm hostlist: "node[01-04,07],gpu3" -> "node01".
std::string first_slurm_host(const std::string& nodelist);

// True when this build has c10d (a world larger than one is possible).
bool c10d_available();

// Collective timeout: RARLHF_DIST_TIMEOUT_S (seconds, default 600). A dead peer makes a collective
// fail with an error after at most this long instead of hanging the job.
std::chrono::milliseconds collective_timeout();

class Communicator {
 public:
  // World of one: no process group.
  Communicator();
  ~Communicator();
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  // Rendezvous through a TCPStore at env.master_addr:env.master_port (rank 0 hosts it) and create
  // the process group: NCCL when `device` is CUDA, Gloo otherwise. world_size 1 -> like Communicator().
  // Throws ConfigError when world_size > 1 and this build has no c10d / the backend.
  static std::shared_ptr<Communicator> create(const DistEnv& env, const c10::Device& device,
                                              std::chrono::milliseconds timeout = collective_timeout());

  int rank() const { return rank_; }
  int world_size() const { return world_; }
  bool is_main() const { return rank_ == 0; }
  bool distributed() const { return world_ > 1; }

  // In place, element-wise sum over ranks. `t` contiguous; a tensor on another device than the
  // group's (a CPU tensor under NCCL) is staged through the group's device.
  void all_reduce_sum(at::Tensor& t);
  // Concatenation along dim 0 of every rank's `t` in rank order; every rank passes the same shape.
  at::Tensor all_gather(const at::Tensor& t);
  // In place: every rank gets root's values.
  void broadcast(at::Tensor& t, int root = 0);
  void barrier();

  // Sum of a double over ranks (a convenience for metrics and counts; exact for integers < 2^53).
  double sum(double x);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0;
  int world_ = 1;
  c10::Device device_{c10::kCPU};
};

// One rank's process setup for `rarlhf train` / `sft`, in this order: read the environment, gate
// logging to rank 0 (init_logging) and log the launcher warnings, give each local rank its share of
// the usable cores (common/cpus.h) when `threads` <= 0 (auto) and several ranks share a node
// (under Slurm with SLURM_CPUS_PER_TASK each task already has its own count), map a CUDA device to
// cuda_device_for_rank(LOCAL_RANK, visible devices), rendezvous.
struct RankSetup {
  std::shared_ptr<Communicator> comm;
  c10::Device device{c10::kCPU};
};
RankSetup setup_rank(const std::string& log_level, int threads, c10::Device device);

// Sums gradients of `params` over ranks in one flattened buffer (undefined grads count as zero and
// become defined), so that after it every rank holds the same gradient. `extra` (optional, any
// float dtype, CPU) rides along in the same collective and is summed in place (at the gradients'
// precision). A world of one changes nothing.
void all_reduce_gradients(Communicator& comm, const std::vector<at::Tensor>& params, at::Tensor* extra = nullptr);
// Copies rank 0's parameter values to every rank (start of training: identical replicas).
void broadcast_parameters(Communicator& comm, const std::vector<at::Tensor>& params);

// Contiguous block [begin, end) of `n` items owned by `rank` of `world` (n divisible by world).
struct Shard {
  int64_t begin = 0, end = 0;
  int64_t size() const { return end - begin; }
};
Shard shard_of(int64_t n, int rank, int world);

}  // namespace rarlhf::dist
