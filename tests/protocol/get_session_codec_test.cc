// GET_SESSION (protocol 3) and the LIST_REQUEST one-level flag: round trips, and every
// peer-controlled count and size is bounded before anything is allocated.
#include <gtest/gtest.h>

#include "protocol/frames.h"

namespace ferry::protocol {
namespace {

std::span<const uint8_t> payload(const std::vector<uint8_t>& frame) {
  return {frame.data() + kFrameHeaderSize, frame.size() - kFrameHeaderSize};
}

GetSession sample() {
  GetSession m;
  m.chunk_size = 1 << 20;
  m.data_streams = 3;
  m.compression = 7;
  m.transfer_id[0] = 0xAB;
  m.transfer_id[15] = 0xCD;
  m.paths = {{false, "plates/shot 010"}, {true, "plates/ünï"}};
  return m;
}

TEST(GetSessionCodecTest, RoundTripsEveryField) {
  auto frame = encode(sample());
  auto h = decode_header(frame.data(), 0);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->type, FrameType::kGetSession);
  auto m = decode_get_session(payload(frame));
  ASSERT_TRUE(m) << m.status().to_string();
  EXPECT_EQ(m->chunk_size, 1u << 20);
  EXPECT_EQ(m->data_streams, 3);
  EXPECT_FALSE(m->list_only);
  EXPECT_EQ(m->compression, 7);
  EXPECT_EQ(m->transfer_id, sample().transfer_id);
  ASSERT_EQ(m->paths.size(), 2u);
  EXPECT_FALSE(m->paths[0].contents);
  EXPECT_EQ(m->paths[0].path, "plates/shot 010");
  EXPECT_TRUE(m->paths[1].contents);
  EXPECT_EQ(m->paths[1].path, "plates/ünï");
  EXPECT_STREQ(to_string(FrameType::kGetSession), "GET_SESSION");
}

TEST(GetSessionCodecTest, ListOnlyNeedsZeroStreamsAndExactlyOnePath) {
  GetSession m = sample();
  m.list_only = true;
  m.data_streams = 0;
  m.paths.resize(1);
  EXPECT_TRUE(decode_get_session(payload(encode(m))));
  m.paths.push_back({false, "x"});
  EXPECT_FALSE(decode_get_session(payload(encode(m))));
  m.paths.resize(1);
  m.data_streams = 2;
  EXPECT_FALSE(decode_get_session(payload(encode(m))));
  GetSession get = sample();
  get.data_streams = 0;  // a download needs data streams (no UDP for get)
  EXPECT_FALSE(decode_get_session(payload(encode(get))));
}

TEST(GetSessionCodecTest, OutOfRangeValuesAreMalformed) {
  GetSession m = sample();
  m.chunk_size = 1024;
  EXPECT_FALSE(decode_get_session(payload(encode(m))));
  m = sample();
  m.compression = 20;
  EXPECT_FALSE(decode_get_session(payload(encode(m))));
  m = sample();
  m.data_streams = kMaxStreams + 1;
  EXPECT_FALSE(decode_get_session(payload(encode(m))));
  m = sample();
  m.paths.clear();
  EXPECT_FALSE(decode_get_session(payload(encode(m))));
  m = sample();
  m.paths.assign(kMaxGetPaths + 1, GetPath{false, "a"});
  EXPECT_FALSE(decode_get_session(payload(encode(m))));
  m.paths.resize(kMaxGetPaths);
  EXPECT_TRUE(decode_get_session(payload(encode(m))));
}

TEST(GetSessionCodecTest, ACountLargerThanThePayloadIsRejectedBeforeAllocating) {
  auto frame = encode(sample());
  std::vector<uint8_t> p(frame.begin() + kFrameHeaderSize, frame.end());
  // u32 chunk, u16 streams, u8 flags, u8 compression, 16 id, then the u16 count.
  p[24] = 0x03;
  p[25] = 0xFF;  // 1023 paths claimed, 2 present
  auto m = decode_get_session(p);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.status().code(), Error::kProtocol);
  // Trailing bytes and unknown flags are errors too.
  p = std::vector<uint8_t>(frame.begin() + kFrameHeaderSize, frame.end());
  p.push_back(0);
  EXPECT_FALSE(decode_get_session(p));
  p = std::vector<uint8_t>(frame.begin() + kFrameHeaderSize, frame.end());
  p[6] = 0x02;
  EXPECT_FALSE(decode_get_session(p));
}

TEST(GetSessionCodecTest, ListRequestCarriesTheOneLevelFlag) {
  auto f = encode(ListRequest{true, true});
  auto m = decode_list_request(payload(f));
  ASSERT_TRUE(m);
  EXPECT_TRUE(m->with_hashes);
  EXPECT_TRUE(m->one_level);
  std::vector<uint8_t> bad = {0x04};
  EXPECT_FALSE(decode_list_request(bad));
}

}  // namespace
}  // namespace ferry::protocol
