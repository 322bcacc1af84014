// Child runs of this binary with stop signals passed on: see include/rarlhf/pipeline/child.h.
#include "rarlhf/pipeline/child.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

#include "rarlhf/common/error.h"
#include "rarlhf/common/log.h"
#include "rarlhf/common/process.h"
#include "rarlhf/common/signals.h"

namespace rarlhf {
namespace {

volatile sig_atomic_t g_child = 0;        // pid of the running child (0 = none)
volatile sig_atomic_t g_stop_seen = 0;    // SIGINT/SIGTERM/SIGUSR1 seen: stop after the child exits

// The child checkpoints on these signals itself (install_stop_signal_handlers); a terminal's
// Ctrl-C reaches both processes, so the child may get it twice, which is harmless.
void pass_on(int sig) {
  g_stop_seen = 1;
  if (g_child > 0) kill(static_cast<pid_t>(g_child), sig);
}

std::string errno_text() { return std::strerror(errno); }

}  // namespace

void forward_stop_signals_to_child() { take_stop_signals(pass_on); }

bool stop_signal_seen() { return g_stop_seen != 0; }

int run_self(const std::vector<std::string>& args) {
  std::string shown = "rarlhf";
  for (const auto& a : args) shown += " " + shell_quote(a);
  RARLHF_LOG_INFO("run: {}", shown);
  std::cout.flush();  // the child writes to the same terminal/log: keep the order
  std::cerr.flush();
  std::vector<std::string> copy = args;
  std::string self = "rarlhf";
  std::vector<char*> argv = {self.data()};
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw IoError("run: fork failed: " + errno_text());
  if (pid == 0) {
    unblock_stop_signals();  // the child takes them its own way
    execv("/proc/self/exe", argv.data());
    std::fprintf(stderr, "rarlhf: error: run: cannot exec /proc/self/exe: %s\n", std::strerror(errno));
    _exit(127);
  }
  g_child = pid;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw IoError("run: waitpid failed: " + errno_text());
  }
  g_child = 0;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

}  // namespace rarlhf
