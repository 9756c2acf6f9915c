// UdpChunkReceiver on a real loopback UDP socket, driven by a test client that seals
// datagrams itself: fragments in any order reassemble into one chunk; forged, wrongly keyed
// and replayed datagrams are dropped and counted; the ACK that comes back is authentic and
// covers what arrived.
#include "transport/udp/udp_chunk_receiver.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <cstring>
#include <random>

#include "core/byte_order.h"
#include "transport/udp/datagram_format.h"

namespace ferry::udp {
namespace {

struct Delivered {
  protocol::ChunkHeader header;
  std::vector<uint8_t> payload;
  uint64_t reserved;
};

class UdpChunkReceiverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = sender_kx_.derive(receiver_kx_.public_key(), context_, true);
    auto r = receiver_kx_.derive(sender_kx_.public_key(), context_, false);
    ASSERT_TRUE(s && r);
    sender_keys_ = *s;
    auto sock = std::make_unique<DatagramSocket>(io_);
    ASSERT_TRUE(sock->open(udp_endpoint(asio::ip::make_address("127.0.0.1"), 0), "test").is_ok());
    UdpReceiverConfig cfg;
    cfg.chunk_size = 64 << 10;
    cfg.peer = "test sender";
    receiver_ = std::make_shared<UdpChunkReceiver>(
        io_, std::move(sock), *r, budget_, cfg,
        [this](const protocol::ChunkHeader& h, Buffer p, uint32_t len, uint64_t reserved) {
          delivered_.push_back({h, std::vector<uint8_t>(p.get(), p.get() + len), reserved});
          budget_.release(reserved);
        },
        [this](const Status& st) { error_ = st; });
    receiver_->start();
    client_.open(asio::ip::udp::v4());
    client_.bind(udp_endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client_.non_blocking(true);
    to_ = udp_endpoint(asio::ip::make_address("127.0.0.1"), receiver_->port());
  }

  // The chunk's wire record (header + payload), cut into max-size fragments.
  std::vector<std::vector<uint8_t>> fragments(const std::vector<uint8_t>& payload, protocol::ChunkHeader h) {
    uint8_t prefix[protocol::kChunkPrefixSize];
    protocol::encode_chunk_prefix(h, static_cast<uint32_t>(payload.size()), prefix);
    std::vector<uint8_t> record(prefix + protocol::kFrameHeaderSize, prefix + protocol::kChunkPrefixSize);
    record.insert(record.end(), payload.begin(), payload.end());
    const size_t frag = max_fragment(kDefaultMaxDatagram);
    std::vector<std::vector<uint8_t>> out;
    for (size_t off = 0; off < record.size(); off += frag) {
      size_t n = std::min(frag, record.size() - off);
      std::vector<uint8_t> body(kDataPrefix + n);
      store_be32(body.data(), 0);  // chunk_ref
      store_be32(body.data() + 4, static_cast<uint32_t>(off) | (off + n == record.size() ? kLastFragmentFlag : 0));
      std::memcpy(body.data() + kDataPrefix, record.data() + off, n);
      out.push_back(std::move(body));
    }
    return out;
  }

  std::vector<uint8_t> seal(const crypto::DirectionKeys& keys, uint64_t pn, const std::vector<uint8_t>& body) {
    crypto::DatagramSealer sealer(keys);
    std::vector<uint8_t> dg(kHeaderSize + body.size() + kTagSize);
    encode_header(DatagramKind::kData, pn, dg.data());
    sealer.seal(pn, {dg.data(), kHeaderSize}, body, dg.data() + kHeaderSize);
    return dg;
  }

  void send(const std::vector<uint8_t>& dg) { client_.send_to(asio::buffer(dg), to_); }
  void run_for(int ms) { io_.run_for(std::chrono::milliseconds(ms)); io_.restart(); }

  asio::io_context io_;
  MemoryBudget budget_{64 << 20};
  crypto::KeyExchange sender_kx_, receiver_kx_;
  std::vector<uint8_t> context_{1, 2, 3, 4};
  crypto::SessionKeys sender_keys_;
  std::shared_ptr<UdpChunkReceiver> receiver_;
  asio::ip::udp::socket client_{io_};
  udp_endpoint to_;
  std::vector<Delivered> delivered_;
  Status error_;
};

TEST_F(UdpChunkReceiverTest, FragmentsInAnyOrderMakeOneChunkAndForgeriesAndReplaysAreCounted) {
  std::vector<uint8_t> payload(5000);
  std::mt19937 rng(3);
  for (auto& b : payload) b = static_cast<uint8_t>(rng());
  protocol::ChunkHeader h{7, 0, 5000, 0, 0x1234};
  auto frags = fragments(payload, h);
  ASSERT_EQ(frags.size(), 4u);  // 32 + 5000 bytes in 1439-byte fragments

  std::vector<uint8_t> forged(200);
  for (auto& b : forged) b = static_cast<uint8_t>(rng());
  forged[0] = 0x01;  // claims to be DATA
  crypto::KeyExchange stranger;
  auto wrong = stranger.derive(receiver_kx_.public_key(), context_, true);
  ASSERT_TRUE(wrong);

  send(seal(sender_keys_.outgoing(), 3, frags[3]));  // last fragment first
  send(forged);
  send(seal(wrong->outgoing(), 4, frags[0]));  // sealed with another session's key
  send(seal(sender_keys_.outgoing(), 1, frags[1]));
  auto replayed = seal(sender_keys_.outgoing(), 1, frags[1]);
  send(replayed);  // the same packet again
  send(seal(sender_keys_.outgoing(), 0, frags[0]));
  send(seal(sender_keys_.outgoing(), 2, frags[2]));
  run_for(300);

  ASSERT_TRUE(error_.is_ok()) << error_.to_string();
  ASSERT_EQ(delivered_.size(), 1u);
  EXPECT_EQ(delivered_[0].header.file_id, 7u);
  EXPECT_EQ(delivered_[0].header.raw_length, 5000u);
  EXPECT_EQ(delivered_[0].payload, payload);
  EXPECT_EQ(receiver_->stats().auth_failures, 3u);  // forged, wrong key, replay
  EXPECT_EQ(budget_.in_use(), 0u);

  // The ACK is sealed with the receiver->sender key and covers packets 0..3.
  uint8_t buf[2048];
  boost::system::error_code ec;
  size_t n = client_.receive(asio::buffer(buf), 0, ec);
  ASSERT_FALSE(ec) << ec.message();
  auto header = decode_header({buf, n});
  ASSERT_TRUE(header);
  EXPECT_EQ(header->kind, DatagramKind::kAck);
  crypto::DatagramOpener opener(sender_keys_.incoming());
  uint8_t plain[2048];
  auto len = opener.open(header->packet_number, {buf, kHeaderSize}, {buf + kHeaderSize, n - kHeaderSize}, plain);
  ASSERT_TRUE(len) << len.status().to_string();
  auto ack = decode_ack_body({plain, *len});
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->largest_acked, 3u);
  ASSERT_EQ(ack->ranges.size(), 1u);
  EXPECT_EQ(ack->ranges[0], (AckRange{0, 3}));
}

TEST_F(UdpChunkReceiverTest, AuthenticFragmentThatBreaksTheRulesFailsTheSession) {
  std::vector<uint8_t> body(kDataPrefix + 100);
  store_be32(body.data(), 0);
  store_be32(body.data() + 4, 7);  // not a multiple of the fragment size, not last
  send(seal(sender_keys_.outgoing(), 0, body));
  run_for(200);
  EXPECT_EQ(error_.code(), Error::kProtocol) << error_.to_string();
  EXPECT_NE(error_.message().find("malformed"), std::string::npos) << error_.message();
  EXPECT_TRUE(delivered_.empty());
}

TEST_F(UdpChunkReceiverTest, WithoutBudgetADatagramIsDroppedUnacknowledgedAndTakenLater) {
  std::vector<uint8_t> payload(3000, 0x5A);
  auto frags = fragments(payload, protocol::ChunkHeader{1, 0, 3000, 0, 9});
  ASSERT_TRUE(budget_.try_acquire(64 << 20));  // someone else holds the whole budget
  send(seal(sender_keys_.outgoing(), 0, frags[0]));
  run_for(100);
  EXPECT_EQ(receiver_->stats().budget_drops, 1u);
  budget_.release(64 << 20);
  for (size_t i = 0; i < frags.size(); ++i) send(seal(sender_keys_.outgoing(), 1 + i, frags[i]));  // resent
  run_for(200);
  ASSERT_EQ(delivered_.size(), 1u);
  EXPECT_EQ(delivered_[0].payload, payload);
}

}  // namespace
}  // namespace ferry::udp
