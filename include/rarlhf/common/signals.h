// Graceful stop: SIGTERM, SIGINT and SIGUSR1 (Slurm's --signal=USR1@N before a time limit) set a
// flag; long loops (train, sft) finish the current step, checkpoint and return.
#pragma once
#include <atomic>

namespace rarlhf {

extern std::atomic<bool> g_stop_requested;
void install_stop_signal_handlers();

}  // namespace rarlhf
