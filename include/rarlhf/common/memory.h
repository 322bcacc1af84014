// This process's resident memory (Linux /proc): the current size and the peak since the last reset,
// for the per-stage memory figures in metrics.jsonl and the memory benchmark.
#pragma once
#include <cstdint>

namespace rarlhf {

int64_t current_rss_bytes();  // VmRSS; 0 when /proc is not readable
int64_t peak_rss_bytes();     // VmHWM: the high-water mark since start or the last reset; 0 when unreadable
// Starts a new high-water mark at the current size (writes "5" to /proc/self/clear_refs, Linux >= 4.0).
// Returns false where that is not permitted; the peak then stays the peak since the process started.
bool reset_peak_rss();

}  // namespace rarlhf
