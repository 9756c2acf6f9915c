// ferryd's Prometheus endpoint: `GET /metrics` over plain HTTP/1.1 on a loopback address
// (the config refuses any other), text exposition format 0.0.4. Anything else gets 404.
//
// The server has its own thread and io_context, so a slow scraper never delays transfers;
// it holds at most kMaxConnections at once and drops a request not complete in 5 s.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "ferry/receiver.h"
#include "ferry/status.h"

namespace ferry::daemon {

// What one scrape shows: the receivers' counters (summed) plus the daemon's own.
struct MetricsSnapshot {
  ReceiverMetrics receiver{0, 0, 0, 0, 0, 0, 0};
  uint64_t config_reloads = 0;          // successful SIGHUP reloads
  uint64_t config_reload_failures = 0;  // SIGHUPs whose new config was refused
  int64_t start_time = 0;               // unix seconds
};

// The exposition text: ferryd_sessions_active, ferryd_sessions_total, ferryd_bytes_received_total,
// ferryd_bytes_sent_total, ferryd_sessions_by_direction_{active,total}{direction=upload|download},
// ferryd_auth_failures_total, ferryd_files_committed_total, ferryd_files_failed_total,
// ferryd_errors_total, ferryd_config_reloads_total{result=...}, ferryd_start_time_seconds and
// ferryd_build_info{version,protocol} 1.
std::string render_prometheus(const MetricsSnapshot& m, std::string_view version, int protocol_version);

class MetricsServer {
 public:
  static constexpr int kMaxConnections = 16;
  using Source = std::function<MetricsSnapshot()>;  // called on the server's thread

  // Binds `listen` (HOST:PORT, port 0 = any free) and starts serving.
  static Result<std::unique_ptr<MetricsServer>> start(const std::string& listen, Source source, std::string version,
                                                      int protocol_version);
  virtual ~MetricsServer() = default;  // stops and joins the thread
  virtual uint16_t port() const = 0;
  virtual std::string address() const = 0;  // "127.0.0.1:9471"
};

}  // namespace ferry::daemon
