#include "daemon/metrics.h"

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <thread>

#include "core/log.h"
#include "ferry/url.h"

namespace ferry::daemon {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

void counter(std::string& out, const char* name, const char* help, uint64_t value, const char* type = "counter") {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
  out += name;
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

// Label values in the exposition format escape \, " and newline.
std::string label_value(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

class BeastMetricsServer final : public MetricsServer {
 public:
  BeastMetricsServer(Source source, std::string version, int protocol_version)
      : source_(std::move(source)), version_(std::move(version)), protocol_version_(protocol_version) {}

  ~BeastMetricsServer() override {
    asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      io_.stop();
    });
    if (thread_.joinable()) thread_.join();
  }

  Status bind(const std::string& listen) {
    std::string host;
    uint16_t port = 0;
    if (Status st = parse_host_port(listen, &host, &port); !st) return st;
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
    if (ec) return Status(Error::kUsage, "metrics listen: '" + host + "' is not an IP address");
    tcp::endpoint ep(addr, port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status(Error::kNetwork, "metrics: listen on " + listen + ": " + ec.message());
    auto local = acceptor_.local_endpoint();
    port_ = local.port();
    address_ = (local.address().is_v6() ? "[" + local.address().to_string() + "]" : local.address().to_string()) + ":" +
               std::to_string(port_);
    return Status::ok();
  }

  void start() {
    asio::co_spawn(io_, accept_loop(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  uint16_t port() const override { return port_; }
  std::string address() const override { return address_; }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec == asio::error::operation_aborted) co_return;
      if (ec) {
        log::event(log::Level::kWarning, "metrics: accept failed", {{"cause", ec.message()}});
        continue;
      }
      if (connections_ >= kMaxConnections) continue;  // the socket closes as it goes out of scope
      ++connections_;
      asio::co_spawn(io_, serve(std::move(socket)), [this](std::exception_ptr) { --connections_; });
    }
  }

  asio::awaitable<void> serve(tcp::socket socket) {
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer(16 * 1024);
    stream.expires_after(std::chrono::seconds(5));
    http::request_parser<http::empty_body> parser;
    parser.header_limit(8 * 1024);
    parser.body_limit(0);
    auto [ec, n] = co_await http::async_read(stream, buffer, parser, asio::as_tuple(asio::use_awaitable));
    (void)n;
    if (ec) co_return;
    const auto& req = parser.get();
    http::response<http::string_body> res;
    res.version(req.version());
    res.keep_alive(false);
    res.set(http::field::server, "ferryd");
    std::string_view target(req.target().data(), req.target().size());
    if (req.method() == http::verb::get && (target == "/metrics" || target.rfind("/metrics?", 0) == 0)) {
      res.result(http::status::ok);
      res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      res.body() = render_prometheus(source_(), version_, protocol_version_);
    } else {
      res.result(http::status::not_found);
      res.set(http::field::content_type, "text/plain; charset=utf-8");
      res.body() = "not found: this endpoint serves GET /metrics only\n";
    }
    res.prepare_payload();
    stream.expires_after(std::chrono::seconds(5));
    auto [wec, wn] = co_await http::async_write(stream, res, asio::as_tuple(asio::use_awaitable));
    (void)wn;
    (void)wec;
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }

  Source source_;
  std::string version_;
  int protocol_version_;
  asio::io_context io_{1};
  tcp::acceptor acceptor_{io_};
  uint16_t port_ = 0;
  std::string address_;
  int connections_ = 0;  // touched on the server's thread only
  std::thread thread_;
};

}  // namespace

std::string render_prometheus(const MetricsSnapshot& m, std::string_view version, int protocol_version) {
  const ReceiverMetrics& r = m.receiver;
  std::string out;
  counter(out, "ferryd_sessions_active", "Sessions in progress.", r.sessions_active, "gauge");
  counter(out, "ferryd_sessions_total", "Sessions opened since start.", r.sessions_total);
  counter(out, "ferryd_bytes_received_total", "File bytes received and written.", r.bytes_received);
  counter(out, "ferryd_bytes_sent_total", "File bytes sent to downloading clients (ferry get).", r.bytes_sent);
  out += "# HELP ferryd_sessions_by_direction_active Sessions in progress, by direction.\n"
         "# TYPE ferryd_sessions_by_direction_active gauge\n";
  out += "ferryd_sessions_by_direction_active{direction=\"upload\"} " +
         std::to_string(r.sessions_active - std::min(r.sessions_active, r.get_sessions_active)) + "\n";
  out += "ferryd_sessions_by_direction_active{direction=\"download\"} " + std::to_string(r.get_sessions_active) + "\n";
  out += "# HELP ferryd_sessions_by_direction_total Sessions opened since start, by direction (listings not counted).\n"
         "# TYPE ferryd_sessions_by_direction_total counter\n";
  out += "ferryd_sessions_by_direction_total{direction=\"upload\"} " +
         std::to_string(r.sessions_total - std::min(r.sessions_total, r.get_sessions_total)) + "\n";
  out += "ferryd_sessions_by_direction_total{direction=\"download\"} " + std::to_string(r.get_sessions_total) + "\n";
  counter(out, "ferryd_auth_failures_total", "Connections refused for a missing, unknown, revoked or expired token.",
          r.auth_failures);
  counter(out, "ferryd_files_committed_total", "Files verified and renamed into place.", r.files_committed);
  counter(out, "ferryd_files_failed_total", "Files that failed (refused path, checksum, I/O).", r.files_failed);
  counter(out, "ferryd_errors_total", "Sessions that ended with an error.", r.errors);
  out += "# HELP ferryd_config_reloads_total SIGHUP reloads of the configuration, by result.\n"
         "# TYPE ferryd_config_reloads_total counter\n";
  out += "ferryd_config_reloads_total{result=\"success\"} " + std::to_string(m.config_reloads) + "\n";
  out += "ferryd_config_reloads_total{result=\"failure\"} " + std::to_string(m.config_reload_failures) + "\n";
  counter(out, "ferryd_start_time_seconds", "Start time of the daemon, unix seconds.",
          static_cast<uint64_t>(m.start_time), "gauge");
  out += "# HELP ferryd_build_info Version of ferryd and of its wire protocol.\n# TYPE ferryd_build_info gauge\n";
  out += "ferryd_build_info{version=\"" + label_value(version) + "\",protocol=\"" + std::to_string(protocol_version) +
         "\"} 1\n";
  return out;
}

Result<std::unique_ptr<MetricsServer>> MetricsServer::start(const std::string& listen, Source source,
                                                            std::string version, int protocol_version) {
  auto server = std::make_unique<BeastMetricsServer>(std::move(source), std::move(version), protocol_version);
  if (Status st = server->bind(listen); !st) return st;
  server->start();
  return std::unique_ptr<MetricsServer>(std::move(server));
}

}  // namespace ferry::daemon
