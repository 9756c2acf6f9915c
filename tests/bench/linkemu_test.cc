// Tests of the userspace link emulator (bench/linkemu) and bench/netns_link.sh.
//
// The model tests replay link_model.h / packet_fifo.h directly. The link tests bring
// up a real link between two fresh network namespaces (unique names per run, so
// parallel runs cannot collide) with bench/netns_link.sh, send UDP through it from
// sockets opened inside the namespaces, and compare what arrived with linkemu's
// final counters. They skip, saying why, where namespaces or TUN are unavailable.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "link_model.h"
#include "packet_fifo.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------
// the model, no I/O
// ---------------------------------------------------------------------------
TEST(LinkModel, BackToBackPacketsLeaveOneSerializationTimeApart) {
  linkemu::DirectionConfig cfg{.delay_s = 0.010, .rate_bps = 8e6, .loss = 0, .queue_bytes = 100'000};
  linkemu::LinkModel m(cfg, 1);
  // 8 Mbit/s = 1 byte per microsecond: a 1000-byte packet takes 1 ms.
  for (int i = 0; i < 5; ++i) {
    const auto d = m.offer(0, 1000);
    ASSERT_EQ(d.verdict, linkemu::Verdict::kForward);
    EXPECT_EQ(d.depart_ns, (i + 1) * 1'000'000 + 10'000'000) << "packet " << i;
    EXPECT_EQ(d.queue_wait_ns, i * 1'000'000) << "packet " << i;
  }
  // Once the queue has drained, a packet waits for nothing but its own serialization.
  const auto late = m.offer(100'000'000, 1000);
  EXPECT_EQ(late.depart_ns, 100'000'000 + 1'000'000 + 10'000'000);
  EXPECT_EQ(late.queue_wait_ns, 0);
}

TEST(LinkModel, QueueFullDropsTheTailButNotLaterPacketsThatFit) {
  linkemu::DirectionConfig cfg{.delay_s = 0, .rate_bps = 8e6, .loss = 0, .queue_bytes = 3000};
  linkemu::LinkModel m(cfg, 1);
  EXPECT_EQ(m.offer(0, 1000).verdict, linkemu::Verdict::kForward);
  EXPECT_EQ(m.offer(0, 1000).verdict, linkemu::Verdict::kForward);
  EXPECT_EQ(m.offer(0, 1000).verdict, linkemu::Verdict::kForward);
  EXPECT_EQ(m.offer(0, 1000).verdict, linkemu::Verdict::kQueueFull);
  // 1.5 ms later 1500 bytes have left, so one more fits and a second does not.
  EXPECT_EQ(m.offer(1'500'000, 1000).verdict, linkemu::Verdict::kForward);
  EXPECT_EQ(m.offer(1'500'000, 1000).verdict, linkemu::Verdict::kQueueFull);
}

TEST(LinkModel, LossIsDecidedBeforeTheQueueSoLostPacketsTakeNoRoom) {
  linkemu::DirectionConfig cfg{.delay_s = 0, .rate_bps = 8e6, .loss = 0.5, .queue_bytes = 1'000'000};
  linkemu::LinkModel m(cfg, 99);
  linkemu::BernoulliLoss replay(0.5, 99);
  int64_t expected_busy_until = 0;
  for (int i = 0; i < 1000; ++i) {
    const auto d = m.offer(0, 100);
    if (replay.next_is_lost()) {
      EXPECT_EQ(d.verdict, linkemu::Verdict::kLost) << "packet " << i;
    } else {
      ASSERT_EQ(d.verdict, linkemu::Verdict::kForward) << "packet " << i;
      expected_busy_until += 100'000;  // 100 bytes at 1 byte/us
      EXPECT_EQ(d.depart_ns, expected_busy_until) << "packet " << i;
    }
  }
}

TEST(LatencyHistogram, QuantilesAreWithinTheBucketResolution) {
  linkemu::LatencyHistogram h;
  for (uint64_t us = 1; us <= 10'000; ++us) h.record_us(us);
  EXPECT_NEAR(h.quantile_us(0.5), 5000, 5000 * 0.02);
  EXPECT_NEAR(h.quantile_us(0.95), 9500, 9500 * 0.02);
  EXPECT_EQ(h.max_us(), 10'000u);
  EXPECT_LE(h.quantile_us(1.0), 10'000);
}

TEST(PacketFifo, WrapsAroundWithoutReorderingOrLosingBytes) {
  linkemu::PacketFifo fifo(4096);
  std::vector<uint8_t> pkt(700);
  uint64_t pushed = 0, popped = 0;
  int refused = 0;
  for (int round = 0; round < 200; ++round) {
    // Fill until refused, then drain part of it, so the write position walks around.
    while (true) {
      const uint32_t len = 1 + static_cast<uint32_t>((pushed * 37) % pkt.size());
      for (uint32_t i = 0; i < len; ++i) pkt[i] = static_cast<uint8_t>(pushed + i);
      if (!fifo.push(static_cast<int64_t>(pushed), pkt.data(), len)) {
        ++refused;
        break;
      }
      ++pushed;
    }
    for (int k = 0; k < 3 && !fifo.empty(); ++k) {
      const auto p = fifo.front();
      ASSERT_EQ(p.depart_ns, static_cast<int64_t>(popped));
      ASSERT_EQ(p.len, 1 + (popped * 37) % pkt.size());
      for (uint32_t i = 0; i < p.len; ++i) ASSERT_EQ(p.data[i], static_cast<uint8_t>(popped + i));
      fifo.pop();
      ++popped;
    }
  }
  EXPECT_EQ(refused, 200);
  EXPECT_GT(popped, 500u);
  EXPECT_EQ(fifo.size(), pushed - popped);
}

// ---------------------------------------------------------------------------
// a real link between two namespaces
// ---------------------------------------------------------------------------
#if defined(LINKEMU_BINARY) && defined(NETNS_LINK_SCRIPT)

constexpr const char* kAddrA = "10.99.0.1";
constexpr const char* kAddrB = "10.99.0.2";

// A UDP socket that lives in namespace `ns` (a socket keeps the namespace it was
// created in, so we switch this thread in and straight back out).
int udp_socket_in(const std::string& ns) {
  const int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  const int target = open(("/run/netns/" + ns).c_str(), O_RDONLY | O_CLOEXEC);
  if (self < 0 || target < 0 || setns(target, CLONE_NEWNET) != 0) {
    ADD_FAILURE() << "cannot enter namespace " << ns << ": " << std::strerror(errno);
    return -1;
  }
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  const int err = errno;
  if (setns(self, CLONE_NEWNET) != 0) std::abort();  // the rest of the test would run in the wrong namespace
  close(self);
  close(target);
  if (fd < 0) ADD_FAILURE() << "socket in " << ns << ": " << std::strerror(err);
  return fd;
}

sockaddr_in addr(const char* ip, uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, ip, &a.sin_addr);
  return a;
}

void set_recv_timeout(int fd, int ms) {
  timeval tv{ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// One number from linkemu's stats JSON: `key` inside the object of `direction`.
double stats_value(const std::string& json, const std::string& direction, const std::string& key) {
  const size_t obj = json.find("\"" + direction + "\"");
  if (obj == std::string::npos) return -1;
  const size_t end = json.find('}', obj);
  const size_t k = json.find("\"" + key + "\":", obj);
  if (k == std::string::npos || k > end) return -1;
  return std::strtod(json.c_str() + k + key.size() + 3, nullptr);
}

class LinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (network namespaces and TUN devices)";
    if (access("/dev/net/tun", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/net/tun is not available";
    static std::atomic<int> counter{0};
    const std::string tag = "fle" + std::to_string(getpid()) + "-" + std::to_string(counter++);
    ns_a_ = tag + "a";
    ns_b_ = tag + "b";
    dir_ = fs::temp_directory_path() / ("linkemu-test-" + tag);
    fs::create_directories(dir_);
    stats_ = dir_ / "stats.json";
  }

  void TearDown() override {
    if (!ns_a_.empty()) {
      if (up_) script("down");
      std::error_code ec;
      fs::remove_all(dir_, ec);
    }
  }

  // Runs netns_link.sh with this test's namespaces and a private state dir (and
  // without touching the global sysctls). Returns its exit status.
  int script(const std::string& args) {
    const std::string cmd = "FERRY_NS_A=" + ns_a_ + " FERRY_NS_B=" + ns_b_ + " LINKEMU=" LINKEMU_BINARY +
                            " NETNS_LINK_STATE_DIR=" + dir_.string() + "/state NETNS_LINK_GLOBAL_SYSCTL=0 " +
                            NETNS_LINK_SCRIPT " " + args + " >>" + (dir_ / "script.log").string() + " 2>&1";
    const int st = std::system(cmd.c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  }

  // Brings the link up with `linkemu_args`; false if the test should stop (skipped or failed).
  bool up(const std::string& linkemu_args) {
    const int rc = script("up " + linkemu_args + " --stats-json " + stats_.string());
    if (rc == 77) {
      skip_reason_ = read_file(dir_ / "script.log");
      return false;
    }
    up_ = rc == 0;
    EXPECT_EQ(rc, 0) << read_file(dir_ / "script.log");
    return up_;
  }

  // Stops linkemu (which writes its final counters) and returns the stats JSON.
  std::string down_and_read_stats() {
    EXPECT_EQ(script("down"), 0) << read_file(dir_ / "script.log");
    up_ = false;
    std::string json = read_file(stats_);
    EXPECT_FALSE(json.empty()) << "linkemu wrote no stats JSON to " << stats_;
    return json;
  }

  std::string ns_a_, ns_b_, skip_reason_;
  fs::path dir_, stats_;
  bool up_ = false;
};

#define LINK_UP_OR_SKIP(args)                                            \
  do {                                                                   \
    if (!up(args)) {                                                     \
      if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;           \
      return;                                                            \
    }                                                                    \
  } while (0)

TEST_F(LinkTest, RoundTripTakesAtLeastBothDelays) {
  LINK_UP_OR_SKIP("--delay-ms 20 --rate 10M");
  const int a = udp_socket_in(ns_a_), b = udp_socket_in(ns_b_);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  auto ba = addr(kAddrB, 0);
  ASSERT_EQ(bind(b, reinterpret_cast<sockaddr*>(&ba), sizeof ba), 0) << std::strerror(errno);
  socklen_t len = sizeof ba;
  getsockname(b, reinterpret_cast<sockaddr*>(&ba), &len);
  set_recv_timeout(a, 2000);
  set_recv_timeout(b, 2000);

  int replies = 0;
  for (int i = 0; i < 10; ++i) {
    char buf[64] = "probe";
    const auto t0 = Clock::now();
    ASSERT_EQ(sendto(a, buf, 32, 0, reinterpret_cast<sockaddr*>(&ba), sizeof ba), 32) << std::strerror(errno);
    sockaddr_in from{};
    socklen_t flen = sizeof from;
    ASSERT_EQ(recvfrom(b, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen), 32)
        << "probe " << i << " did not arrive in ns " << ns_b_;
    const auto t1 = Clock::now();
    ASSERT_EQ(sendto(b, buf, 32, 0, reinterpret_cast<sockaddr*>(&from), flen), 32);
    ASSERT_EQ(recv(a, buf, sizeof buf, 0), 32) << "reply " << i << " did not come back";
    const auto t2 = Clock::now();
    using std::chrono::microseconds;
    EXPECT_GE(std::chrono::duration_cast<microseconds>(t1 - t0).count(), 20'000) << "one-way a->b, probe " << i;
    EXPECT_GE(std::chrono::duration_cast<microseconds>(t2 - t0).count(), 40'000) << "round trip, probe " << i;
    ++replies;
  }
  close(a);
  close(b);
  const std::string json = down_and_read_stats();
  EXPECT_EQ(replies, 10);
  EXPECT_EQ(stats_value(json, "a_to_b", "packets_forwarded"), 10) << json;
  EXPECT_EQ(stats_value(json, "b_to_a", "packets_forwarded"), 10) << json;
}

TEST_F(LinkTest, LostPacketsAreExactlyTheSeedsDraws) {
  constexpr double kLoss = 0.1;
  constexpr uint64_t kSeed = 42;
  constexpr int kPackets = 1500;
  // A queue far larger than the burst, so loss is the only way to lose a packet.
  LINK_UP_OR_SKIP("--delay-ms 5 --rate 50M --queue-bytes 8M --loss 0.1 --seed 42");
  const int a = udp_socket_in(ns_a_), b = udp_socket_in(ns_b_);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  auto ba = addr(kAddrB, 0);
  ASSERT_EQ(bind(b, reinterpret_cast<sockaddr*>(&ba), sizeof ba), 0);
  socklen_t len = sizeof ba;
  getsockname(b, reinterpret_cast<sockaddr*>(&ba), &len);
  set_recv_timeout(b, 500);

  std::atomic<int> received{0};
  std::thread receiver([&] {
    char buf[2048];
    while (recv(b, buf, sizeof buf, 0) > 0) received++;  // ends 500 ms after the last packet
  });
  char payload[200] = {};
  for (int i = 0; i < kPackets; ++i) {
    ASSERT_EQ(sendto(a, payload, sizeof payload, 0, reinterpret_cast<sockaddr*>(&ba), sizeof ba),
              static_cast<ssize_t>(sizeof payload));
    // Gentle pacing (~3 Mbit/s) so no queue on the way into linkemu overflows.
    if (i % 20 == 19) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  receiver.join();
  close(a);
  close(b);
  const std::string json = down_and_read_stats();

  const auto in = static_cast<int>(stats_value(json, "a_to_b", "packets_in"));
  const auto lost = static_cast<int>(stats_value(json, "a_to_b", "packets_lost"));
  const auto fwd = static_cast<int>(stats_value(json, "a_to_b", "packets_forwarded"));
  EXPECT_EQ(in, kPackets) << "packets that reached linkemu; " << json;
  // Replay the seed: the n-th packet in a direction is lost iff the n-th draw says so.
  linkemu::BernoulliLoss replay(kLoss, linkemu::seed_for(kSeed, 0));
  int expected_lost = 0;
  for (int i = 0; i < in; ++i) expected_lost += replay.next_is_lost() ? 1 : 0;
  EXPECT_EQ(lost, expected_lost) << json;
  EXPECT_GT(lost, kPackets * kLoss / 2) << "the link should really lose packets";
  EXPECT_LT(lost, kPackets * kLoss * 2);
  EXPECT_EQ(stats_value(json, "a_to_b", "packets_dropped"), 0) << json;
  EXPECT_EQ(fwd, in - lost) << json;
  EXPECT_EQ(received.load(), fwd) << "every forwarded packet should reach the socket in " << ns_b_;
}

TEST_F(LinkTest, OverfilledQueueDropsTailAndBoundsTheQueueingDelay) {
  // 5 Mbit/s with a 20 ms queue (12,500 bytes); a burst of 300 x 1000 bytes overfills it.
  LINK_UP_OR_SKIP("--delay-ms 5 --rate 5M --queue-ms 20");
  const int a = udp_socket_in(ns_a_), b = udp_socket_in(ns_b_);
  ASSERT_GE(a, 0);
  ASSERT_GE(b, 0);
  auto ba = addr(kAddrB, 0);
  ASSERT_EQ(bind(b, reinterpret_cast<sockaddr*>(&ba), sizeof ba), 0);
  socklen_t len = sizeof ba;
  getsockname(b, reinterpret_cast<sockaddr*>(&ba), &len);
  set_recv_timeout(b, 500);
  std::atomic<int> received{0};
  std::thread receiver([&] {
    char buf[2048];
    while (recv(b, buf, sizeof buf, 0) > 0) received++;
  });
  char payload[1000] = {};
  int sent = 0;
  for (int i = 0; i < 300; ++i) {
    if (sendto(a, payload, sizeof payload, 0, reinterpret_cast<sockaddr*>(&ba), sizeof ba) > 0) ++sent;
  }
  receiver.join();
  close(a);
  close(b);
  const std::string json = down_and_read_stats();

  const double in = stats_value(json, "a_to_b", "packets_in");
  const double fwd = stats_value(json, "a_to_b", "packets_forwarded");
  const double dropped = stats_value(json, "a_to_b", "packets_dropped");
  EXPECT_GT(sent, 0);
  EXPECT_GT(dropped, 0) << json;
  EXPECT_EQ(fwd + dropped, in) << json;
  EXPECT_EQ(stats_value(json, "a_to_b", "packets_lost"), 0) << json;
  // The queue holds 12,500 bytes = 20 ms at 5 Mbit/s: no packet can wait longer.
  // (The model computes the wait in emulated time, so machine load cannot inflate it.)
  EXPECT_LE(stats_value(json, "a_to_b", "queue_delay_max_ms"), 20.5) << json;
  EXPECT_GT(stats_value(json, "a_to_b", "queue_delay_p95_ms"), 10) << "the queue should have filled; " << json;
  EXPECT_EQ(received.load(), static_cast<int>(fwd));
}

TEST_F(LinkTest, DownRemovesEverythingAndIsIdempotent) {
  LINK_UP_OR_SKIP("--delay-ms 1");
  EXPECT_TRUE(fs::exists("/run/netns/" + ns_a_));
  EXPECT_EQ(script("status"), 0);
  EXPECT_EQ(script("down"), 0);
  up_ = false;
  EXPECT_FALSE(fs::exists("/run/netns/" + ns_a_));
  EXPECT_FALSE(fs::exists("/run/netns/" + ns_b_));
  EXPECT_EQ(script("down"), 0) << "a second down must succeed too";
  EXPECT_NE(script("status"), 0);
}

// ferry itself across the emulated WAN: a file and a small tree over --transport udp through
// 50 ms RTT with 2 % random loss each way arrive byte-identical, and the transfer saw (and
// repaired) the loss.
TEST_F(LinkTest, FerryUdpAcrossALongLossyLinkArrivesByteIdentical) {
  LINK_UP_OR_SKIP("--delay-ms 25 --rate 100M --loss 0.02 --seed 3");
  const fs::path src = dir_ / "src", dst = dir_ / "dst";
  fs::create_directories(src / "shot");
  {
    std::ofstream big(src / "plate.bin", std::ios::binary);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < (12 << 20) / 8; ++i) {  // 12 MiB of xorshift: incompressible
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      big.write(reinterpret_cast<const char*>(&x), 8);
    }
    for (int i = 0; i < 40; ++i) std::ofstream(src / "shot" / ("f" + std::to_string(i) + ".exr")) << std::string(100 + i * 513, 'a' + i % 26);
  }
  const std::string rx_cmd = "ip netns exec " + ns_b_ + " timeout 150 " FERRY_BINARY " recv --listen " + std::string(kAddrB) +
                             ":0 --root " + dst.string() + " --once -q";
  FILE* rx = popen(rx_cmd.c_str(), "r");
  ASSERT_NE(rx, nullptr);
  char line[512] = {};
  ASSERT_NE(fgets(line, sizeof line, rx), nullptr) << "ferry recv printed no URL";
  std::string url(line);
  while (!url.empty() && (url.back() == '\n' || url.back() == '\r')) url.pop_back();
  const std::string tx_cmd = "ip netns exec " + ns_a_ + " timeout 120 " FERRY_BINARY
                             " send --no-progress --json --transport udp --target-rate 400M " + (src / "plate.bin").string() +
                             " " + (src / "shot").string() + " '" + url + "' >" + (dir_ / "send.json").string() + " 2>" +
                             (dir_ / "send.err").string();
  const int tx = std::system(tx_cmd.c_str());
  const int rx_status = pclose(rx);
  ASSERT_EQ(WEXITSTATUS(tx), 0) << read_file(dir_ / "send.err");
  EXPECT_EQ(WEXITSTATUS(rx_status), 0);
  EXPECT_EQ(std::system(("cmp -s " + (src / "plate.bin").string() + " " + (dst / "plate.bin").string()).c_str()), 0);
  EXPECT_EQ(std::system(("diff -r " + (src / "shot").string() + " " + (dst / "shot").string()).c_str()), 0);
  const std::string json = read_file(dir_ / "send.json");
  const size_t lost = json.find("\"packets_lost\":");
  ASSERT_NE(lost, std::string::npos) << json;
  EXPECT_GT(std::strtoull(json.c_str() + lost + 15, nullptr, 10), 0u) << "2 % loss must have been seen: " << json;
  const std::string stats = down_and_read_stats();
  EXPECT_GT(stats_value(stats, "a_to_b", "packets_lost"), 0) << stats;
}

#else
TEST(LinkTest, SkippedWithoutBenchBuild) {
  GTEST_SKIP() << "built without FERRY_BUILD_BENCH (no linkemu binary)";
}
#endif

}  // namespace
