// Tests for src/transport/udp/sent_packet_tracker.{h,cc}: ACK processing, RTT, loss detection
// by packet and time threshold, spurious-loss accounting, PTO. Drives the real controller.
#include "transport/udp/sent_packet_tracker.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "transport/cc/model_rate_controller.h"

namespace ferry::udp {
namespace {

using Ranges = std::vector<AckRange>;
constexpr uint32_t kSize = 1200;

std::vector<uint64_t> pns(const std::vector<SentPacket>& v) {
  std::vector<uint64_t> out;
  for (const auto& p : v) out.push_back(p.packet_number);
  return out;
}

class TrackerTest : public ::testing::Test {
 protected:
  cc::ModelRateController cc{cc::RateConfig{}};
  SentPacketTracker t{cc};

  void send(uint64_t first, uint64_t last, uint64_t time_us) {
    for (uint64_t pn = first; pn <= last; ++pn) t.on_sent(time_us, pn, kSize, /*token=*/pn * 10, false);
  }
};

TEST_F(TrackerTest, AckedPacketsAreReturnedOnceAndLeaveFlight) {
  send(0, 9, 1000);
  EXPECT_EQ(t.bytes_in_flight(), 10u * kSize);
  const Ranges r = {{0, 9}};
  auto out = t.on_ack(101'000, r, 0);
  EXPECT_TRUE(out.any_new);
  EXPECT_EQ(out.acked.size(), 10u);
  EXPECT_EQ(out.acked[3].token, 30u);
  EXPECT_TRUE(out.lost.empty());
  EXPECT_EQ(t.bytes_in_flight(), 0u);
  EXPECT_EQ(t.largest_acked(), 9u);
  // The same ACK again acks nothing new and gives no RTT sample.
  auto again = t.on_ack(500'000, r, 0);
  EXPECT_FALSE(again.any_new);
  EXPECT_TRUE(again.acked.empty());
  EXPECT_EQ(t.rtt().latest(), 100'000u);
}

TEST_F(TrackerTest, RttSampleOnlyWhenLargestIsNewlyAckedAndAckDelayIsRemoved) {
  send(0, 1, 0);
  const Ranges first = {{0, 0}};
  t.on_ack(100'000, first, 0);
  EXPECT_EQ(t.rtt().min(), 100'000u);
  EXPECT_EQ(t.rtt().smoothed(), 100'000u);
  // Largest (1) acked 140 ms after send with 20 ms of reported ack delay: adjusted 120 ms.
  const Ranges both = {{0, 1}};
  t.on_ack(140'000, both, 20'000);
  EXPECT_EQ(t.rtt().latest(), 140'000u);
  EXPECT_EQ(t.rtt().smoothed(), (7 * 100'000u + 120'000u) / 8);
  EXPECT_EQ(t.rtt().min(), 100'000u);
  // Newly acking only a smaller pn gives no sample.
  send(2, 4, 150'000);
  const Ranges upper = {{4, 4}, {0, 1}};
  t.on_ack(260'000, upper, 0);
  const uint64_t srtt = t.rtt().smoothed();
  const Ranges lower = {{4, 4}, {2, 2}, {0, 1}};
  t.on_ack(900'000, lower, 0);
  EXPECT_EQ(t.rtt().smoothed(), srtt);
}

TEST_F(TrackerTest, PacketThresholdDeclaresLossThreeBehindLargest) {
  send(0, 5, 0);
  const Ranges r = {{3, 3}};
  auto out = t.on_ack(100'000, r, 0);
  EXPECT_EQ(pns(out.lost), (std::vector<uint64_t>{0}));  // 0 + 3 <= 3; 1 and 2 not yet
  EXPECT_EQ(out.lost[0].token, 0u);
  EXPECT_EQ(t.packets_lost(), 1u);
  EXPECT_EQ(t.bytes_lost(), kSize);
  EXPECT_EQ(t.bytes_in_flight(), 4u * kSize);  // 1, 2, 4, 5
  auto out2 = t.on_ack(100'500, Ranges{{3, 5}}, 0);
  EXPECT_EQ(pns(out2.lost), (std::vector<uint64_t>{1, 2}));  // 1+3<=5, 2+3<=5
}

TEST_F(TrackerTest, TimeThresholdLossFiresAtTheDeadline) {
  send(0, 2, 0);
  send(3, 3, 10'000);
  const Ranges r = {{3, 3}};
  auto out = t.on_ack(110'000, r, 0);  // rtt 100 ms
  EXPECT_EQ(pns(out.lost), (std::vector<uint64_t>{0}));
  // 1 and 2 were sent at 0: lost 9/8 x 100 ms after that.
  EXPECT_EQ(t.loss_deadline_us(), 112'500u);
  EXPECT_TRUE(t.on_timer(112'499).lost.empty());
  auto late = t.on_timer(112'500);
  EXPECT_EQ(pns(late.lost), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(t.loss_deadline_us(), 0u);
  EXPECT_EQ(t.bytes_in_flight(), 0u);
}

TEST_F(TrackerTest, LateAckOfLostPacketCountsAsSpuriousOnce) {
  send(0, 5, 0);
  t.on_ack(100'000, Ranges{{4, 5}}, 0);  // 0, 1, 2 lost by packet threshold (pn + 3 <= 5)
  EXPECT_EQ(t.packets_lost(), 3u);
  auto out = t.on_ack(101'000, Ranges{{4, 5}, {0, 0}}, 0);
  EXPECT_TRUE(out.acked.empty());  // not returned again
  EXPECT_EQ(t.spurious_losses(), 1u);
  t.on_ack(102'000, Ranges{{4, 5}, {0, 1}}, 0);
  EXPECT_EQ(t.spurious_losses(), 2u);
  t.on_ack(103'000, Ranges{{0, 5}}, 0);
  EXPECT_EQ(t.spurious_losses(), 3u);
  t.on_ack(104'000, Ranges{{0, 5}}, 0);
  EXPECT_EQ(t.spurious_losses(), 3u);
  EXPECT_EQ(t.packets_acked(), 3u);  // 3, 4, 5
}

TEST_F(TrackerTest, ProbeTimeoutBacksOffAndResetsOnAck) {
  EXPECT_EQ(t.pto_deadline_us(), 0u);  // nothing in flight
  send(0, 0, 0);
  t.on_ack(100'000, Ranges{{0, 0}}, 0);
  EXPECT_EQ(t.pto_deadline_us(), 0u);
  send(1, 1, 200'000);
  const uint64_t pto = t.rtt().pto_duration();
  EXPECT_EQ(pto, 100'000u + 4 * 50'000u + t.rtt().max_ack_delay());
  EXPECT_EQ(t.pto_deadline_us(), 200'000u + pto);
  t.on_pto_fired();
  EXPECT_EQ(t.pto_deadline_us(), 200'000u + 2 * pto);
  t.on_pto_fired();
  EXPECT_EQ(t.pto_deadline_us(), 200'000u + 4 * pto);
  send(2, 2, 300'000);
  t.on_ack(400'000, Ranges{{1, 2}}, 0);
  EXPECT_EQ(t.pto_deadline_us(), 0u);
  send(3, 3, 500'000);
  EXPECT_EQ(t.pto_deadline_us(), 500'000u + t.rtt().pto_duration());
}

TEST_F(TrackerTest, AckForUnsentPacketIsIgnored) {
  send(0, 3, 0);
  auto out = t.on_ack(100'000, Ranges{{7, 7}, {0, 3}}, 0);
  EXPECT_FALSE(out.any_new);
  EXPECT_EQ(t.bytes_in_flight(), 4u * kSize);
}

TEST_F(TrackerTest, ManyPacketsInFlightWithRandomLossStayConsistent) {
  // 10k in flight, 1 % loss, ACKs every 100 packets with the receiver's real range record.
  std::mt19937_64 rng(7);
  std::bernoulli_distribution drop(0.01);
  ReceivedPackets rx;
  uint64_t now = 0, next_pn = 0, acked = 0, lost = 0;
  const uint64_t kInFlight = 10'000;
  for (int step = 0; step < 3000; ++step) {
    for (int i = 0; i < 100; ++i, ++next_pn) {
      t.on_sent(now, next_pn, kSize, next_pn, false);
      // Arrives one "RTT" later: receive it now but only ack the packets kInFlight behind.
      if (!drop(rng)) rx.record(next_pn, now);
      now += 50;
    }
    if (next_pn > kInFlight) {
      auto ranges = rx.ranges(ReceivedPackets::kMaxKeptRanges);
      // Only acknowledge what was "received" up to kInFlight packets ago.
      std::vector<AckRange> visible;
      const uint64_t horizon = next_pn - kInFlight;
      for (auto r : ranges) {
        if (r.first >= horizon) continue;
        r.last = std::min(r.last, horizon - 1);
        visible.push_back(r);
      }
      if (!visible.empty()) {
        auto out = t.on_ack(now, visible, 0);
        acked += out.acked.size();
        lost += out.lost.size();
      }
    }
  }
  EXPECT_GT(acked, 250'000u);
  EXPECT_NEAR(static_cast<double>(lost) / static_cast<double>(acked + lost), 0.01, 0.003);
  EXPECT_EQ(t.spurious_losses(), 0u);
  EXPECT_EQ(t.packets_sent(), t.packets_acked() + t.packets_lost() + t.bytes_in_flight() / kSize);
  EXPECT_LE(t.bytes_in_flight(), (kInFlight + 200) * kSize);
}

}  // namespace
}  // namespace ferry::udp
