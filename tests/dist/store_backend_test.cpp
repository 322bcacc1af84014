// Both TCPStore backends rendezvous two ranks (threads of this test, one Gloo group each) and carry
// an all-reduce: the classic backend on every LibTorch, libuv where this LibTorch has it (>= 2.4
// and built with libuv; Debian's 2.6 is not). "auto" asks for libuv and falls back to classic.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rarlhf/common/error.h"
#include "rarlhf/dist/communicator.h"
#include "support/ranks.h"

using namespace rarlhf;

namespace {

// Two ranks over `backend`; returns what each rank's all-reduce of (rank + 1) gave, or throws.
std::vector<double> two_rank_sum(const std::string& backend) {
  std::vector<double> got(2, 0.0);
  rarlhf::testing::run_ranks(
      2, [&](int r, std::shared_ptr<dist::Communicator> comm) { got[r] = comm->sum(r + 1.0); }, backend);
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
