// Durable writes: a full disk (/dev/full: every write fails with ENOSPC) is a one-line IoError for
// appends and for the optimiser state (LibTorch's own writer would call std::terminate), stray
// temporaries of killed writers are removed and nothing else, the run-folder lock refuses a second
// holder and names the first, a dead holder's leftover line does not block, and a resumed metrics
// file keeps exactly the records before the checkpoint.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <sys/mount.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>

#include "rarlhf/common/error.h"
#include "rarlhf/common/fs.h"
#include "rarlhf/common/metrics.h"
#include "rarlhf/io/checkpoint.h"
#include "support/files.h"
#include "support/temp_dir.h"

using namespace rarlhf;
namespace fs = std::filesystem;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const IoError& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST(DurableFiles, AFullDiskIsAnErrorNamingTheFile) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full";
  AppendFile f("/dev/full");
  const std::string append = error_of([&] { f.append("{\"iteration\": 0}\n"); });
  EXPECT_NE(append.find("/dev/full: write failed (No space left on device)"), std::string::npos) << append;

  torch::nn::Linear lin(64, 64);
  torch::optim::Adam adam(lin->parameters());
  lin(torch::randn({2, 64})).sum().backward();
  adam.step();  // state to save
  const std::string opt = error_of([&] { save_optimizer(adam, "/dev/full"); });
  EXPECT_NE(opt.find("/dev/full: write failed (No space left on device)"), std::string::npos) << opt;
  EXPECT_NE(opt.find("free space"), std::string::npos) << opt;
  EXPECT_EQ(std::count(opt.begin(), opt.end(), '\n'), 0) << opt;
}

TEST(DurableFiles, OptimizerStateRoundTripsThroughTheCheckedWriter) {
  rarlhf::testing::TempDir tmp("durable");
  torch::manual_seed(0);
  torch::nn::Linear lin(8, 4);
  torch::optim::Adam adam(lin->parameters(), torch::optim::AdamOptions(0.1));
  for (int i = 0; i < 3; ++i) {
    adam.zero_grad();
    lin(torch::randn({5, 8})).pow(2).sum().backward();
    adam.step();
  }
  save_optimizer(adam, tmp.path("opt.pt"));
  torch::optim::Adam back(lin->parameters(), torch::optim::AdamOptions(0.1));
  load_optimizer(back, tmp.path("opt.pt"));
  // torch::save's file form and ours are the same archive: LibTorch's own loader reads ours.
  torch::optim::Adam direct(lin->parameters(), torch::optim::AdamOptions(0.1));
  torch::load(direct, tmp.path("opt.pt"));
  for (auto* o : {&back, &direct}) {
    auto& a = static_cast<torch::optim::AdamParamState&>(*adam.state().begin()->second);
    auto& b = static_cast<torch::optim::AdamParamState&>(*o->state().at(adam.state().begin()->first));
    EXPECT_EQ(a.step(), b.step());
    EXPECT_TRUE(torch::equal(a.exp_avg(), b.exp_avg()));
    EXPECT_TRUE(torch::equal(a.exp_avg_sq(), b.exp_avg_sq()));
  }
}

TEST(DurableFiles, AFailedAppendLeavesNoTornRecord) {
  if (::geteuid() != 0) GTEST_SKIP() << "mounting a small tmpfs needs root";
  rarlhf::testing::TempDir tmp("append");
  const std::string disk = tmp.path("disk");
  fs::create_directories(disk);
  if (::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=64k") != 0) GTEST_SKIP() << "cannot mount a tmpfs here";
  AppendFile f(disk + "/metrics.jsonl");
  const std::string record = "{\"iteration\": 0, \"pad\": \"" + std::string(1000, 'x') + "\"}\n";
  std::string error = "no error";
  size_t written = 0;
  for (; written < 200 && error == "no error"; ++written) error = error_of([&] { f.append(record); });
  const std::string left = read_file(disk + "/metrics.jsonl");
  ::umount2(disk.c_str(), MNT_DETACH);
  EXPECT_NE(error.find("No space left on device"), std::string::npos) << error;
  EXPECT_GT(written, 10u);
  EXPECT_EQ(left.size() % record.size(), 0u) << "a torn record was left";
  EXPECT_EQ(left.size() / record.size(), written - 1);
}

TEST(DurableFiles, StrayTemporariesAreRemovedAndNothingElse) {
  rarlhf::testing::TempDir tmp("stray");
  for (const char* n : {"metrics.jsonl.tmp.123", "config.json.tmp.9", "keep.tmp", "a.tmp.1b", "metrics.jsonl"}) {
    tmp.write(n, "x");
  }
  fs::create_directories(tmp.path("dir.tmp.7"));  // a folder of that name is not ours to delete
  EXPECT_EQ(remove_stray_temp_files(tmp.path()), 2);
  for (const char* n : {"keep.tmp", "a.tmp.1b", "metrics.jsonl", "dir.tmp.7"}) EXPECT_TRUE(fs::exists(tmp.path(n))) << n;
  EXPECT_FALSE(fs::exists(tmp.path("metrics.jsonl.tmp.123")));
  EXPECT_EQ(remove_stray_temp_files(tmp.path("no-such")), 0);
}

TEST(DurableFiles, RunFolderLockRefusesASecondHolder) {
  rarlhf::testing::TempDir tmp("lock");
  const std::string dir = tmp.path("run");
  {
    DirLock first(dir, "rarlhf train");
    // flock locks belong to the open file: a second open in this very process conflicts too.
    const std::string second = error_of([&] { DirLock again(dir, "rarlhf sft"); });
    EXPECT_NE(second.find(dir + ": run folder in use by another rarlhf (rarlhf train, pid " + std::to_string(::getpid())),
              std::string::npos)
        << second;
    EXPECT_NE(second.find("choose another run.out_dir"), std::string::npos) << second;
    DirLock moved = std::move(first);  // still held
    EXPECT_NE(error_of([&] { DirLock again(dir, "x"); }), "no error");
  }
  DirLock after(dir, "rarlhf sft");  // released with its holder
  // A holder line left by a killed run (the kernel dropped its flock) does not block.
  rarlhf::testing::TempDir tmp2("lock2");
  tmp2.write("run/.rarlhf.lock", "rarlhf train, pid 999999 on elsewhere since 2026-01-01T00:00:00Z\n");
  DirLock taken(tmp2.path("run"), "rarlhf train");
  EXPECT_NE(read_file(tmp2.path("run/.rarlhf.lock")).find("pid " + std::to_string(::getpid())), std::string::npos);
}

TEST(DurableFiles, ResumedMetricsKeepTheRecordsBeforeTheCheckpoint) {
  rarlhf::testing::TempDir tmp("metrics");
  const std::string path = tmp.write("metrics.jsonl",
                                     "{\"iteration\":0}\n{\"iteration\":1}\n{\"iteration\":3}\n{\"iteration\":4}\n{\"itera");
  {
    MetricsWriter w(path, 4);  // resume at 4: iteration 2 was lost before; 4 and the torn line go
    w.write({{"iteration", 4}});
    w.sync();
  }
  const auto lines = rarlhf::testing::read_jsonl(path);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_EQ(lines[0]["iteration"], 0);
  EXPECT_EQ(lines[2]["iteration"], 3);
  EXPECT_EQ(lines[3]["iteration"], 4);
}
