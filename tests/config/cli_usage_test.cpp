// Usage errors of the binary: a mistyped subcommand is named with a suggestion, a bad option
// prints the subcommand's help, an absurd thread count is refused naming run.threads (exit codes:
// usage 2, config 1).
#include <gtest/gtest.h>

#include <filesystem>

#include "rarlhf/common/fs.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace rarlhf;

namespace {
const std::string kBin = rarlhf::testing::rarlhf_binary();
}

TEST(CliUsage, MistypedCommandsOptionsAndThreadCounts) {
  if (!std::filesystem::exists(kBin)) GTEST_SKIP() << "build the rarlhf target first";
  rarlhf::testing::TempDir tmp("cliusage");
  const std::string log = tmp.path("out.log");
  ASSERT_EQ(rarlhf::testing::run({kBin, "trian"}, {}, log, 30), 2);
  EXPECT_EQ(read_file(log), "rarlhf: error: 'trian' is not a command; did you mean 'train'? (rarlhf --help lists them)\n");
  ASSERT_EQ(rarlhf::testing::run({kBin, "train", "--bogus"}, {}, log, 30), 2);
  const std::string help = read_file(log);
  EXPECT_EQ(help.rfind("rarlhf: error: The following argument was not expected: --bogus\n", 0), 0u) << help;
  EXPECT_NE(help.find("--resume"), std::string::npos) << "train's own help follows:\n" << help;
  const std::string src = RARLHF_SOURCE_DIR;
  ASSERT_EQ(rarlhf::testing::run({kBin, "train", "--config", src + "/configs/tiny.json", "--set", "run.threads=1000000",
                                  "--set", "run.out_dir=" + tmp.path("run")},
                                 {}, log, 60),
            1);
  EXPECT_NE(read_file(log).find("rarlhf: error: run.threads: 1000000 is more than 4 x the"), std::string::npos)
      << read_file(log);
}
