// Test support: child processes with a controlled environment (the CLI, launcher and Slurm-script
// tests): spawn with stdout+stderr to a log, wait with a deadline, count a file's lines while a
// child runs.
#pragma once
#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace rarlhf::testing {

// The built `rarlhf` binary (tests skip when it is missing).
std::string rarlhf_binary();

// The launcher variables a test must not inherit from the shell that runs it (a developer inside a
// Slurm allocation, say): spawn() removes them before applying `env_set`.
extern const std::vector<std::string> kLauncherVariables;

// Starts argv[0] (looked up on PATH) with this process's environment minus kLauncherVariables plus
// `env_set`; stdout and stderr go to `log` (truncated). Throws when the program cannot start.
pid_t spawn(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env_set,
            const std::string& log);

// Exit status (or 128 + signal); -1 when still running after `timeout` (the child is then killed).
int wait_for(pid_t pid, std::chrono::seconds timeout);

// spawn + wait_for.
int run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
        const std::string& log, int timeout_s = 300);

// Lines in `path` (0 when it does not exist).
size_t count_lines(const std::string& path);

// Polls until `path` has `n` lines; false when `pid` exits first (it is then reaped) or after two minutes.
bool wait_lines(const std::string& path, size_t n, pid_t pid);

}  // namespace rarlhf::testing
