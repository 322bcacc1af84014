// See ranks.h.
#include "support/ranks.h"

#include <c10/core/Device.h>

#include <exception>
#include <thread>
#include <vector>

#include "support/files.h"

namespace rarlhf::testing {

void run_ranks(int world, const std::function<void(int rank, std::shared_ptr<dist::Communicator>)>& body,
               const std::string& store_backend) {
  const int port = free_port();
  std::vector<std::exception_ptr> err(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      try {
        dist::DistEnv env;
        env.rank = r;
        env.world_size = world;
        env.master_port = port;
        env.store_backend = store_backend;
        body(r, dist::Communicator::create(env, c10::Device(c10::kCPU), std::chrono::seconds(60)));
      } catch (...) {
        err[r] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : err) {
    if (e) std::rethrow_exception(e);
  }
}

}  // namespace rarlhf::testing
