// What a translation dump does about resizes of the kernel's table:
// RepeatWhileTableResizes makes a dump the kernel ends with EAGAIN again
// after a growing pause (any other outcome is final; pauses go through the
// policy's sleep, so the test records them instead of waiting), and
// DropRepeatedXlatEntries removes what a walk restarted silently sent
// twice.
#include <errno.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "router-sync/rtnetlink.h"

namespace ila::router_sync {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class DumpRetryTest : public ::testing::Test {
 protected:
  DumpRetryTest() {
    policy_.sleep = [this](absl::Duration d) { pauses_.push_back(d); };
  }

  // An attempt that fails with `errnos[i]` on call i (EAGAIN, EPERM, ...)
  // and succeeds once they run out.
  std::function<absl::Status(int*)> Attempts(std::vector<int> errnos) {
    return [this, errnos](int* kernel_errno) {
      const size_t i = calls_++;
      if (i >= errnos.size()) {
        *kernel_errno = 0;
        return absl::OkStatus();
      }
      *kernel_errno = errnos[i];
      return absl::UnavailableError(
          absl::StrCat("ILA translation dump: errno ", errnos[i]));
    };
  }

  DumpRetryPolicy policy_;
  std::vector<absl::Duration> pauses_;
  size_t calls_ = 0;
};

TEST_F(DumpRetryTest, ResizesInProgressAreWaitedOut) {
  absl::Status s =
      RepeatWhileTableResizes(policy_, Attempts({EAGAIN, EAGAIN, EAGAIN}));
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_EQ(calls_, 4u);
  EXPECT_THAT(pauses_, ElementsAre(absl::Milliseconds(1), absl::Milliseconds(2),
                                   absl::Milliseconds(4)));
}

TEST_F(DumpRetryTest, AResizeThatOutlastsTheAttemptsIsReportedWithThem) {
  policy_.max_attempts = 6;
  policy_.max_pause = absl::Milliseconds(5);
  absl::Status s =
      RepeatWhileTableResizes(policy_, Attempts(std::vector<int>(10, EAGAIN)));
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("ILA translation dump: errno 11"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("6 attempts over 17ms"));
  EXPECT_EQ(calls_, 6u);
  EXPECT_THAT(pauses_, ElementsAre(absl::Milliseconds(1), absl::Milliseconds(2),
                                   absl::Milliseconds(4), absl::Milliseconds(5),
                                   absl::Milliseconds(5)));
}

TEST_F(DumpRetryTest, OtherFailuresAreFinal) {
  absl::Status s = RepeatWhileTableResizes(policy_, Attempts({EPERM, EAGAIN}));
  EXPECT_THAT(std::string(s.message()), HasSubstr("errno 1"));
  EXPECT_EQ(calls_, 1u);
  EXPECT_TRUE(pauses_.empty());
  // A failure that is not the kernel's (errno 0), e.g. a reply that does
  // not decode, is final too.
  calls_ = 0;
  s = RepeatWhileTableResizes(policy_, [&](int* kernel_errno) {
    ++calls_;
    *kernel_errno = 0;
    return absl::InvalidArgumentError("truncated attribute");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(calls_, 1u);
}

TEST_F(DumpRetryTest, DefaultPolicyWaitsAboutASecondInAll) {
  DumpRetryPolicy defaults;
  policy_.max_attempts = defaults.max_attempts;
  absl::Status s =
      RepeatWhileTableResizes(policy_, Attempts(std::vector<int>(100, EAGAIN)));
  EXPECT_FALSE(s.ok());
  absl::Duration total;
  for (absl::Duration d : pauses_) total += d;
  EXPECT_GE(total, absl::Milliseconds(500));
  EXPECT_LE(total, absl::Seconds(2));
}

IlaXlatEntry Xlat(uint64_t locator, int32_t ifindex, uint64_t sir) {
  IlaXlatEntry e;
  e.locator_match = Locator{locator};
  e.ifindex = ifindex;
  e.sir_prefix = SirPrefix{sir};
  return e;
}

TEST(DropRepeatedXlatEntries, OneEntryPerLocatorAndDeviceTheLastOneSeen) {
  const IlaXlatEntry a = Xlat(0x20010db800010000, 0, 0xfd00000100000000);
  const IlaXlatEntry a_on_dev = Xlat(0x20010db800010000, 2, 0xfd00000100000000);
  const IlaXlatEntry b = Xlat(0x20010db800020000, 0, 0xfd00000100000000);
  const IlaXlatEntry c = Xlat(0x20010db800030000, 0, 0xfd00000100000000);
  IlaXlatEntry a_later = a;
  a_later.sir_prefix = SirPrefix{0xfd00000200000000};
  std::vector<IlaXlatEntry> dump = {a, a_on_dev, b, a_later, c, b, a_on_dev};
  EXPECT_EQ(DropRepeatedXlatEntries(&dump), 3u);
  EXPECT_THAT(dump, ElementsAre(a_later, a_on_dev, b, c));
  // Nothing repeated: unchanged.
  std::vector<IlaXlatEntry> once = {c, b, a};
  EXPECT_EQ(DropRepeatedXlatEntries(&once), 0u);
  EXPECT_THAT(once, ElementsAre(c, b, a));
}

}  // namespace
}  // namespace ila::router_sync
