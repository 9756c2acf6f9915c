// Tests for src/transport/udp/datagram_format.{h,cc}: round trips and malformed input.
#include "transport/udp/datagram_format.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "core/byte_order.h"

namespace ferry::udp {
namespace {

TEST(DatagramFormat, HeaderRoundTrip) {
  std::vector<uint8_t> d(kHeaderSize + kTagSize, 0);
  encode_header(DatagramKind::kAck, 0x0102030405060708ull, d.data());
  EXPECT_EQ(d[0], 0x02);
  EXPECT_EQ(d[1], 0x01);  // big-endian
  auto h = decode_header(d);
  ASSERT_TRUE(h) << h.status().to_string();
  EXPECT_EQ(h->kind, DatagramKind::kAck);
  EXPECT_EQ(h->packet_number, 0x0102030405060708ull);
}

TEST(DatagramFormat, HeaderRejectsUnknownKindAndShortInput) {
  std::vector<uint8_t> d(kHeaderSize + kTagSize, 0);
  for (uint8_t bad : {0x00, 0x04, 0xFF}) {
    d[0] = bad;
    EXPECT_FALSE(decode_header(d)) << int(bad);
  }
  d[0] = 0x01;
  EXPECT_TRUE(decode_header(d));
  EXPECT_FALSE(decode_header(std::span<const uint8_t>(d.data(), kHeaderSize + kTagSize - 1)));
}

TEST(DatagramFormat, DataBodyRoundTrip) {
  const std::vector<uint8_t> frag = {9, 8, 7, 6, 5};
  std::vector<uint8_t> body(kDataPrefix + frag.size());
  EXPECT_EQ(encode_data_body(0xA0B0C0D0u, 4096, frag, body.data()), body.size());
  auto d = decode_data_body(body);
  ASSERT_TRUE(d) << d.status().to_string();
  EXPECT_EQ(d->chunk_ref, 0xA0B0C0D0u);
  EXPECT_EQ(d->offset, 4096u);
  EXPECT_EQ(std::vector<uint8_t>(d->fragment.begin(), d->fragment.end()), frag);
}

TEST(DatagramFormat, DataBodyWithoutFragmentIsRejected) {
  std::vector<uint8_t> body(kDataPrefix, 0);
  EXPECT_FALSE(decode_data_body(body));
  EXPECT_FALSE(decode_data_body(std::span<const uint8_t>(body.data(), 3)));
}

TEST(DatagramFormat, DataBodyPastFourGiBIsRejected) {
  std::vector<uint8_t> body(kDataPrefix + 2, 0);
  encode_data_body(1, 0xFFFFFFFFu, std::span<const uint8_t>(body.data(), 2), body.data());
  EXPECT_FALSE(decode_data_body(body));
}

AckFrame sample_ack() {
  AckFrame f;
  f.largest_acked = 1000;
  f.ack_delay_us = 1234;
  f.largest_recv_time_us = 987654321;
  f.floor = 10;
  f.ranges = {{990, 1000}, {500, 980}, {10, 20}};
  return f;
}

TEST(DatagramFormat, AckBodyRoundTrip) {
  const AckFrame f = sample_ack();
  std::vector<uint8_t> body;
  encode_ack_body(f, body);
  EXPECT_EQ(body.size(), ack_body_size(f));
  auto g = decode_ack_body(body);
  ASSERT_TRUE(g) << g.status().to_string();
  EXPECT_EQ(*g, f);
  // The three encoders agree.
  EXPECT_EQ(encode_ack_body(f), body);
  std::vector<uint8_t> raw(body.size() + 4, 0xEE);
  EXPECT_EQ(encode_ack_body(f, raw.data()), body.size());
  EXPECT_TRUE(std::equal(body.begin(), body.end(), raw.begin()));
  EXPECT_EQ(raw.back(), 0xEE);  // nothing written past the body
}

TEST(DatagramFormat, MaxAckRangesFitInADatagram) {
  AckFrame f;
  for (size_t i = 0; i < kMaxAckRangesDefault; ++i) {
    const uint64_t last = 1'000'000 - 3 * i;
    f.ranges.push_back({last - 1, last});
  }
  f.largest_acked = f.ranges.front().last;
  std::vector<uint8_t> body;
  encode_ack_body(f, body);
  EXPECT_LE(kHeaderSize + body.size() + kTagSize, kDefaultMaxDatagram);
  EXPECT_GT(kHeaderSize + body.size() + kTagSize + kAckRangeSize, kDefaultMaxDatagram);
  EXPECT_TRUE(decode_ack_body(body));
}

TEST(DatagramFormat, AckBodyMalformedInputIsRejected) {
  std::vector<uint8_t> good;
  encode_ack_body(sample_ack(), good);

  // Truncated anywhere, or with a trailing byte.
  for (size_t n = 0; n < good.size(); ++n) {
    EXPECT_FALSE(decode_ack_body(std::span<const uint8_t>(good.data(), n))) << n;
  }
  auto longer = good;
  longer.push_back(0);
  EXPECT_FALSE(decode_ack_body(longer));

  auto with = [&](auto mutate) {
    AckFrame f = sample_ack();
    mutate(f);
    std::vector<uint8_t> b;
    encode_ack_body(f, b);
    return decode_ack_body(b).is_ok();
  };
  EXPECT_FALSE(with([](AckFrame& f) { f.ranges.clear(); }));
  EXPECT_FALSE(with([](AckFrame& f) { f.ranges[1] = {980, 500}; }));             // first > last
  EXPECT_FALSE(with([](AckFrame& f) { f.ranges[1] = {500, 995}; }));             // overlaps range 0
  EXPECT_FALSE(with([](AckFrame& f) { std::swap(f.ranges[1], f.ranges[2]); }));  // ascending
  EXPECT_FALSE(with([](AckFrame& f) { f.largest_acked = 999; }));                // mismatch
  EXPECT_TRUE(with([](AckFrame&) {}));

  // Count says more ranges than the body holds.
  auto lying = good;
  store_be16(lying.data() + 28, 4);
  EXPECT_FALSE(decode_ack_body(lying));
}

}  // namespace
}  // namespace ferry::udp
