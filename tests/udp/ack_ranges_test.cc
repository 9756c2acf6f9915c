// Tests for src/transport/udp/ack_ranges.{h,cc}: the receiver's record of packet numbers.
#include "transport/udp/ack_ranges.h"

#include <gtest/gtest.h>

#include <vector>

namespace ferry::udp {
namespace {

using Ranges = std::vector<AckRange>;

TEST(ReceivedPackets, InOrderPacketsFormOneRange) {
  ReceivedPackets r;
  for (uint64_t pn = 0; pn < 100; ++pn) EXPECT_TRUE(r.record(pn, 1000 + pn));
  EXPECT_EQ(r.ranges(10), (Ranges{{0, 99}}));
  EXPECT_EQ(r.largest(), 99u);
  EXPECT_EQ(r.largest_time_us(), 1099u);
}

TEST(ReceivedPackets, GapsGiveDescendingRanges) {
  ReceivedPackets r;
  for (uint64_t pn : {1, 2, 3, 6, 7, 10}) EXPECT_TRUE(r.record(pn, 0));
  EXPECT_EQ(r.ranges(10), (Ranges{{10, 10}, {6, 7}, {1, 3}}));
  EXPECT_EQ(r.ranges(2), (Ranges{{10, 10}, {6, 7}}));
}

TEST(ReceivedPackets, ReorderedPacketFillsAndMergesGap) {
  ReceivedPackets r;
  for (uint64_t pn : {1, 2, 4, 5}) EXPECT_TRUE(r.record(pn, 0));
  EXPECT_TRUE(r.record(3, 50));
  EXPECT_EQ(r.ranges(10), (Ranges{{1, 5}}));
  // A late packet does not change the largest's receive time.
  EXPECT_EQ(r.largest_time_us(), 0u);
  EXPECT_TRUE(r.record(0, 60));
  EXPECT_TRUE(r.record(9, 70));
  EXPECT_TRUE(r.record(7, 80));  // alone in the gap 6..8
  EXPECT_TRUE(r.record(8, 90));  // joins 7 and 9
  EXPECT_EQ(r.ranges(10), (Ranges{{7, 9}, {0, 5}}));
}

TEST(ReceivedPackets, DuplicatesAreReported) {
  ReceivedPackets r;
  EXPECT_TRUE(r.record(5, 0));
  EXPECT_TRUE(r.record(7, 0));
  EXPECT_FALSE(r.record(5, 0));
  EXPECT_FALSE(r.record(7, 0));
  EXPECT_TRUE(r.record(6, 0));
  EXPECT_FALSE(r.record(6, 0));
  EXPECT_EQ(r.ranges(10), (Ranges{{5, 7}}));
}

TEST(ReceivedPackets, MemoryIsBoundedAndOldPnsBecomeDuplicates) {
  ReceivedPackets r;
  // Every other packet lost: one range per received packet.
  for (uint64_t pn = 0; pn < 2 * 1000; pn += 2) r.record(pn, 0);
  EXPECT_EQ(r.range_count(), ReceivedPackets::kMaxKeptRanges);
  const auto ranges = r.ranges(1000);
  ASSERT_EQ(ranges.size(), ReceivedPackets::kMaxKeptRanges);
  EXPECT_EQ(ranges.front(), (AckRange{1998, 1998}));
  // A packet below the floor (dropped-old region) counts as a duplicate.
  EXPECT_GT(r.floor(), 1u);
  EXPECT_FALSE(r.record(1, 0));
  // One inside the kept region is still accepted.
  EXPECT_TRUE(r.record(1997, 0));
}

TEST(ReceivedPackets, ForgetBelowDropsAndCutsRanges) {
  ReceivedPackets r;
  for (uint64_t pn : {1, 2, 3, 10, 11, 12, 20}) r.record(pn, 0);
  r.forget_below(11);
  EXPECT_EQ(r.ranges(10), (Ranges{{20, 20}, {11, 12}}));
  EXPECT_FALSE(r.record(5, 0));
  EXPECT_FALSE(r.record(10, 0));
  EXPECT_TRUE(r.record(15, 0));
}

}  // namespace
}  // namespace ferry::udp
