// See process.h.
#include "support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <fstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace rarlhf::testing {

std::string rarlhf_binary() { return std::string(RARLHF_BINARY_DIR) + "/rarlhf"; }

const std::vector<std::string> kLauncherVariables = {
    "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "RARLHF_MASTER_ADDR",
    "RARLHF_MASTER_PORT", "SLURM_PROCID", "SLURM_NTASKS", "SLURM_LOCALID", "SLURM_JOB_ID", "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_JOB_ID", "SLURM_NODELIST", "SLURM_JOB_NODELIST", "SLURM_STEP_NODELIST", "SLURM_SUBMIT_DIR",
    "SLURM_STEP_ID", "SLURM_STEP_NUM_TASKS", "SLURM_CPUS_PER_TASK", "SLURM_NTASKS_PER_NODE"};

pid_t spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env_set,
            const std::string& log) {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& k : kLauncherVariables) env.erase(k);
  for (const auto& [k, v] : env_set) env[k] = v;
  std::vector<std::string> env_strs;
  for (const auto& [k, v] : env) env_strs.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strs) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("spawn failed: " + argv[0]);
  return pid;
}

int wait_for(pid_t pid, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    int st = 0;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == pid) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return -1;
}

int run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
        const std::string& log, int timeout_s) {
  return wait_for(spawn(argv, env, log), std::chrono::seconds(timeout_s));
}

size_t count_lines(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) ++n;
  return n;
}

bool wait_lines(const std::string& path, size_t n, pid_t pid) {
  const auto t0 = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(120)) {
    if (count_lines(path) >= n) return true;
    if (kill(pid, 0) != 0) return false;
    int st = 0;
    if (waitpid(pid, &st, WNOHANG) == pid) return false;  // exited (and reaped: do not wait on it again)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

}  // namespace rarlhf::testing
