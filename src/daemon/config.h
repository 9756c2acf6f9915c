// ferryd's configuration: /etc/ferry/ferryd.toml (format in man/ferryd.toml.5).
//
// load_config() reads, parses and validates the whole file and returns either a complete
// DaemonConfig or ONE kUsage error "FILE:LINE: cause" (unknown key or table, duplicate,
// wrong type, missing required key, bad value, unsafe export name, missing path...).
// Validation touches the file system read-only (paths exist, files are readable); it
// never creates anything, so `ferryd --check-config` is side-effect free.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/log.h"
#include "daemon/toml_subset.h"
#include "ferry/status.h"
#include "io/file_io.h"

namespace ferry::daemon {

inline constexpr const char* kDefaultConfigPath = "/etc/ferry/ferryd.toml";

struct ServerConfig {
  std::vector<std::string> listen = {"0.0.0.0:7400"};  // HOST:PORT each; port 0 = any free
  std::string udp_ports;                               // "40000-40100": validated, not used (UDP binds an ephemeral port)
  uint16_t udp_first = 0, udp_last = 0;                // parsed udp_ports; 0 = none
  std::string state_dir = "/var/lib/ferry";
  log::Level log_level = log::Level::kInfo;
  uint64_t memory = 256ull << 20;  // one budget for every receive buffer in flight
  uint32_t max_sessions = 64;      // concurrent sessions; more are refused
  uint64_t session_rate_cap = 0;   // bytes/s per session, 0 = none (configured in bits: "800Mbit")
  uint64_t total_rate_cap = 0;     // bytes/s over all sessions, 0 = none
  std::chrono::milliseconds shutdown_grace{20'000};  // SIGTERM: how long running sessions get
  IoMode io = IoMode::kAuto;       // file I/O backend (as ferry recv --io); read at start only
  bool operator==(const ServerConfig&) const = default;
};

struct TlsConfig {
  std::string cert, key;  // PEM files; required unless plaintext
  std::string client_ca;  // optional: require client certificates signed by this CA
  bool plaintext = false;  // tests and trusted networks only; clients must agree
  bool operator==(const TlsConfig&) const = default;
};

struct ExportConfig {
  std::string name;  // first path component of ferry://HOST/NAME/...
  std::string type = "fs";  // "fs" (alias "dir"): a directory; "s3": a bucket
  std::string path;  // type fs: absolute directory
  // type s3 (docs/s3.md "ferryd exports"); credentials come from the daemon's environment
  // (AWS_* variables, shared credentials/config files, EC2 instance metadata).
  std::string bucket;
  std::string prefix;    // "" or ending in '/' (normalised like s3://BUCKET/PREFIX/)
  std::string endpoint;  // "" = AWS for the region
  std::string region;    // "" = environment / profile / us-east-1
  bool path_style = false;
  uint64_t part_size = 0;  // 0 = 8 MiB; rounded up to whole chunks
  bool is_s3() const { return type == "s3"; }
  bool operator==(const ExportConfig&) const = default;
};

struct DaemonConfig {
  std::string file;  // where it was read from (for messages)
  ServerConfig server;
  TlsConfig tls;
  std::vector<ExportConfig> exports;  // at least one; names unique
  std::string tokens_file;            // [tokens] file; default <state_dir>/tokens.toml
  std::string metrics_listen;         // [metrics] listen; empty = no endpoint
  bool operator==(const DaemonConfig&) const = default;
};

// Export names: 1..64 of [A-Za-z0-9._-], not starting with '.' or '-' (they become a path
// component and appear in URLs and metrics labels).
bool is_safe_export_name(const std::string& name);

Result<DaemonConfig> config_from_toml(const TomlDocument& doc);
Result<DaemonConfig> load_config(const std::string& path);

// The config in canonical TOML: config_from_toml(parse_toml(to_toml(c))) == c.
std::string to_toml(const DaemonConfig& config);

}  // namespace ferry::daemon
