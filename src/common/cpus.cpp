// See include/rarlhf/common/cpus.h.
#include "rarlhf/common/cpus.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <vector>

namespace rarlhf {

namespace {

std::optional<std::string> read_small_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<double> parse_positive(const std::string& s) {
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !(v > 0) || !std::isfinite(v)) return std::nullopt;
  return v;
}

void keep_min(std::optional<double>& best, std::optional<double> v) {
  if (v && (!best || *v < *best)) best = v;
}

// The cgroup paths of this process from /proc/self/cgroup: v2 ("0::/a/b") and the v1 hierarchy
// that has the cpu controller ("4:cpu,cpuacct:/a/b").
void cgroup_paths(std::string& v2, std::string& v1_cpu) {
  std::ifstream in("/proc/self/cgroup");
  std::string line;
  while (std::getline(in, line)) {
    const auto a = line.find(':');
    const auto b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (controllers.empty()) {
      v2 = path;
    } else {
      std::stringstream cs(controllers);
      std::string c;
      while (std::getline(cs, c, ',')) {
        if (c == "cpu") v1_cpu = path;
      }
    }
  }
}

// "/a/b" -> {"/a/b", "/a", ""}: a limit on any ancestor applies too.
std::vector<std::string> self_and_ancestors(std::string path) {
  std::vector<std::string> out;
  while (!path.empty() && path != "/") {
    out.push_back(path);
    const auto slash = path.rfind('/');
    path = slash == std::string::npos ? "" : path.substr(0, slash);
  }
  out.push_back("");
  return out;
}

std::optional<double> read_cgroup_quota() {
  std::string v2, v1;
  cgroup_paths(v2, v1);
  std::optional<double> best;
  // Inside a container the cgroup namespace makes the process's own cgroup the mount's root, so
  // the root files are read as well.
  for (const auto& p : self_and_ancestors(v2)) {
    if (auto t = read_small_file("/sys/fs/cgroup" + p + "/cpu.max")) keep_min(best, parse_cgroup_cpu_max(*t));
  }
  for (const char* mount : {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"}) {
    for (const auto& p : self_and_ancestors(v1)) {
      auto q = read_small_file(std::string(mount) + p + "/cpu.cfs_quota_us");
      auto per = read_small_file(std::string(mount) + p + "/cpu.cfs_period_us");
      if (q && per) keep_min(best, parse_cgroup_v1_quota(*q, *per));
    }
  }
  return best;
}

}  // namespace

std::optional<double> parse_cgroup_cpu_max(const std::string& text) {
  std::stringstream ss(text);
  std::string quota, period;
  if (!(ss >> quota >> period) || quota == "max") return std::nullopt;
  auto q = parse_positive(quota), p = parse_positive(period);
  if (!q || !p) return std::nullopt;
  return *q / *p;
}

std::optional<double> parse_cgroup_v1_quota(const std::string& quota, const std::string& period) {
  auto q = parse_positive(quota), p = parse_positive(period);  // "-1": no quota
  if (!q || !p) return std::nullopt;
  return *q / *p;
}

CpuLimits read_cpu_limits(const std::map<std::string, std::string>& env) {
  CpuLimits l;
  l.online = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) l.affinity = std::max(1, CPU_COUNT(&set));
  l.cgroup_quota = read_cgroup_quota();
  if (auto it = env.find("SLURM_CPUS_PER_TASK"); it != env.end()) {
    const int n = std::atoi(it->second.c_str());
    if (n > 0) l.slurm_cpus_per_task = n;
  }
  return l;
}

CpuLimits read_cpu_limits() {
  std::map<std::string, std::string> env;
  if (const char* s = std::getenv("SLURM_CPUS_PER_TASK")) env["SLURM_CPUS_PER_TASK"] = s;
  return read_cpu_limits(env);
}

int usable_cpus(const CpuLimits& limits, std::string* why) {
  int n = std::max(1, limits.online);
  std::string reason = "all " + std::to_string(n) + " online CPUs";
  auto consider = [&](int v, const std::string& what) {
    v = std::max(1, v);
    if (v < n) {
      n = v;
      reason = what + " (" + std::to_string(v) + " of " + std::to_string(limits.online) + " online)";
    }
  };
  if (limits.affinity) consider(*limits.affinity, "affinity mask");
  if (limits.cgroup_quota) consider(static_cast<int>(std::ceil(*limits.cgroup_quota - 1e-9)), "cgroup CPU quota");
  if (limits.slurm_cpus_per_task) consider(*limits.slurm_cpus_per_task, "SLURM_CPUS_PER_TASK");
  if (why) *why = reason;
  return n;
}

}  // namespace rarlhf
