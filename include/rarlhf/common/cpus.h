// How many CPUs this process may use, for `run.threads=0` (auto): the smallest of its affinity mask
// (sched_getaffinity: taskset, Slurm's task binding, a cpuset), its cgroup's CPU quota (cgroup v2
// cpu.max, v1 cpu.cfs_quota_us / cpu.cfs_period_us: containers, Slurm's cgroup plugin) rounded up,
// and SLURM_CPUS_PER_TASK inside a Slurm job. std::thread::hardware_concurrency() sees none of
// these and oversubscribes a job that was given a few cores of a large node. Torch-free.
#pragma once
#include <map>
#include <optional>
#include <string>

namespace rarlhf {

struct CpuLimits {
  int online = 1;                      // CPUs the machine has online (sysconf)
  std::optional<int> affinity;         // CPUs in this process's affinity mask
  std::optional<double> cgroup_quota;  // quota / period of the tightest cgroup on this process's path
  std::optional<int> slurm_cpus_per_task;
};

// Reads the limits of the calling process; `env` holds SLURM_CPUS_PER_TASK when set.
CpuLimits read_cpu_limits(const std::map<std::string, std::string>& env);
CpuLimits read_cpu_limits();  // from the process environment

// min(online, affinity, ceil(quota), SLURM_CPUS_PER_TASK), at least 1; `why` (optional) says which
// limit decided, e.g. "affinity mask (3 of 16 online)".
int usable_cpus(const CpuLimits& limits, std::string* why = nullptr);

// A cgroup v2 cpu.max line ("200000 100000" -> 2.0 CPUs; "max 100000" -> no limit). nullopt for no
// limit or a line that does not parse.
std::optional<double> parse_cgroup_cpu_max(const std::string& text);
// cgroup v1: cpu.cfs_quota_us and cpu.cfs_period_us contents ("-1" quota: no limit).
std::optional<double> parse_cgroup_v1_quota(const std::string& quota, const std::string& period);

}  // namespace rarlhf
