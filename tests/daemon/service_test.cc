// The ferryd process under signals, as systemd drives it: READY/WATCHDOG/RELOADING/STOPPING
// on a real $NOTIFY_SOCKET, SIGHUP with a broken config keeps serving, and SIGTERM during a
// real `ferry send` exits 0 within the grace period, after which a restarted ferryd lets
// the same (retrying) sender finish with identical files.
#include <gtest/gtest.h>
#include <sys/un.h>

#include "daemon_util.h"

namespace ferry::test {
namespace {

// A real AF_UNIX datagram socket standing in for systemd's notify socket.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof a.sun_path, "%s", path.c_str());
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~NotifySocket() { close(fd_); }
  bool bound() const { return bound_; }
  // The next datagram, or "" after `timeout`.
  std::string next(std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "";
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
  // Skips datagrams until one contains `what`; returns it ("" on timeout).
  std::string until(const std::string& what, std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      std::string d = next(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
      if (d.find(what) != std::string::npos) return d;
    }
    return "";
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

TEST(ServiceTest, TellsSystemdReadyWatchdogReloadingAndStopping) {
  DaemonLayout layout;
  NotifySocket notify(layout.dir / "notify.sock");
  ASSERT_TRUE(notify.bound());
  Ferryd ferryd(layout.config_path, {"NOTIFY_SOCKET=" + (layout.dir / "notify.sock"), "WATCHDOG_USEC=200000"});
  ASSERT_TRUE(ferryd.ready()) << ferryd.process().stderr_text();
  std::string ready = notify.until("READY=1");
  EXPECT_NE(ready.find("STATUS=serving 1 export(s) on 1 address(es)"), std::string::npos) << ready;
  // WATCHDOG_USEC=200ms: a keep-alive every 100 ms.
  EXPECT_EQ(notify.until("WATCHDOG=1"), "WATCHDOG=1");
  EXPECT_EQ(notify.until("WATCHDOG=1"), "WATCHDOG=1");

  ferryd.process().signal(SIGHUP);
  EXPECT_EQ(notify.until("RELOADING=1"), "RELOADING=1");
  EXPECT_NE(notify.until("READY=1"), "");

  ferryd.process().signal(SIGTERM);
  EXPECT_NE(notify.until("STOPPING=1"), "");
  EXPECT_EQ(ferryd.process().wait_exit(std::chrono::seconds(30)), 0) << ferryd.process().stderr_text();
}

TEST(ServiceTest, WatchdogForAnotherPidIsIgnored) {
  DaemonLayout layout;
  NotifySocket notify(layout.dir / "notify.sock");
  Ferryd ferryd(layout.config_path,
                {"NOTIFY_SOCKET=" + (layout.dir / "notify.sock"), "WATCHDOG_USEC=100000", "WATCHDOG_PID=1"});
  ASSERT_TRUE(ferryd.ready());
  EXPECT_NE(notify.until("READY=1"), "");
  EXPECT_EQ(notify.until("WATCHDOG=1", std::chrono::milliseconds(700)), "");
}

TEST(ServiceTest, SighupWithBrokenConfigKeepsServingTheOldOne) {
  DaemonLayout layout;
  std::string token = layout.new_token("hup");
  Ferryd ferryd(layout.config_path);
  ASSERT_TRUE(ferryd.ready()) << ferryd.process().stderr_text();
  std::string good = read_text(layout.config_path);

  write_text(layout.config_path, good + "\n[[export]]\nname = \"plates\"\npath = \"/nonexistent\"\nrote = 1\n");
  ferryd.process().signal(SIGHUP);
  std::string cause = ferryd.process().wait_for("msg=\"reload refused; still serving the previous config\" cause=\"([^\"]*)");
  EXPECT_NE(cause.find("ferryd.toml:"), std::string::npos) << ferryd.process().stderr_text();
  EXPECT_NE(cause.find("unknown key 'rote' in [[export]]"), std::string::npos) << cause;

  // Still serving, from the old config.
  TempDir src("hup-src");
  write_random_file(src / "a.bin", 1 << 20, 1);
  auto send = run_command(layout.send_args(token, {"-q", src / "a.bin", ferryd.url("plates/after-bad-hup")}));
  ASSERT_EQ(send.exit_code, 0) << send.err << ferryd.process().stderr_text();
  EXPECT_EQ(hash_file(src / "a.bin"), hash_file(layout.export_path("plates") + "/after-bad-hup/a.bin"));
  std::string metrics = http_get(ferryd.metrics_port(), "/metrics");
  EXPECT_NE(metrics.find("ferryd_config_reloads_total{result=\"failure\"} 1"), std::string::npos) << metrics;

  // A good config reloads; a restart-only change is reported, not applied.
  std::string changed = good;
  changed.replace(changed.find("[tls]"), 5, "max_sessions = 7\n[tls]");
  write_text(layout.config_path, changed);
  size_t mark = ferryd.process().stderr_text().size();
  ferryd.process().signal(SIGHUP);
  EXPECT_NE(ferryd.process().wait_for("msg=reloaded", std::chrono::seconds(20), mark), "") << ferryd.process().stderr_text();
  EXPECT_NE(ferryd.process().stderr_text().find("restart ferryd to apply it\" key=server.max_sessions", mark),
            std::string::npos)
      << ferryd.process().stderr_text();
  metrics = http_get(ferryd.metrics_port(), "/metrics");
  EXPECT_NE(metrics.find("ferryd_config_reloads_total{result=\"success\"} 1"), std::string::npos) << metrics;

  ferryd.process().signal(SIGTERM);
  EXPECT_EQ(ferryd.process().wait_exit(std::chrono::seconds(30)), 0);
}

TEST(ServiceTest, SigtermDuringTransferExitsCleanlyAndARestartLetsTheSenderFinish) {
  // The session rate cap (400 Mbit/s = 50 MB/s) keeps the 144 MiB transfer running for
  // about 3 s, so SIGTERM lands mid-transfer and the 1 s grace ends the session early.
  DaemonLayout layout({"plates"}, "shutdown_grace = \"1s\"\nsession_rate_cap = \"400Mbit\"\n", /*metrics=*/false);
  std::string token = layout.new_token("term");
  TempDir src("term-src");
  mkdir((src / "seq").c_str(), 0755);
  for (int i = 0; i < 48; ++i) write_random_file(src / ("seq/f." + std::to_string(1000 + i) + ".exr"), 3 << 20, i);

  auto ferryd = std::make_unique<Ferryd>(layout.config_path);
  ASSERT_TRUE(ferryd->ready()) << ferryd->process().stderr_text();
  uint16_t port = ferryd->port();
  Process sender(layout.send_args(token, {"--json", "--no-progress", "--retry-timeout", "120", src / "seq",
                                          ferryd->url("plates/shot")}));
  ASSERT_NE(ferryd->process().wait_for("session [0-9a-f]+ from sender"), "") << ferryd->process().stderr_text();
  ferryd->process().signal(SIGTERM);
  // Exits 0 within the grace period (1 s; the bound here is generous for a loaded machine).
  EXPECT_EQ(ferryd->process().wait_exit(std::chrono::seconds(25)), 0) << ferryd->process().stderr_text();
  std::string log = ferryd->process().stderr_text();
  EXPECT_NE(log.find("msg=stopping signal=SIGTERM grace_ms=1000"), std::string::npos) << log;
  EXPECT_NE(log.find("msg=stopped"), std::string::npos) << log;
  // Nothing half-written under a final name: every file present is complete.
  std::map<std::string, TreeItem> partial;
  list_tree(layout.export_path("plates"), "", &partial);
  int complete = 0;
  for (const auto& [rel, item] : partial) {
    if (item.type != 'f' || rel.find(".part") != std::string::npos) continue;
    ++complete;
    EXPECT_EQ(item.content, hash_file(src / ("seq/" + rel.substr(rel.rfind('/') + 1))).hex()) << rel;
  }
  EXPECT_LT(complete, 48) << "the transfer was over before SIGTERM; the test proves nothing";

  // Restart on the same port: the sender, still retrying, reconnects and completes.
  std::string text = read_text(layout.config_path);
  text.replace(text.find("127.0.0.1:0"), 11, "127.0.0.1:" + std::to_string(port));
  write_text(layout.config_path, text);
  ferryd = std::make_unique<Ferryd>(layout.config_path);
  ASSERT_TRUE(ferryd->ready()) << ferryd->process().stderr_text();
  EXPECT_EQ(sender.wait_exit(std::chrono::seconds(180)), 0) << sender.stderr_text();
  expect_same_tree(src / "seq", layout.export_path("plates") + "/shot/seq");
  EXPECT_TRUE(leftover_temp_files(layout.export_path("plates")).empty());

  ferryd->process().signal(SIGTERM);
  EXPECT_EQ(ferryd->process().wait_exit(std::chrono::seconds(30)), 0);
}

TEST(ServiceTest, StartupFailuresExitWithOneLineAndACode) {
  DaemonLayout layout;
  // The port is taken: exit 3 (network), one line naming the address.
  Ferryd first(layout.config_path);
  ASSERT_TRUE(first.ready());
  std::string text = read_text(layout.config_path);
  text.replace(text.find("127.0.0.1:0"), 11, "127.0.0.1:" + std::to_string(first.port()));
  std::string taken = layout.dir / "taken.toml";
  write_text(taken, text);
  auto r = run_command({FERRYD_BINARY, "--config", taken});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("level=error prog=ferryd msg=\"listen 127.0.0.1:" + std::to_string(first.port())),
            std::string::npos)
      << r.err;
  first.process().signal(SIGTERM);
  EXPECT_EQ(first.process().wait_exit(std::chrono::seconds(30)), 0);
}

}  // namespace
}  // namespace ferry::test
