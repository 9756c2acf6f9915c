// ferryd's server-side limits, functionally: max_sessions answers "busy" (and frees up when
// a session ends), session_rate_cap paces a session and the data still arrives intact,
// total_rate_cap is shared by concurrent TCP and UDP sessions.
#include <gtest/gtest.h>

#include <thread>

#include "../e2e/raw_client.h"
#include "daemon_util.h"

namespace ferry::test {
namespace {

TEST(DaemonLimitsTest, OverMaxSessionsTheDaemonAnswersBusyAndServesAgainOnceASessionEnds) {
  DaemonLayout layout({"plates"}, "max_sessions = 1\n");
  std::string token = layout.new_token("limits");
  Ferryd ferryd(layout.config_path);
  ASSERT_TRUE(ferryd.ready()) << ferryd.process().stderr_text();
  TempDir src("busy-src");
  write_text(src / "f.txt", "frame");

  auto holder = std::make_unique<RawClient>(ferryd.port());
  std::vector<uint8_t> p;
  ASSERT_EQ(holder->open_session(token, "plates/held", &p), protocol::FrameType::kSessionOpened);
  auto busy = run_command(layout.send_args(token, {"-q", src / "f.txt", ferryd.url("plates/second")}));
  EXPECT_EQ(busy.exit_code, 6) << busy.err;
  EXPECT_NE(busy.err.find("busy: this receiver serves at most 1 sessions at once"), std::string::npos) << busy.err;
  struct stat st {};
  EXPECT_NE(lstat((layout.export_path("plates") + "/second").c_str(), &st), 0);
  std::string m = ferryd.metrics();
  EXPECT_EQ(metric_value(m, "ferryd_sessions_active"), 1) << m;
  EXPECT_GE(metric_value(m, "ferryd_errors_total"), 1) << m;
  EXPECT_EQ(metric_value(m, "ferryd_auth_failures_total"), 0) << "busy is not an authentication failure: " << m;

  // The held session ends when its connection closes; then the daemon accepts again.
  holder.reset();
  int active = 1;
  for (int i = 0; i < 250 && active != 0; ++i) {
    usleep(20'000);
    active = static_cast<int>(metric_value(ferryd.metrics(), "ferryd_sessions_active"));
  }
  ASSERT_EQ(active, 0);
  auto ok = run_command(layout.send_args(token, {"-q", src / "f.txt", ferryd.url("plates/second")}));
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(read_text(layout.export_path("plates") + "/second/f.txt"), "frame");

  ferryd.process().signal(SIGTERM);
  EXPECT_EQ(ferryd.process().wait_exit(std::chrono::seconds(30)), 0);
}

// 16 Mbit/s = 2 MB/s: 4 MiB in 256 KiB chunks, the first one free, take at least ~1.9 s.
// Only a lower bound is asserted (the cap may never be beaten; how close a run gets to it
// is a benchmark question).
TEST(DaemonLimitsTest, SessionRateCapPacesTheSessionAndEveryByteArrives) {
  DaemonLayout layout({"plates"}, "session_rate_cap = \"16Mbit\"\n");
  std::string token = layout.new_token("capped");
  Ferryd ferryd(layout.config_path);
  ASSERT_TRUE(ferryd.ready()) << ferryd.process().stderr_text();
  TempDir src("cap-src");
  write_random_file(src / "capped.bin", 4 << 20, 3);
  auto start = std::chrono::steady_clock::now();
  auto r = run_command(layout.send_args(token, {"-q", "--chunk-size", "256K", src / "capped.bin", ferryd.url("plates")}));
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(hash_file(src / "capped.bin"), hash_file(layout.export_path("plates") + "/capped.bin"));
  EXPECT_GE(took, std::chrono::milliseconds(1500)) << "the server's cap was not applied";

  ferryd.process().signal(SIGTERM);
  EXPECT_EQ(ferryd.process().wait_exit(std::chrono::seconds(30)), 0);
}

// 16 Mbit/s = 2 MB/s over all sessions: a TCP and a UDP send of 3 MiB each, at once, take
// at least ~3.1 s together (each alone on loopback takes well under a second). The UDP
// sender is told its share when the TCP session becomes active (RATE_LIMIT), and says so.
// Only a lower bound is asserted, as above.
TEST(DaemonLimitsTest, TotalRateCapIsSharedByConcurrentTcpAndUdpSessions) {
  DaemonLayout layout({"plates"}, "total_rate_cap = \"16Mbit\"\n");
  std::string token = layout.new_token("total");
  Ferryd ferryd(layout.config_path);
  ASSERT_TRUE(ferryd.ready()) << ferryd.process().stderr_text();
  TempDir src("total-src");
  write_random_file(src / "tcp.bin", 3 << 20, 4);
  write_random_file(src / "udp.bin", 3 << 20, 5);
  auto start = std::chrono::steady_clock::now();
  CommandResult tcp, udp;
  std::thread t([&] {
    tcp = run_command(layout.send_args(token, {"-q", "--chunk-size", "256K", src / "tcp.bin", ferryd.url("plates")}));
  });
  udp = run_command(layout.send_args(
      token, {"-v", "--no-progress", "--transport", "udp", "--chunk-size", "256K", src / "udp.bin", ferryd.url("plates")}));
  t.join();
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_EQ(tcp.exit_code, 0) << tcp.err;
  ASSERT_EQ(udp.exit_code, 0) << udp.err;
  EXPECT_EQ(hash_file(src / "tcp.bin"), hash_file(layout.export_path("plates") + "/tcp.bin"));
  EXPECT_EQ(hash_file(src / "udp.bin"), hash_file(layout.export_path("plates") + "/udp.bin"));
  EXPECT_GE(took, std::chrono::milliseconds(2200)) << "the total cap was not applied";
  EXPECT_NE(udp.err.find("now caps this session at"), std::string::npos) << udp.err;

  ferryd.process().signal(SIGTERM);
  EXPECT_EQ(ferryd.process().wait_exit(std::chrono::seconds(30)), 0);
}

}  // namespace
}  // namespace ferry::test
