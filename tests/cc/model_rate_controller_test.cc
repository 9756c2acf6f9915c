// Tests for src/transport/cc/model_rate_controller.{h,cc} on a simulated path
// (tests/cc/path_simulator.h) driving the real tracker, receiver record and controller.
#include "transport/cc/model_rate_controller.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "path_simulator.h"

namespace ferry::cc {
namespace {

using sim::PathConfig;
using sim::PathSimulator;

constexpr double kLink = 25e6;  // 200 Mbit/s
constexpr uint64_t kSec = 1'000'000;

PathConfig wan(uint64_t rtt_us, double loss, uint64_t seed = 1) {
  PathConfig p;
  p.link_rate = kLink;
  p.base_rtt_us = rtt_us;
  p.buffer_bytes = static_cast<uint64_t>(kLink * static_cast<double>(rtt_us) / 1e6);  // one BDP
  p.random_loss = loss;
  p.seed = seed;
  return p;
}

RateConfig policy(Policy p, uint64_t target = 0) {
  RateConfig c;
  c.policy = p;
  c.target_rate = target;
  return c;
}

TEST(ModelRateController, StartupReachesTheLinkRateWithinAFewRtts) {
  PathSimulator s(wan(100'000, 0), policy(Policy::kFair));
  EXPECT_STREQ(s.controller().state_name(), "startup");
  s.run_until(15 * 100'000);
  const double bw = static_cast<double>(s.controller().bandwidth_estimate());
  EXPECT_GE(bw, 0.9 * kLink);
  EXPECT_LE(bw, 1.1 * kLink);
  EXPECT_STRNE(s.controller().state_name(), "startup");
}

struct LossCase {
  uint64_t rtt_us;
  double loss;
};

class RandomLoss : public ::testing::TestWithParam<LossCase> {};

TEST_P(RandomLoss, DoesNotCutTheRateAndKeepsTheQueueShort) {
  const auto [rtt, loss] = GetParam();
  PathSimulator s(wan(rtt, loss, 42), policy(Policy::kFair));
  s.run_until(5 * kSec + 20 * rtt);
  s.reset_window();
  const uint64_t sent0 = s.tracker().packets_sent(), spurious0 = s.tracker().spurious_losses();
  s.run_until(s.now() + 12 * kSec);
  const double util = s.link_rate_of(0) / kLink;
  const double good = s.goodput_of(0) / kLink;
  const uint64_t qd = s.median_queue_delay_us();
  const double spurious = static_cast<double>(s.tracker().spurious_losses() - spurious0) /
                          static_cast<double>(s.tracker().packets_sent() - sent0);
  std::printf("rtt %llu ms loss %.0f%%: link %.3f goodput %.3f median queue %llu us spurious %.4f state %s\n",
              static_cast<unsigned long long>(rtt / 1000), loss * 100, util, good,
              static_cast<unsigned long long>(qd), spurious, s.controller().state_name());
  EXPECT_GE(util, 0.90);
  EXPECT_GE(good, 0.90 * (1 - loss));
  EXPECT_LT(qd, 20'000u);
  EXPECT_LE(spurious, 0.01);
}

INSTANTIATE_TEST_SUITE_P(Wan, RandomLoss,
                         ::testing::Values(LossCase{100'000, 0.0}, LossCase{100'000, 0.01},
                                           LossCase{100'000, 0.05}, LossCase{300'000, 0.05}));

TEST(ModelRateController, RisingQueueingDelayCutsTheRate) {
  // Capacity halves at 6 s (another flow took half of the bottleneck): no loss until the
  // buffer overflows, only rising RTT. The rate must follow within a few round trips.
  PathSimulator s(wan(100'000, 0.01, 3), policy(Policy::kFair));
  s.run_until(6 * kSec);
  EXPECT_GE(static_cast<double>(s.controller().pacing_rate()), 0.7 * kLink);
  s.set_link_rate(kLink / 2);
  s.run_until(6 * kSec + 800'000);  // 8 RTTs: shorter than the 10-round bandwidth window
  EXPECT_LE(static_cast<double>(s.controller().bandwidth_estimate()), 0.65 * kLink);
  s.run_until(8 * kSec);
  s.reset_window();
  s.run_until(14 * kSec);
  const uint64_t qd = s.median_queue_delay_us();
  std::printf("after the drop: link %.3f of the new capacity, median queue %llu us\n",
              s.link_rate_of(0) / (kLink / 2), static_cast<unsigned long long>(qd));
  EXPECT_LT(qd, 20'000u);
  EXPECT_GE(s.link_rate_of(0), 0.85 * kLink / 2);
}

TEST(ModelRateController, BlackoutRestartsFromStartupAndRecovers) {
  // Everything lost for 2 s (a route flap): the ACK after it declares a run spanning more than
  // 3 PTOs lost - persistent congestion - and the model restarts instead of blasting the old
  // rate into a path that may have changed. It then regains the link.
  PathSimulator s(wan(100'000, 0.01, 5), policy(Policy::kFair));
  s.run_until(5 * kSec);
  EXPECT_STREQ(s.controller().state_name(), "probe_bw");
  s.set_random_loss(1.0);
  s.run_until(7 * kSec);
  s.set_random_loss(0.01);
  bool restarted = false;
  // The next PTO probe (backed off during the blackout) finds the path up again.
  while (s.now() < 10 * kSec) {
    s.run_until(s.now() + 10'000);
    restarted |= std::string(s.controller().state_name()) == "startup";
  }
  EXPECT_TRUE(restarted);
  s.reset_window();
  s.run_until(16 * kSec);
  EXPECT_GE(s.link_rate_of(0), 0.9 * kLink);
}

TEST(ModelRateController, LongerRouteBecomesTheNewBaseRttAfterTwoProbes) {
  PathSimulator s(wan(100'000, 0.01, 8), policy(Policy::kFair));
  s.run_until(4 * kSec);
  auto& cc = static_cast<ModelRateController&>(s.controller());
  EXPECT_NEAR(static_cast<double>(cc.min_rtt_us()), 100'000.0, 2'000.0);
  s.set_base_rtt(150'000);
  s.run_until(12 * kSec);
  EXPECT_LT(cc.min_rtt_us(), 110'000u);  // one probe is not enough: could be someone's queue
  s.run_until(30 * kSec);
  EXPECT_NEAR(static_cast<double>(cc.min_rtt_us()), 150'000.0, 3'000.0);
  s.reset_window();
  s.run_until(34 * kSec);
  EXPECT_GE(s.link_rate_of(0), 0.9 * kLink);
}

TEST(ModelRateController, HeavyLossCutsTheRateAndItRecoversAfterwards) {
  // > 15 % of a round lost is taken as a real narrowing of the path (documented loss rule).
  PathSimulator s(wan(100'000, 0.01, 11), policy(Policy::kFair));
  s.run_until(5 * kSec);
  EXPECT_GE(static_cast<double>(s.controller().bandwidth_estimate()), 0.9 * kLink);
  s.set_random_loss(0.30);
  s.run_until(7 * kSec);
  EXPECT_LE(static_cast<double>(s.controller().bandwidth_estimate()), 0.5 * kLink);
  s.set_random_loss(0.01);
  s.run_until(15 * kSec);
  s.reset_window();
  s.run_until(18 * kSec);
  EXPECT_GE(s.link_rate_of(0), 0.9 * kLink);
}

TEST(ModelRateController, LowYieldsToATcpFlowAndReclaimsTheLinkWhenAlone) {
  PathConfig p;  // 20 Mbit/s, 40 ms, one-BDP buffer
  p.link_rate = 2.5e6;
  p.base_rtt_us = 40'000;
  p.buffer_bytes = 100'000;
  PathSimulator s(p, policy(Policy::kLow));
  s.run_until(4 * kSec);
  s.reset_window();
  s.run_until(6 * kSec);
  const double alone = s.link_rate_of(0) / p.link_rate;
  s.start_reno();
  s.run_until(9 * kSec);
  s.reset_window();
  s.run_until(24 * kSec);
  const double low_share = s.link_rate_of(0) / (s.link_rate_of(0) + s.link_rate_of(1));
  const double busy = (s.link_rate_of(0) + s.link_rate_of(1)) / p.link_rate;
  s.stop_reno();
  s.run_until(30 * kSec);
  s.reset_window();
  s.run_until(34 * kSec);
  const double again = s.link_rate_of(0) / p.link_rate;
  std::printf("low: alone %.3f, share against tcp %.3f (link busy %.3f), alone again %.3f\n", alone,
              low_share, busy, again);
  EXPECT_GE(alone, 0.90);
  EXPECT_LE(low_share, 0.20);
  EXPECT_GE(busy, 0.85);
  EXPECT_GE(again, 0.90);
}

// Against one TCP flow (Reno-style or Cubic) through a one-BDP buffer: fair takes a share in
// the 30-70 % band, high clearly more than fair. The TCP flow starts first, as in the bench.
double share_against_tcp(Policy pol, uint64_t rtt_us, bool cubic, double link = 2.5e6, uint64_t seconds = 40,
                         bool tcp_first = false) {
  PathConfig p;
  p.link_rate = link;
  p.base_rtt_us = rtt_us;
  p.buffer_bytes = static_cast<uint64_t>(p.link_rate * static_cast<double>(rtt_us) / 1e6);
  p.start_paused = tcp_first;
  PathSimulator s(p, policy(pol));
  if (tcp_first) {
    cubic ? s.start_cubic() : s.start_reno();
    s.run_until(5 * kSec);
    s.start_sender();
  } else {
    s.run_until(3 * kSec);
    cubic ? s.start_cubic() : s.start_reno();
  }
  s.run_until(8 * kSec);
  s.reset_window();
  s.run_until(seconds * kSec);
  const double share = s.link_rate_of(0) / (s.link_rate_of(0) + s.link_rate_of(1));
  std::printf("%s at %llu ms, %.0f Mbit/s against %s: share %.3f, link busy %.3f\n", to_string(pol),
              static_cast<unsigned long long>(rtt_us / 1000), link * 8 / 1e6, cubic ? "cubic" : "reno", share,
              (s.link_rate_of(0) + s.link_rate_of(1)) / link);
  return share;
}

TEST(ModelRateController, FairSharesWithTcpAndHighTakesMore) {
  for (bool cubic : {false, true}) {
    for (uint64_t rtt : {40'000ull, 100'000ull}) {
      const double fair = share_against_tcp(Policy::kFair, rtt, cubic);
      const double high = share_against_tcp(Policy::kHigh, rtt, cubic);
      EXPECT_GE(fair, 0.30) << rtt << (cubic ? " cubic" : " reno");
      EXPECT_LE(fair, 0.70) << rtt << (cubic ? " cubic" : " reno");
      EXPECT_GE(high, fair + 0.15) << rtt << (cubic ? " cubic" : " reno");
    }
  }
}

// The bench's case at full size: 200 Mbit/s, 100 ms, one-BDP buffer, against Cubic (whose
// epoch after a loss is about 11 s here, so the run is long).
TEST(ModelRateController, FairSharesWithCubicOnTheBenchPath) {
  for (bool tcp_first : {false, true}) {
    const double fair = share_against_tcp(Policy::kFair, 100'000, true, kLink, 68, tcp_first);
    EXPECT_GE(fair, 0.30) << tcp_first;
    EXPECT_LE(fair, 0.70) << tcp_first;
  }
}

TEST(ModelRateController, FixedSendsAtTheTargetWhateverHappens) {
  // Target above the link, 5 % loss, a full queue: fixed keeps pacing at the target.
  const uint64_t target = static_cast<uint64_t>(kLink * 1.2);
  PathSimulator s(wan(100'000, 0.05, 9), policy(Policy::kFixed, target));
  for (uint64_t t = 1; t <= 10; ++t) {
    s.run_until(t * kSec / 2);
    EXPECT_EQ(s.controller().pacing_rate(), target);
    EXPECT_STREQ(s.controller().state_name(), "fixed");
  }
  EXPECT_GE(s.controller().congestion_window(), 2 * target / 10);  // >= 2 x target x 100 ms
  s.reset_window();
  s.run_until(8 * kSec);
  EXPECT_GE(s.link_rate_of(0), 0.97 * kLink);  // the link is saturated
}

TEST(ModelRateController, TargetRateCapsEveryPolicy) {
  for (Policy p : {Policy::kHigh, Policy::kFair, Policy::kLow}) {
    PathSimulator s(wan(100'000, 0), policy(p, 10'000'000));
    s.run_until(5 * kSec);
    EXPECT_LE(s.controller().pacing_rate(), 10'000'000u) << to_string(p);
    s.reset_window();
    s.run_until(8 * kSec);
    EXPECT_GE(s.link_rate_of(0), 0.9 * 10e6) << to_string(p);
  }
}

// The receiver's RATE_LIMIT (its share of a server-wide cap) arrives mid-transfer: the rate
// drops to it at once, and lifting it lets the flow take the link again.
TEST(ModelRateController, RuntimeRateCapTakesHoldAndLiftsAgain) {
  for (Policy p : {Policy::kFixed, Policy::kFair}) {
    PathSimulator s(wan(50'000, 0), policy(p, p == Policy::kFixed ? 20'000'000 : 0));
    s.run_until(4 * kSec);
    EXPECT_GE(s.controller().pacing_rate(), 15'000'000u) << to_string(p);
    s.controller().set_rate_cap(5'000'000);
    EXPECT_LE(s.controller().pacing_rate(), 5'000'000u) << to_string(p);
    s.run_until(6 * kSec);
    s.reset_window();
    s.run_until(9 * kSec);
    EXPECT_LE(s.controller().pacing_rate(), 5'000'000u) << to_string(p);
    EXPECT_LE(s.link_rate_of(0), 5.2e6) << to_string(p);
    EXPECT_GE(s.link_rate_of(0), 4.0e6) << to_string(p);
    s.controller().set_rate_cap(0);  // lifted: back to the configured target (or none)
    s.run_until(14 * kSec);
    s.reset_window();
    s.run_until(17 * kSec);
    EXPECT_GE(s.link_rate_of(0), 15e6) << to_string(p);
    if (p == Policy::kFixed) {
      EXPECT_EQ(s.controller().pacing_rate(), 20'000'000u);
    }
  }
}

TEST(ModelRateController, ParsePolicyNamesAndRejectsOthers) {
  for (Policy p : {Policy::kFixed, Policy::kHigh, Policy::kFair, Policy::kLow}) {
    auto parsed = parse_policy(to_string(p));
    ASSERT_TRUE(parsed);
    EXPECT_EQ(*parsed, p);
  }
  auto bad = parse_policy("fast");
  EXPECT_EQ(bad.status().code(), Error::kUsage);
  EXPECT_NE(bad.status().message().find("fast"), std::string::npos);
}

}  // namespace
}  // namespace ferry::cc
