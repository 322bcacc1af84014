// Two "nodes" for real: each rank of `rarlhf train` runs in its own network namespace (its own
// loopback, one end of a veth pair, an address of this test's making) and its own UTS namespace
// (its own host name), with a Slurm step's environment naming the nodes by host name
// (SLURM_STEP_NODELIST=<prefix>[0-1]). Rank 0's TCPStore and both Gloo pairs must then go over the
// veth by the addresses the host names resolve to (per-namespace /etc/netns/<ns>/hosts), as on a
// cluster; nothing reaches the other rank over a shared loopback. Checked: the two-node run writes
// the metrics of one process; with GLOO_SOCKET_IFNAME naming the interfaces and a rank killed
// mid-run, the survivor fails with a one-line distributed error well inside the timeout.
// Needs root (CAP_NET_ADMIN), iproute2 and util-linux's unshare; skipped otherwise.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "rarlhf/common/fs.h"
#include "rarlhf/dist/communicator.h"
#include "support/files.h"
#include "support/process.h"
#include "support/temp_dir.h"
#include "support/tiny_policy.h"

using namespace rarlhf;
namespace fs = std::filesystem;

namespace {

const std::string kBin = rarlhf::testing::rarlhf_binary();

bool sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()) == 0; }

// Two network namespaces joined by a veth pair: 10.213.<k>.1 (node 0) and .2 (node 1), host names
// <prefix>0 / <prefix>1 resolvable in both. Removed (with the veth and the hosts files) on destruction.
class TwoNodes {
 public:
  TwoNodes() {
    const std::string id = std::to_string(::getpid() % 100000);
    prefix_ = "rnode" + id + "x";
    const int k = 1 + ::getpid() % 250;
    for (int n = 0; n < 2; ++n) {
      ns_[n] = "rarlhf" + id + "n" + std::to_string(n);
      if_[n] = "rv" + id + (n == 0 ? "a" : "b");
      ip_[n] = "10.213." + std::to_string(k) + "." + std::to_string(n + 1);
    }
    std::string hosts = "127.0.0.1 localhost\n";
    for (int n = 0; n < 2; ++n) hosts += ip_[n] + " " + host(n) + "\n";
    ok_ = sh("ip netns add " + ns_[0]) && sh("ip netns add " + ns_[1]) &&
          sh("ip link add " + if_[0] + " netns " + ns_[0] + " type veth peer name " + if_[1] + " netns " + ns_[1]);
    for (int n = 0; ok_ && n < 2; ++n) {
      const std::string in = "ip -n " + ns_[n] + " ";
      ok_ = sh(in + "addr add " + ip_[n] + "/24 dev " + if_[n]) && sh(in + "link set " + if_[n] + " up") &&
            sh(in + "link set lo up");
      fs::create_directories("/etc/netns/" + ns_[n]);
      write_file_atomic("/etc/netns/" + ns_[n] + "/hosts", hosts);
    }
  }
  ~TwoNodes() {
    for (int n = 0; n < 2; ++n) {
      sh("ip netns del " + ns_[n]);  // takes its end of the veth with it
      std::error_code ec;
      fs::remove_all("/etc/netns/" + ns_[n], ec);
    }
  }
  bool ok() const { return ok_; }
  std::string host(int n) const { return prefix_ + std::to_string(n); }
  const std::string& interface(int n) const { return if_[n]; }
  std::string nodelist() const { return prefix_ + "[0-1]"; }
  // argv running `cmd` on node n: its namespace, its host name.
  std::vector<std::string> on(int n, const std::vector<std::string>& cmd) const {
    std::vector<std::string> argv = {"ip", "netns", "exec", ns_[n], "unshare", "--uts", "sh", "-c",
                                     "hostname " + host(n) + " && exec \"$@\"", "sh"};
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    return argv;
  }

 private:
  std::string prefix_, ns_[2], if_[2], ip_[2];
  bool ok_ = false;
};

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!dist::c10d_available()) GTEST_SKIP() << "no c10d in this LibTorch";
    if (::geteuid() != 0) GTEST_SKIP() << "network namespaces need root";
    if (!sh("command -v ip") || !sh("command -v unshare")) GTEST_SKIP() << "needs iproute2 and util-linux's unshare";
    if (!fs::exists(kBin)) GTEST_SKIP() << "build the rarlhf target first";
    if (!fs::exists(rarlhf::testing::shared_data("tiny-gpt2-vocab21/vocab.json"))) GTEST_SKIP() << "needs ../shared/data";
    nodes_.emplace();
    if (!nodes_->ok()) GTEST_SKIP() << "cannot create network namespaces here (no CAP_NET_ADMIN?)";
    tmp_.emplace("netns");
  }
  void TearDown() override { nodes_.reset(); }
  // Slurm's environment of task `rank` in a two-node, one-task-per-node step of job 51234.
  std::map<std::string, std::string> task_env(int rank) const {
    return {{"SLURM_JOB_ID", "51234"},       {"SLURM_STEP_ID", "0"},
            {"SLURM_PROCID", std::to_string(rank)}, {"SLURM_NTASKS", "2"},
            {"SLURM_STEP_NUM_TASKS", "2"},  {"SLURM_LOCALID", "0"},
            {"SLURM_STEP_TASKS_PER_NODE", "1(x2)"}, {"SLURM_STEP_NODELIST", nodes_->nodelist()},
            {"RARLHF_DIST_TIMEOUT_S", "60"}};
  }
  std::optional<TwoNodes> nodes_;
  std::optional<rarlhf::testing::TempDir> tmp_;
};

}  // namespace

TEST_F(NetnsTest, TwoNodesByHostNameTrainLikeOneProcess) {
  const std::string root = tmp_->path();
  const std::string cfg = rarlhf::testing::write_tiny_rl_run(root, 3);
  auto train = [&](const std::string& out) {
    return std::vector<std::string>{kBin, "train", "--config", cfg, "--set", "run.out_dir=" + out};
  };
  ASSERT_EQ(rarlhf::testing::run(train(root + "/one"), {}, root + "/one.log", 120), 0) << read_file(root + "/one.log");
  pid_t pid[2];
  for (int r = 0; r < 2; ++r) {
    pid[r] = rarlhf::testing::spawn(nodes_->on(r, train(root + "/two")), task_env(r), root + "/rank" + std::to_string(r) + ".log");
  }
  for (int r = 0; r < 2; ++r) {
    EXPECT_EQ(rarlhf::testing::wait_for(pid[r], std::chrono::seconds(180)), 0)
        << "rank " << r << ":\n" << read_file(root + "/rank" + std::to_string(r) + ".log");
  }
  const std::string log0 = read_file(root + "/rank0.log");
  EXPECT_NE(log0.find("over " + nodes_->host(0) + ":" + std::to_string(dist::slurm_master_port(51234, 0))), std::string::npos)
      << "rank 0 hosts the store under its host name:\n" << log0;
  const auto one = rarlhf::testing::read_jsonl(root + "/one/metrics.jsonl", {"time/", "dist/", "mem/"});
  const auto two = rarlhf::testing::read_jsonl(root + "/two/metrics.jsonl", {"time/", "dist/", "mem/"});
  ASSERT_EQ(one.size(), 3u);
  ASSERT_EQ(two.size(), one.size());
  for (size_t i = 0; i < one.size(); ++i) {
    for (auto it = one[i].begin(); it != one[i].end(); ++it) {
      ASSERT_TRUE(two[i].contains(it.key())) << it.key();
      if (it.value().is_number_float()) {
        EXPECT_NEAR(two[i][it.key()].get<double>(), it.value().get<double>(), 1e-4 * (1 + std::abs(it.value().get<double>())))
            << "iteration " << i << " " << it.key();
      } else {
        EXPECT_EQ(two[i][it.key()], it.value()) << "iteration " << i << " " << it.key();
      }
    }
  }
}

TEST_F(NetnsTest, AKilledNodeFailsItsPeerWithinTheTimeout) {
  const std::string root = tmp_->path();
  const std::string cfg = rarlhf::testing::write_tiny_rl_run(root, 100000);
  const std::vector<std::string> train = {kBin, "train", "--config", cfg, "--set", "run.out_dir=" + root + "/run"};
  pid_t pid[2];
  for (int r = 0; r < 2; ++r) {
    auto env = task_env(r);
    env["GLOO_SOCKET_IFNAME"] = nodes_->interface(r);  // the interface route instead of the host name
    env["RARLHF_DIST_TIMEOUT_S"] = "30";
    pid[r] = rarlhf::testing::spawn(nodes_->on(r, train), env, root + "/rank" + std::to_string(r) + ".log");
  }
  ASSERT_TRUE(rarlhf::testing::wait_lines(root + "/run/metrics.jsonl", 2, pid[0])) << read_file(root + "/rank0.log");
  kill(pid[1], SIGKILL);  // the node dies; `ip netns exec` and unshare exec'd, so this is rarlhf itself
  waitpid(pid[1], nullptr, 0);
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = rarlhf::testing::wait_for(pid[0], std::chrono::seconds(90));
  const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string log0 = read_file(root + "/rank0.log");
  EXPECT_NE(rc, 0) << log0;
  EXPECT_NE(rc, -1) << "rank 0 hung after its peer died:\n" << log0;
  EXPECT_LT(waited, 45.0) << "the collective timeout is 30 s";
  EXPECT_NE(log0.find("rarlhf: error: distributed"), std::string::npos) << log0;
}
