// Data-parallel PPO equals one process: two ranks (threads of this test, each with its own Gloo
// process group over a TCPStore on localhost) step a tiny RA-RLHF run with the same global batch as
// a single trainer; every iteration must select the same episodes (prompt indices, returns, keep
// mask) and log the same metrics within float tolerance (sums over ranks change rounding only).
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <exception>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <csignal>
#include <optional>

#include "rarlhf/model/gpt2.h"
#include "rarlhf/common/error.h"
#include "rarlhf/dist/communicator.h"
#include "rarlhf/train/ppo_trainer.h"
#include "support/fake_rewards.h"
#include "support/files.h"
#include "support/ranks.h"
#include "support/temp_dir.h"
#include "support/tiny_policy.h"

using namespace rarlhf;
namespace fs = std::filesystem;

namespace {

const std::string kTokDir = std::string(RARLHF_SOURCE_DIR) + "/../shared/data/tiny-gpt2-vocab21";
const std::string kLexicon = std::string(RARLHF_SOURCE_DIR) + "/../shared/data/sentiment-lexicons/vader_lexicon.txt";

// A reward with spread: VADER-like word values summed over the response (deterministic, text-only).
struct WordReward : rarlhf::testing::WordReward {
  WordReward() : rarlhf::testing::WordReward({{" lowest", 1.0}, {" wider", -0.5}, {" newer", 0.25}}, "word values") {}
};


std::string make_policy_dir(const std::string& root) { return rarlhf::testing::write_tiny_gpt2(root + "/policy0"); }

Config tiny_config(const std::string& out_dir, const std::string& model_dir) {
  Config c;
  c.run.out_dir = out_dir;
  c.run.seed = 11;
  c.model.path = model_dir;
  c.ppo.batch_size = 16;
  c.ppo.mini_batch_size = 4;  // random minibatches straddle the two ranks' shards unevenly
  c.ppo.ppo_epochs = 2;
  c.ppo.learning_rate = 3e-3;
  c.ppo.total_iterations = 5;
  c.ppo.init_kl_coef = 0.05;
  c.risk.enabled = true;
  c.risk.n = 1;
  c.risk.alpha = 0.25;
  c.risk.rho = 0.8;
  c.generate.max_new_tokens = 6;
  c.generate.min_new_tokens = 2;  // EOS allowed: ranks may stop generating at different lengths
  c.reward.input = "response";
  c.logging.progress = false;
  validate(c);
  return c;
}

std::unique_ptr<PPOTrainer> make_trainer(const Config& c) {
  BpeTokenizer tok = BpeTokenizer::from_dir(c.model.path);
  std::vector<Prompt> ps;
  const char* words[] = {" low", " newer", " wider", " lower", " new", " wide", " lowest"};
  for (const char* a : words) {
    for (const char* b : {" low", " newer wide", " wider", " lower lowest low", " new"}) {
      std::string s = std::string(a) + b;
      ps.push_back({s, tok.encode(s)});  // prompts of different lengths: ranks pad differently
    }
  }
  Policy policy = load_policy(c.model.path, "float32", torch::kCPU);
  CausalLm ref = load_policy(c.model.path, "float32", torch::kCPU).lm;
  return std::make_unique<PPOTrainer>(c, ps, std::move(policy), std::move(ref), std::make_unique<WordReward>(),
                                      tok, torch::kCPU);
}

struct Trace {
  std::vector<nlohmann::json> recs;
  std::vector<at::Tensor> keep, returns, scores;
  std::vector<std::vector<int64_t>> indices;
};

void run_steps(PPOTrainer& t, Trace& tr) {
  for (int64_t m = 0; m < t.total_iterations(); ++m) {
    const IterationResult result = t.step(m);
    nlohmann::json r = result.record();
    for (auto it = r.begin(); it != r.end();) it = it.key().rfind("time/", 0) == 0 || it.key().rfind("mem/", 0) == 0 ? r.erase(it) : std::next(it);
    tr.recs.push_back(r);
    tr.keep.push_back(result.keep.clone());
    tr.returns.push_back(result.returns.clone());
    tr.scores.push_back(result.scores.clone());
    tr.indices.push_back(result.prompt_indices);
  }
}

class DistPpoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kTokDir + "/vocab.json")) GTEST_SKIP() << "needs ../shared/data/tiny-gpt2-vocab21";
    if (!dist::c10d_available()) GTEST_SKIP() << "this LibTorch has no c10d";
    torch::set_num_threads(1);
    tmp_.emplace("distppo");
    root_ = tmp_->path();
    model_ = make_policy_dir(root_);
  }
  std::optional<rarlhf::testing::TempDir> tmp_;  // removed with the fixture
  std::string root_, model_;
};

}  // namespace

TEST_F(DistPpoTest, TwoRanksSelectTheSameEpisodesAndLogTheSameMetrics) {
  Trace one;
  {
    auto t = make_trainer(tiny_config(root_ + "/one", model_));
    run_steps(*t, one);
  }
  Trace two[2];
  rarlhf::testing::run_ranks(2, [&](int r, std::shared_ptr<dist::Communicator> comm) {
    auto t = make_trainer(tiny_config(root_ + "/two", model_));
    t->set_communicator(comm);
    run_steps(*t, two[r]);
  });
  // A peer that dies must surface as a c10d error on the survivor, not as a SIGPIPE from Gloo's
  // socket writes killing it silently (exit 141, seen once in CI in DistCliTest.KilledRank...).
  struct sigaction pipe_action {};
  sigaction(SIGPIPE, nullptr, &pipe_action);
  EXPECT_EQ(pipe_action.sa_handler, SIG_IGN) << "a two-rank Communicator must ignore SIGPIPE";
  const size_t M = one.recs.size();
  ASSERT_EQ(M, 5u);
  bool some_dropped = false;
  for (int r = 0; r < 2; ++r) {
    ASSERT_EQ(two[r].recs.size(), M);
    for (size_t m = 0; m < M; ++m) {
      SCOPED_TRACE("rank " + std::to_string(r) + " iteration " + std::to_string(m));
      EXPECT_EQ(two[r].indices[m], one.indices[m]);
      EXPECT_TRUE(torch::equal(two[r].keep[m], one.keep[m])) << two[r].keep[m] << one.keep[m];
      EXPECT_TRUE(torch::allclose(two[r].returns[m], one.returns[m], 1e-4, 1e-5));
      EXPECT_TRUE(torch::equal(two[r].scores[m], one.scores[m]));  // same sampled text -> same reward
      some_dropped |= one.keep[m].sum().item<int64_t>() < 16;
      const auto& a = one.recs[m];
      const auto& b = two[r].recs[m];
      for (auto it = a.begin(); it != a.end(); ++it) {
        ASSERT_TRUE(b.contains(it.key())) << it.key();
        if (it->is_number_integer()) {
          EXPECT_EQ(b[it.key()].get<int64_t>(), it->get<int64_t>()) << it.key();
        } else {
          const double x = it->get<double>(), y = b[it.key()].get<double>();
          EXPECT_NEAR(y, x, 2e-4 * (1 + std::fabs(x))) << it.key();
        }
      }
      EXPECT_EQ(b["dist/world_size"].get<int64_t>(), 2);
    }
  }
  EXPECT_TRUE(some_dropped) << "the config must make RA-RLHF drop episodes, or the test proves little";
}

TEST_F(DistPpoTest, GlobalBatchMustDivideByWorldSize) {
  // ppo.batch_size 16 over 3 ranks: every rank refuses with a ConfigError naming the field.
  std::string msg[3];
  rarlhf::testing::run_ranks(3, [&](int r, std::shared_ptr<dist::Communicator> comm) {
    try {
      auto t = make_trainer(tiny_config(root_ + "/three", model_));
      t->set_communicator(comm);
      msg[r] = "accepted";
    } catch (const ConfigError& e) {
      msg[r] = e.what();
    } catch (const std::exception& e) {
      msg[r] = std::string("other error: ") + e.what();
    }
  });
  for (const auto& m : msg) EXPECT_EQ(m.rfind("ppo.batch_size: 16 episodes cannot be split over 3 ranks", 0), 0u) << m;
}
