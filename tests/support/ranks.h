// Test support: a world of `world` data-parallel ranks as threads of the test process, each with
// its own Gloo process group over a TCPStore on a free local port.
#pragma once
#include <functional>
#include <memory>
#include <string>

#include "rarlhf/dist/communicator.h"

namespace rarlhf::testing {

// Runs body(rank, communicator) on every rank concurrently and joins them; rethrows the first
// rank's exception (in rank order) after all have finished. `store_backend` as DistEnv's.
void run_ranks(int world, const std::function<void(int rank, std::shared_ptr<dist::Communicator>)>& body,
               const std::string& store_backend = "auto");

}  // namespace rarlhf::testing
