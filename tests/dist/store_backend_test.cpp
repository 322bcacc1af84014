// Both TCPStore backends rendezvous two ranks (threads of this test, one Gloo group each) and carry
// an all-reduce: the classic backend on every LibTorch, libuv where this LibTorch has it (>= 2.4
// and built with libuv; Debian's 2.6 is not). "auto" asks for libuv and falls back to classic.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <exception>
#include <thread>

#include "rarlhf/common/error.h"
#include "rarlhf/dist/communicator.h"
#include "support/files.h"

using namespace rarlhf;

namespace {

// Two ranks over `backend`; returns what each rank's all-reduce of (rank + 1) gave, or throws.
std::vector<double> two_rank_sum(const std::string& backend) {
  const int port = rarlhf::testing::free_port();
  std::vector<double> got(2, 0.0);
  std::exception_ptr err[2];
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      try {
        dist::DistEnv env;
        env.rank = r;
        env.world_size = 2;
        env.master_port = port;
        env.store_backend = backend;
        auto comm = dist::Communicator::create(env, torch::kCPU, std::chrono::seconds(30));
        got[r] = comm->sum(r + 1.0);
      } catch (...) {
        err[r] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (auto& e : err) {
    if (e) std::rethrow_exception(e);
  }
  return got;
}

}  // namespace

TEST(StoreBackend, ClassicAndAutoRendezvous) {
  if (!dist::c10d_available()) GTEST_SKIP() << "no c10d in this LibTorch";
  EXPECT_EQ(two_rank_sum("classic"), (std::vector<double>{3.0, 3.0}));
  EXPECT_EQ(two_rank_sum("auto"), (std::vector<double>{3.0, 3.0}));
}

TEST(StoreBackend, LibuvWhereThisLibTorchHasIt) {
  if (!dist::c10d_available()) GTEST_SKIP() << "no c10d in this LibTorch";
  std::vector<double> got;
  try {
    got = two_rank_sum("libuv");
  } catch (const std::exception& e) {
    const std::string msg = e.what();
    // The one acceptable failure: this LibTorch has no libuv store, said in so many words.
    ASSERT_NE(msg.find("libuv"), std::string::npos) << msg;
    GTEST_SKIP() << "this LibTorch has no libuv TCPStore: " << msg;
  }
  EXPECT_EQ(got, (std::vector<double>{3.0, 3.0}));
}
