// Graceful stop: SIGTERM, SIGINT and SIGUSR1 (Slurm's --signal=USR1@N before a time limit) set a
// flag; long loops (train, sft) finish the current step, checkpoint and return.
#pragma once
#include <atomic>

namespace rarlhf {

extern std::atomic<bool> g_stop_requested;
void install_stop_signal_handlers();

// Makes `handler` (async-signal-safe) the action for SIGINT, SIGTERM and SIGUSR1, run on a thread
// of its own that only waits: the first call starts it, then blocks the three signals in the
// calling thread, so that threads started afterwards (OpenMP's and oneDNN's pools) never take
// them. Why: a stop signal handled on a thread inside oneDNN's sgemm corrupted the heap ("corrupted
// size vs. prev_size", glibc abort) in about 1 of 3 SIGINTs sent to `rarlhf run` while it timed a
// SmolLM2 prefill; with the signals kept off the compute threads, none in 10.
void take_stop_signals(void (*handler)(int));

// In a forked child before exec: the three signals unblocked again, as a new program expects.
void unblock_stop_signals();

}  // namespace rarlhf
