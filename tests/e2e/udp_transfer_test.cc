// End-to-end transfers with --transport udp over real loopback sockets: the control
// connection on TCP, the data as sealed datagrams. Loopback neither loses nor reorders, so
// the bad-path tests put the seeded in-process fault shim (a named fake, DatagramFaults)
// between the transport and its socket on both ends.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>

#include "e2e_util.h"

namespace ferry::test {
namespace {

class UdpTransferTest : public ::testing::Test {
 protected:
  SendOptions udp_options() {
    SendOptions o = quiet_options();
    o.transport = Transport::kUdp;
    return o;
  }
  // A tree with the awkward cases: empty file and dir, a symlink, many small files, odd names.
  void make_tree(const std::string& root, int small_files) {
    ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((root + "/empty dir").c_str(), 0700), 0);
    write_text(root + "/zero.txt", "");
    ASSERT_EQ(symlink("zero.txt", (root + "/link").c_str()), 0);
    ASSERT_EQ(mkdir((root + "/frames").c_str(), 0755), 0);
    for (int i = 0; i < small_files; ++i)
      write_random_file(root + "/frames/f." + std::to_string(1000 + i) + ".exr", 100 + 997 * i, 7000 + i);
    write_compressible_file(root + "/cache.txt", 9 << 20);
  }
  TempDir src_{"src"};
  TempDir dst_{"dst"};
};

TEST_F(UdpTransferTest, LargeFileAndTreeArriveByteIdentical) {
  const uint64_t kSize = 96ull << 20;
  write_random_file(src_ / "plate.bin", kSize, 11);
  make_tree(src_ / "shot", 150);
  ReceiverThread rx(dst_.path());
  TransferReport r = send_files({src_ / "plate.bin", src_ / "shot"}, rx.url("in"), udp_options());
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(hash_file(dst_ / "in/plate.bin"), hash_file(src_ / "plate.bin"));
  expect_same_tree(src_ / "shot", dst_ / "in/shot");
  ASSERT_TRUE(r.udp.used);
  EXPECT_EQ(r.udp.policy, "fair");
  // Every byte went as datagrams: at least one per 1439-byte fragment of the plate.
  EXPECT_GE(r.udp.packets_sent, kSize / 1439);
  EXPECT_GE(r.udp.datagram_bytes, kSize);
  EXPECT_EQ(r.udp.auth_failures, 0u);
  EXPECT_GT(r.udp.min_rtt_ms, 0.0);
  EXPECT_TRUE(leftover_temp_files(dst_.path()).empty());
}

TEST_F(UdpTransferTest, SurvivesDropsReordersAndDuplicatesInBothDirections) {
  write_random_file(src_ / "plate.bin", 40ull << 20, 12);
  make_tree(src_ / "shot", 60);
  ReceiveOptions ro;
  ro.root = dst_.path();
  ro.udp_faults = {0.05, 0.05, 0.05, 99};  // on the receiver's ACKs
  ReceiverThread rx(ro);
  SendOptions o = udp_options();
  o.udp_faults = {0.05, 0.05, 0.05, 7};  // on the sender's DATA
  TransferReport r = send_files({src_ / "plate.bin", src_ / "shot"}, rx.url(), o);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(hash_file(dst_ / "plate.bin"), hash_file(src_ / "plate.bin"));
  expect_same_tree(src_ / "shot", dst_ / "shot");
  // The shim really dropped datagrams, and the transport noticed and sent them again.
  EXPECT_GT(r.udp.packets_lost, r.udp.packets_sent / 100);
  EXPECT_GT(r.udp.retransmitted_bytes, 0u);
  EXPECT_EQ(r.chunks_resent, 0u) << "losses are repaired per datagram, not per chunk";
}

TEST_F(UdpTransferTest, CorruptedChunkIsCaughtByItsChecksumAndSentAgain) {
  write_random_file(src_ / "plate.bin", 24ull << 20, 13);
  ReceiverThread rx(dst_.path());
  SendOptions o = udp_options();
  o.fault_corrupt_chunks = 2;  // TEST-ONLY: flips a byte after the checksum was taken
  TransferReport r = send_files({src_ / "plate.bin"}, rx.url(), o);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.chunks_resent, 2u);
  EXPECT_EQ(hash_file(dst_ / "plate.bin"), hash_file(src_ / "plate.bin"));
}

TEST_F(UdpTransferTest, DroppedLinkIsRetriedAndResumesOverUdp) {
  write_random_file(src_ / "plate.bin", 96ull << 20, 14);
  ReceiverThread rx(dst_.path());
  SendOptions o = udp_options();
  o.fault_drop_link_after_chunks = 8;  // every connection dies after 8 chunks
  o.retry_timeout = std::chrono::milliseconds(60'000);
  TransferReport r = send_files({src_ / "plate.bin"}, rx.url(), o);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_GE(r.reconnects, 1u);
  EXPECT_GT(r.chunks_resumed, 0u) << "chunks that arrived before a drop are not sent again";
  EXPECT_EQ(hash_file(dst_ / "plate.bin"), hash_file(src_ / "plate.bin"));
}

TEST_F(UdpTransferTest, FixedPolicyNeverExceedsItsTargetRate) {
  // A correctness check of the pacer, not a performance target: at a fixed 80 Mbit/s the
  // 12 MiB cannot arrive faster than 1.26 s (only a lower bound is asserted).
  write_random_file(src_ / "plate.bin", 12ull << 20, 15);
  ReceiverThread rx(dst_.path());
  SendOptions o = udp_options();
  o.policy = "fixed";
  o.target_rate = 10'000'000;  // bytes/s
  o.compress = "none";
  TransferReport r = send_files({src_ / "plate.bin"}, rx.url(), o);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.udp.policy, "fixed");
  EXPECT_GE(r.udp.data_seconds, 0.9 * (12.0 * (1 << 20)) / 10'000'000);
  EXPECT_EQ(hash_file(dst_ / "plate.bin"), hash_file(src_ / "plate.bin"));
}

TEST_F(UdpTransferTest, BadUdpOptionsAreUsageErrors) {
  write_text(src_ / "a.txt", "a");
  ReceiverThread rx(dst_.path());
  SendOptions o = udp_options();
  o.policy = "greedy";
  EXPECT_EQ(send_files({src_ / "a.txt"}, rx.url(), o).status.code(), Error::kUsage);
  o = udp_options();
  o.max_datagram = 100;
  EXPECT_EQ(send_files({src_ / "a.txt"}, rx.url(), o).status.code(), Error::kUsage);
  o = udp_options();
  o.target_rate = 1000;
  o.min_rate = 2000;
  EXPECT_EQ(send_files({src_ / "a.txt"}, rx.url(), o).status.code(), Error::kUsage);
  struct stat st {};
  EXPECT_NE(lstat((dst_ / "a.txt").c_str(), &st), 0);
}

}  // namespace
}  // namespace ferry::test
