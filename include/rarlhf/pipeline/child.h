// The pipeline's stages as child runs of this same binary (`/proc/self/exe <args>`), so that a stage
// behaves exactly like the command a user would type; their output goes straight to ours. A stop
// signal for the pipeline (SIGINT, SIGTERM, SIGUSR1 = Slurm's warning before a time limit) is passed
// on to the running child, which checkpoints and exits; the pipeline then stops after it.
#pragma once
#include <string>
#include <vector>

namespace rarlhf {

// From now on SIGINT/SIGTERM/SIGUSR1 go to the running child (if any) and mark the pipeline stopped.
void forward_stop_signals_to_child();

// True once one of those signals reached this process.
bool stop_signal_seen();

// Runs `rarlhf <args>` (argv[1..]), logging the command line, and waits for it. Returns its exit
// status, 128 + the signal number when a signal killed it. IoError when it cannot be started.
int run_self(const std::vector<std::string>& args);

}  // namespace rarlhf
