// Data-parallel SFT equals one process: two ranks (threads, Gloo over localhost) split every
// micro-batch (5 windows -> 2 + 3, the last window shorter) and must log the same losses and end
// with the same weights as a single trainer; the two replicas must be bit-identical to each other.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "rarlhf/model/gpt2.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/dist/communicator.h"
#include "rarlhf/train/sft_trainer.h"
#include "support/files.h"
#include "support/ranks.h"
#include "support/temp_dir.h"
#include "support/tiny_policy.h"

using namespace rarlhf;
namespace fs = std::filesystem;

namespace {

const std::string kTokDir = std::string(RARLHF_SOURCE_DIR) + "/../shared/data/tiny-gpt2-vocab21";

std::vector<nlohmann::json> read_metrics(const std::string& path) { return rarlhf::testing::read_jsonl(path); }

class DistSftTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTokDir + "/vocab.json")) GTEST_SKIP() << "needs ../shared/data/tiny-gpt2-vocab21";
    if (!dist::c10d_available()) GTEST_SKIP() << "this LibTorch has no c10d";
    torch::set_num_threads(1);
    tmp_.emplace("distsft");
    root_ = tmp_->path();
    model_ = rarlhf::testing::write_tiny_gpt2(root_ + "/policy0");
    // Patterned token documents (a learnable toy language), packed; the last window is short.
    std::vector<std::vector<int64_t>> docs;
    for (int d = 0; d < 30; ++d) {
      std::vector<int64_t> doc;
      for (int t = 0; t < 5 + d % 7; ++t) doc.push_back((d * 3 + t * (1 + d % 4)) % 19);
      docs.push_back(doc);
    }
    train_ = pack_sequences(docs, 20, 12);
    if (train_.back().size() == 12) train_.back().resize(7);  // a ragged last window, as packing may leave
    eval_ = pack_sequences({{1, 2, 3, 4, 5, 6}, {7, 8, 9, 10}}, 20, 12);
  }
  Config config(const std::string& out) {
    Config c;
    c.run.out_dir = root_ + "/" + out;
    c.model.path = model_;
    c.sft.learning_rate = 3e-3;
    c.sft.batch_size = 5;
    c.sft.grad_accum = 2;
    c.sft.epochs = 2;
    c.sft.seq_length = 12;
    c.sft.dropout = 0;  // a rank's dropout masks cover its own rows only: no single-process twin
    c.logging.progress = false;
    return c;
  }
  std::optional<rarlhf::testing::TempDir> tmp_;  // removed with the fixture
  std::string root_, model_;
  std::vector<std::vector<int64_t>> train_, eval_;
};

}  // namespace

TEST_F(DistSftTest, TwoRanksMatchOneProcess) {
  ASSERT_NE(train_.back().size(), 12u);  // the ragged last window is part of the test
  SftTrainer one(config("one"), train_, eval_, load_policy(model_, "float32", torch::kCPU), torch::kCPU, kTokDir);
  ASSERT_TRUE(one.train());
  std::vector<std::vector<at::Tensor>> params(2);
  rarlhf::testing::run_ranks(2, [&](int r, std::shared_ptr<dist::Communicator> comm) {
    SftTrainer t(config("two"), train_, eval_, load_policy(model_, "float32", torch::kCPU), torch::kCPU, kTokDir);
    t.set_communicator(comm);
    if (!t.train()) throw std::runtime_error("stopped early");
    for (auto& p : t.policy().lm->parameters()) params[r].push_back(p.detach().clone());
  });
  auto a = read_metrics(root_ + "/one/metrics.jsonl");
  auto b = read_metrics(root_ + "/two/metrics.jsonl");
  ASSERT_EQ(a.size(), b.size());
  ASSERT_GT(a.size(), 4u);
  for (size_t i = 0; i < a.size(); ++i) {
    for (const char* k : {"loss/train", "loss/eval", "grad_norm", "lr"}) {  // clipped after the all-reduce
      ASSERT_EQ(a[i].contains(k), b[i].contains(k)) << i << " " << k;
      if (a[i].contains(k)) EXPECT_NEAR(b[i][k].get<double>(), a[i][k].get<double>(), 1e-4) << i << " " << k;
    }
  }
  auto single = one.policy().lm->parameters();
  ASSERT_EQ(params[0].size(), single.size());
  for (size_t i = 0; i < single.size(); ++i) {
    EXPECT_TRUE(torch::equal(params[0][i], params[1][i])) << "replicas diverged at parameter " << i;
    EXPECT_TRUE(torch::allclose(params[0][i], single[i].detach(), 1e-4, 1e-5)) << "parameter " << i;
  }
  EXPECT_TRUE(fs::exists(root_ + "/two/DONE"));
}
