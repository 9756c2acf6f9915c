// Tests for src/session/total_rate.{h,cc}: the virtual clock behind ferryd's total_rate_cap.
#include "session/total_rate.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

using std::chrono::milliseconds;

TEST(TotalRate, ClaimsQueueBehindEachOtherAtTheTotalRate) {
  TotalRate total(1'000'000);  // 1 MB/s: 100 kB costs 100 ms
  const auto t0 = TotalRate::Clock::now();
  EXPECT_EQ(total.claim(100'000, t0), t0);  // nothing booked: at once
  EXPECT_EQ(total.claim(100'000, t0), t0 + milliseconds(100));
  EXPECT_EQ(total.claim(50'000, t0 + milliseconds(10)), t0 + milliseconds(200));
  // Whoever claims next waits for all of it, whichever session booked it.
  EXPECT_EQ(total.claim(1, t0 + milliseconds(20)), t0 + milliseconds(250));
}

TEST(TotalRate, IdleTimeEarnsNoCredit) {
  TotalRate total(1'000'000);
  const auto t0 = TotalRate::Clock::now();
  (void)total.claim(100'000, t0);
  // A minute later the clock is in the past: the claim is granted now, not a minute early,
  // and the one after it waits its full cost.
  const auto later = t0 + std::chrono::seconds(60);
  EXPECT_EQ(total.claim(100'000, later), later);
  EXPECT_EQ(total.claim(1, later), later + milliseconds(100));
}

TEST(TotalRate, UdpChargesMakeTcpClaimsWait) {
  TotalRate total(2'000'000);
  const auto t0 = TotalRate::Clock::now();
  total.charge(200'000, t0);  // 100 ms worth arrived over UDP
  EXPECT_EQ(total.claim(10, t0 + milliseconds(40)), t0 + milliseconds(100));
}

TEST(TotalRate, ShareSplitsAmongActiveSessionsAndNeverReachesZero) {
  EXPECT_EQ(TotalRate::share_of(10'000'000, 0), 10'000'000u);
  EXPECT_EQ(TotalRate::share_of(10'000'000, 1), 10'000'000u);
  EXPECT_EQ(TotalRate::share_of(10'000'000, 4), 2'500'000u);
  EXPECT_EQ(TotalRate::share_of(3, 1000), 1u);
  TotalRate total(8'000'000);
  EXPECT_EQ(total.share(), 8'000'000u);  // alone, a session may use all of it
  total.set_share(TotalRate::share_of(total.rate(), 2));
  EXPECT_EQ(total.share(), 4'000'000u);
}

}  // namespace
}  // namespace ferry
