// Real transfers to the real ferryd over TLS with real tokens: 50 senders at once, the UDP
// transport, and SIGTERM in the middle of a transfer followed by a restart and a re-run
// that resumes from the partial files.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>

#include "daemon_util.h"

namespace ferry::test {
namespace {

uint64_t json_number(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\":([0-9]+)"))) return UINT64_MAX;
  return std::stoull(m[1]);
}

void stop(Ferryd& ferryd) {
  ferryd.process().signal(SIGTERM);
  EXPECT_EQ(ferryd.process().wait_exit(std::chrono::seconds(30)), 0) << ferryd.process().stderr_text();
}

TEST(DaemonTransferTest, FiftyConcurrentSendersAllArriveByteIdentical) {
  constexpr int kSenders = 50;
  DaemonLayout layout;
  std::string token = layout.new_token("farm");
  Ferryd ferryd(layout.config_path);
  ASSERT_TRUE(ferryd.ready()) << ferryd.process().stderr_text();
  TempDir src("fifty-src");
  for (int i = 0; i < kSenders; ++i) {
    std::string tree = src / ("job" + std::to_string(i));
    ASSERT_EQ(mkdir(tree.c_str(), 0755), 0);
    write_random_file(tree + "/a.bin", 1000 + 37 * i, 100 + i);
    write_random_file(tree + "/b.bin", 64 << 10, 200 + i);
    write_compressible_file(tree + "/c.txt", (200 << 10) + i);
  }
  // All started before any is waited for; each writes to its own directory in the export.
  std::vector<std::unique_ptr<Process>> senders;
  for (int i = 0; i < kSenders; ++i) {
    std::string job = "job" + std::to_string(i);
    senders.push_back(std::make_unique<Process>(
        layout.send_args(token, {"-q", "--streams", "2", src / job, ferryd.url("plates/farm")})));
  }
  for (int i = 0; i < kSenders; ++i)
    EXPECT_EQ(senders[i]->wait_exit(std::chrono::seconds(120)), 0) << "sender " << i << ": " << senders[i]->stderr_text();
  for (int i = 0; i < kSenders; ++i) {
    std::string job = "job" + std::to_string(i);
    expect_same_tree(src / job, layout.export_path("plates") + "/farm/" + job);
  }
  EXPECT_TRUE(leftover_temp_files(layout.export_path("plates")).empty());
  EXPECT_EQ(ferryd.wait_metric("ferryd_files_committed_total", 3 * kSenders), 3 * kSenders);
  std::string m = ferryd.metrics();
  EXPECT_EQ(metric_value(m, "ferryd_sessions_total"), kSenders) << m;
  EXPECT_EQ(metric_value(m, "ferryd_errors_total"), 0) << m;
  EXPECT_EQ(metric_value(m, "ferryd_auth_failures_total"), 0) << m;
  stop(ferryd);
}

// UDP data path against the daemon: negotiated on the TLS control connection, datagram keys
// from the TLS exporter, the receiver's UDP socket on a port of udp_ports on the control
// connection's local address. The range here is a single port this test holds first: while
// it is taken the session is refused as busy, naming the range; once free, the send works.
TEST(DaemonTransferTest, UdpTransportToFerrydBindsAPortOfUdpPortsAndJustWorks) {
  int holder = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);  // not inherited by ferryd
  ASSERT_GE(holder, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  socklen_t alen = sizeof a;
  ASSERT_EQ(getsockname(holder, reinterpret_cast<sockaddr*>(&a), &alen), 0);
  const std::string port = std::to_string(ntohs(a.sin_port));
  DaemonLayout layout({"plates"}, "udp_ports = \"" + port + "-" + port + "\"\n");
  std::string token = layout.new_token("udp");
  Ferryd ferryd(layout.config_path);
  ASSERT_TRUE(ferryd.ready()) << ferryd.process().stderr_text();
  TempDir small("udp-busy");
  write_text(small / "f.txt", "frame");
  auto busy = run_command(layout.send_args(token, {"-q", "--transport", "udp", small / "f.txt", ferryd.url("plates/b")}));
  EXPECT_EQ(busy.exit_code, 6) << busy.err;
  EXPECT_NE(busy.err.find("no free UDP port in " + port + "-" + port), std::string::npos) << busy.err;
  close(holder);

  TempDir src("udp-src");
  ASSERT_EQ(mkdir((src / "shot").c_str(), 0755), 0);
  write_random_file(src / "shot/plate.bin", 24 << 20, 5);
  for (int i = 0; i < 20; ++i) write_random_file(src / ("shot/f." + std::to_string(i)), 500 + 1000 * i, 50 + i);
  auto r = run_command(layout.send_args(token, {"--json", "--no-progress", "--transport", "udp", src / "shot",
                                                ferryd.url("plates/udp")}));
  ASSERT_EQ(r.exit_code, 0) << r.err << ferryd.process().stderr_text();
  expect_same_tree(src / "shot", layout.export_path("plates") + "/udp/shot");
  EXPECT_NE(r.out.find("\"encrypted\":true"), std::string::npos) << r.out;
  ASSERT_NE(r.out.find("\"udp\":{"), std::string::npos) << "the UDP transport was not used: " << r.out;
  EXPECT_GE(json_number(r.out, "packets_sent"), (24u << 20) / 1472) << r.out;
  EXPECT_EQ(json_number(r.out, "auth_failures"), 0u) << r.out;
  EXPECT_EQ(ferryd.wait_metric("ferryd_files_committed_total", 21), 21);
  stop(ferryd);
}

// SIGTERM while a transfer runs: the daemon ends the session after its grace period with the
// journal checkpointed and the partial files kept. The sender (no retries) fails; after a
// restart the same command resumes from what had arrived and completes.
TEST(DaemonTransferTest, SigtermMidTransferThenRestartAndRerunResumes) {
  // 160 Mbit/s = 20 MB/s per session: the 48 MiB take about 2.4 s, so SIGTERM after 8 MiB
  // lands mid-transfer.
  DaemonLayout layout({"plates"}, "shutdown_grace = \"200ms\"\nsession_rate_cap = \"160Mbit\"\n");
  std::string token = layout.new_token("resume");
  TempDir src("resume-src");
  ASSERT_EQ(mkdir((src / "seq").c_str(), 0755), 0);
  write_random_file(src / "seq/a.exr", 24 << 20, 1);
  write_random_file(src / "seq/b.exr", 24 << 20, 2);

  auto ferryd = std::make_unique<Ferryd>(layout.config_path);
  ASSERT_TRUE(ferryd->ready()) << ferryd->process().stderr_text();
  uint16_t port = ferryd->port();
  std::vector<std::string> command = layout.send_args(
      token, {"--json", "--no-progress", "--retry-timeout", "0", "--chunk-size", "1M", "--transfer-id", "sigterm-rerun",
              src / "seq", ferryd->url("plates/shot")});
  Process first(command);
  ASSERT_GE(ferryd->wait_metric("ferryd_bytes_received_total", 8 << 20), 8 << 20) << ferryd->process().stderr_text();
  ferryd->process().signal(SIGTERM);
  EXPECT_EQ(ferryd->process().wait_exit(std::chrono::seconds(30)), 0) << ferryd->process().stderr_text();
  EXPECT_NE(first.wait_exit(std::chrono::seconds(60)), 0) << "the transfer finished before SIGTERM; the test proves nothing";
  struct stat st {};
  EXPECT_NE(stat((layout.export_path("plates") + "/shot/seq/b.exr").c_str(), &st), 0) << "b.exr was already complete";

  // Restart on the same port (the URL, and so the sender's view, is unchanged) and re-run.
  std::string text = read_text(layout.config_path);
  text.replace(text.find("127.0.0.1:0"), 11, "127.0.0.1:" + std::to_string(port));
  write_text(layout.config_path, text);
  ferryd = std::make_unique<Ferryd>(layout.config_path);
  ASSERT_TRUE(ferryd->ready()) << ferryd->process().stderr_text();
  auto rerun = run_command(command);
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err << ferryd->process().stderr_text();
  EXPECT_GT(json_number(rerun.out, "chunks_resumed"), 0u) << rerun.out;
  EXPECT_LT(json_number(rerun.out, "chunks_sent"), 48u) << "everything was sent again: " << rerun.out;
  expect_same_tree(src / "seq", layout.export_path("plates") + "/shot/seq");
  EXPECT_TRUE(leftover_temp_files(layout.export_path("plates")).empty());
  stop(*ferryd);
}

}  // namespace
}  // namespace ferry::test
