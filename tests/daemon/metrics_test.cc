// /metrics: the exposition text, the HTTP endpoint over a real socket (in-process with
// known values), and the real ferryd serving it from its config.
#include "daemon/metrics.h"

#include <gtest/gtest.h>

#include "daemon_util.h"

namespace ferry::daemon {
namespace {

MetricsSnapshot sample() {
  MetricsSnapshot s;
  s.receiver = ReceiverMetrics{3, 41, 7, 123456789012ull, 5000, 2, 1};
  s.config_reloads = 4;
  s.config_reload_failures = 1;
  s.start_time = 1795900000;
  return s;
}

TEST(MetricsTest, ExpositionHasEveryMetricWithTypeAndValue) {
  std::string text = render_prometheus(sample(), "1.2.3", 1);
  for (const char* line : {"# TYPE ferryd_sessions_active gauge\nferryd_sessions_active 3\n",
                           "# TYPE ferryd_sessions_total counter\nferryd_sessions_total 41\n",
                           "ferryd_bytes_received_total 123456789012\n", "ferryd_auth_failures_total 7\n",
                           "ferryd_files_committed_total 5000\n", "ferryd_files_failed_total 2\n",
                           "ferryd_errors_total 1\n", "ferryd_config_reloads_total{result=\"success\"} 4\n",
                           "ferryd_config_reloads_total{result=\"failure\"} 1\n",
                           "ferryd_start_time_seconds 1795900000\n",
                           "ferryd_build_info{version=\"1.2.3\",protocol=\"1\"} 1\n"})
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n---\n" << text;
  // Every sample line is "name[{labels}] value" and every family has HELP and TYPE.
  for (const auto& l : test::lines_of(text)) {
    if (l.rfind("# HELP ", 0) == 0 || l.rfind("# TYPE ", 0) == 0) continue;
    EXPECT_TRUE(std::regex_match(l, std::regex("ferryd_[a-z_]+(\\{[a-z]+=\"[^\"]*\"(,[a-z]+=\"[^\"]*\")*\\})? [0-9]+")))
        << l;
  }
  EXPECT_NE(render_prometheus(sample(), "a\"b\\c", 1).find("version=\"a\\\"b\\\\c\""), std::string::npos);
}

TEST(MetricsTest, ServesGetMetricsOverHttpAndNothingElse) {
  int scrapes = 0;
  auto server = MetricsServer::start("127.0.0.1:0", [&] {
    ++scrapes;
    return sample();
  }, "9.9.9", 1);
  ASSERT_TRUE(server) << server.status().message();
  uint16_t port = (*server)->port();
  ASSERT_NE(port, 0);
  EXPECT_EQ((*server)->address(), "127.0.0.1:" + std::to_string(port));

  std::string resp = test::http_get(port, "/metrics");
  EXPECT_EQ(resp.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << resp;
  EXPECT_NE(resp.find("Content-Type: text/plain; version=0.0.4"), std::string::npos) << resp;
  EXPECT_NE(resp.find("\r\n\r\n# HELP ferryd_sessions_active"), std::string::npos) << resp;
  EXPECT_NE(resp.find("ferryd_bytes_received_total 123456789012\n"), std::string::npos) << resp;
  EXPECT_NE(resp.find("ferryd_build_info{version=\"9.9.9\",protocol=\"1\"} 1"), std::string::npos);

  for (const char* target : {"/", "/metric", "/metrics/x", "/../metrics"})
    EXPECT_EQ(test::http_get(port, target).rfind("HTTP/1.1 404 Not Found\r\n", 0), 0u) << target;
  EXPECT_EQ(test::http_get(port, "/metrics", "POST").rfind("HTTP/1.1 404", 0), 0u);
  EXPECT_EQ(scrapes, 1);  // the source is asked only for real scrapes

  // A client that connects and says nothing does not stop others from being served.
  int idle = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(idle, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  EXPECT_EQ(test::http_get(port, "/metrics").rfind("HTTP/1.1 200", 0), 0u);
  close(idle);

  // Stopping (destruction) closes the port.
  server->reset();
  EXPECT_EQ(test::http_get(port, "/metrics"), "");
}

TEST(MetricsTest, RefusesAnAddressInUse) {
  auto first = MetricsServer::start("127.0.0.1:0", [] { return MetricsSnapshot{}; }, "1", 1);
  ASSERT_TRUE(first);
  auto second = MetricsServer::start("127.0.0.1:" + std::to_string((*first)->port()), [] { return MetricsSnapshot{}; },
                                     "1", 1);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.status().code(), Error::kNetwork);
  EXPECT_NE(second.status().message().find("metrics: listen on 127.0.0.1:"), std::string::npos);
}

// The real daemon, scraped over a real socket after a real transfer (TLS, a real token):
// the counters are the receiver's real ones.
TEST(MetricsTest, RealFerrydServesMetricsFromItsConfig) {
  test::DaemonLayout layout;
  std::string token = layout.new_token("metrics");
  test::Ferryd ferryd(layout.config_path);
  ASSERT_TRUE(ferryd.ready()) << ferryd.process().stderr_text();
  ASSERT_NE(ferryd.metrics_port(), 0) << ferryd.process().stderr_text();
  std::string before = ferryd.metrics();
  EXPECT_EQ(test::metric_value(before, "ferryd_sessions_total"), 0) << before;
  EXPECT_EQ(test::metric_value(before, "ferryd_bytes_received_total"), 0) << before;

  test::TempDir src("metrics-src");
  test::write_random_file(src / "frame.0001.exr", 3 << 20, 7);
  auto send = test::run_command(layout.send_args(token, {"-q", src / "frame.0001.exr", ferryd.url("plates/shot")}));
  ASSERT_EQ(send.exit_code, 0) << send.err;
  EXPECT_EQ(test::hash_file(src / "frame.0001.exr"), test::hash_file(layout.export_path("plates") + "/shot/frame.0001.exr"));

  // The session is counted as ended once the daemon's network thread has seen it finish.
  EXPECT_EQ(ferryd.wait_metric("ferryd_files_committed_total", 1), 1);
  std::string resp = test::http_get(ferryd.metrics_port(), "/metrics");
  EXPECT_EQ(resp.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << resp;
  EXPECT_EQ(test::metric_value(resp, "ferryd_sessions_total"), 1) << resp;
  EXPECT_EQ(test::metric_value(resp, "ferryd_bytes_received_total"), 3 << 20) << resp;
  EXPECT_EQ(test::metric_value(resp, "ferryd_files_committed_total"), 1) << resp;
  EXPECT_EQ(test::metric_value(resp, "ferryd_files_failed_total"), 0) << resp;
  EXPECT_EQ(test::metric_value(resp, "ferryd_auth_failures_total"), 0) << resp;
  EXPECT_EQ(test::metric_value(resp, "ferryd_errors_total"), 0) << resp;
  EXPECT_GE(test::metric_value(resp, "ferryd_sessions_active"), 0) << resp;
  EXPECT_NE(resp.find("\nferryd_build_info{version=\"0.2.0\",protocol=\"3\"} 1"), std::string::npos) << resp;
  EXPECT_EQ(test::http_get(ferryd.metrics_port(), "/").rfind("HTTP/1.1 404", 0), 0u);

  ferryd.process().signal(SIGTERM);
  EXPECT_EQ(ferryd.process().wait_exit(std::chrono::seconds(30)), 0) << ferryd.process().stderr_text();
}

}  // namespace
}  // namespace ferry::daemon
