// =====================================================================================
// TEMPORARY until branch security merges.
//
// The receiver API that branch `security` adds to libferry (TLS, token auth, exports,
// limits, metrics, reload, graceful shutdown), copied here with EXACTLY its names so that
// the daemon compiles and its tests run before the merge. The implementation
// (receiver_api_shim.cc) is a minimal adapter over today's Receiver::create(ReceiveOptions):
//   - no TLS (it refuses tls.plaintext = false), no token check, no limits;
//   - exports must be sibling directories named after the export (<parent>/<name>), because
//     today's receiver serves ONE root and puts ferry://HOST/NAME/... at <root>/NAME/...;
//   - metrics() are all zero; reload() only records its arguments;
//   - stop_accepting() is a no-op; shutdown() stops at once (what `ferry recv` does on
//     SIGTERM: unfinished files are kept for resume, never exposed).
//
// Merging: delete receiver_api_shim.{h,cc} and include "ferry/receiver.h" (and wherever the
// new structs live) instead. The daemon's code names `ReceiveOptions` and `Receiver` from
// inside namespace ferry::daemon, so the shim's classes below shadow the library's ones
// today and the library's real ones are found after the merge, with no other change.
// =====================================================================================
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/options.h"
#include "ferry/receiver.h"
#include "ferry/status.h"

namespace ferry {

struct TlsServerSettings {
  std::string cert_file, key_file;
  std::string client_ca_file;
  bool plaintext = false;
};
struct ExportSpec {
  std::string name;
  std::string root;
};
struct ExportAccess {
  std::string export_name;
  bool read = false;
  bool write = false;
};
using TokenVerifier = std::function<Result<std::vector<ExportAccess>>(std::string_view token)>;  // kRefused on bad token
struct ReceiverMetrics {
  uint64_t sessions_active, sessions_total, auth_failures, bytes_received, files_committed, files_failed, errors;
};

namespace daemon {

// Shadows ferry::ReceiveOptions inside ferry::daemon (see the header comment).
struct ReceiveOptions : ferry::ReceiveOptions {
  TlsServerSettings tls;
  std::vector<ExportSpec> exports;
  TokenVerifier verify_token;
  uint32_t max_sessions = 0;
  uint64_t max_session_rate = 0;  // bytes/s
};

// Shadows ferry::Receiver inside ferry::daemon.
class Receiver {
 public:
  static Result<std::unique_ptr<Receiver>> create(const ReceiveOptions& options);
  virtual ~Receiver() = default;
  virtual std::string url() const = 0;
  virtual uint16_t port() const = 0;
  virtual Status run() = 0;
  virtual void stop() = 0;
  virtual ReceiverMetrics metrics() const = 0;
  virtual Status reload(std::vector<ExportSpec> exports, TokenVerifier verify_token) = 0;
  virtual void stop_accepting() = 0;
  virtual Status shutdown(std::chrono::milliseconds grace) = 0;
};

}  // namespace daemon
}  // namespace ferry
