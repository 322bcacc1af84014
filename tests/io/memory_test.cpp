// The resident-memory probe behind metrics.jsonl's mem/* figures: the peak follows an allocation the
// process touches, and a reset starts a new peak at the current size (Linux clear_refs).
#include <gtest/gtest.h>

#include <cstring>
#include <memory>

#include "rarlhf/common/memory.h"

using namespace rarlhf;

TEST(Memory, PeakFollowsTouchedMemoryAndResets) {
  const int64_t before = current_rss_bytes();
  ASSERT_GT(before, 0) << "/proc/self/status unreadable";
  EXPECT_GE(peak_rss_bytes(), before);
  if (!reset_peak_rss()) GTEST_SKIP() << "/proc/self/clear_refs is not writable here";
  constexpr int64_t kBytes = 96 << 20;
  {
    std::unique_ptr<char[]> block(new char[kBytes]);
    std::memset(block.get(), 1, kBytes);  // resident only once touched
    EXPECT_GE(current_rss_bytes(), before + kBytes * 9 / 10);
  }
  const int64_t peak = peak_rss_bytes();
  EXPECT_GE(peak, before + kBytes * 9 / 10);
  ASSERT_TRUE(reset_peak_rss());
  EXPECT_LT(peak_rss_bytes(), peak - kBytes / 2);  // freed: the new peak is today's size
}
