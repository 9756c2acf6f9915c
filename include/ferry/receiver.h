// The embedded receiver (`ferry recv`); ferryd reuses it. It also serves downloads and
// listings (ferry get / ls, GET_SESSION), taking the sender role on the client's connections.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "ferry/options.h"
#include "ferry/status.h"

namespace ferry {

// Counters since the receiver was created. Thread-safe snapshot (Receiver::metrics()).
struct ReceiverMetrics {
  uint64_t sessions_active = 0;
  uint64_t sessions_total = 0;   // sessions opened (authenticated and accepted)
  uint64_t auth_failures = 0;    // bad or missing token, token without access, failed TLS handshakes
  uint64_t bytes_received = 0;   // file bytes written (live sessions included)
  uint64_t files_committed = 0;
  uint64_t files_failed = 0;
  uint64_t errors = 0;           // sessions that ended in error, refused handshakes, "busy"
  // Downloads (ferry get: this receiver in the sender role). sessions_* above count them too.
  uint64_t bytes_sent = 0;           // file bytes handed to the data streams (live sessions included)
  uint64_t get_sessions_active = 0;
  uint64_t get_sessions_total = 0;
};

class Receiver {
 public:
  // Opens the root and binds the listening socket (so url() is valid before run()).
  static Result<std::unique_ptr<Receiver>> create(const ReceiveOptions& options);
  virtual ~Receiver() = default;

  // "ferry://127.0.0.1:7400/?token=<base64url>&fp=sha256:<hex>": the URL a sender should
  // use (token only for the receiver's own token, fp only with TLS).
  virtual std::string url() const = 0;
  virtual uint16_t port() const = 0;

  // Serves sessions until stop(), or with options.once until the first session ends;
  // then returns that session's status.
  virtual Status run() = 0;
  // Thread-safe; run() returns soon after.
  virtual void stop() = 0;

  virtual std::string token() const = 0;             // ferry recv's generated token ("" with a verifier or plaintext)
  virtual std::string fingerprint() const = 0;       // "sha256:..." of the serving certificate ("" plaintext)
  virtual ReceiverMetrics metrics() const = 0;       // thread-safe
  // Thread-safe. New connections use the new exports and verifier; running sessions keep
  // theirs. Opens every export root first: on error nothing changes.
  virtual Status reload(std::vector<ExportSpec> exports, TokenVerifier verify) = 0;
  virtual void stop_accepting() = 0;                 // thread-safe: close listeners, let sessions run
  // SIGTERM: stops accepting, lets running sessions go on for `grace`, then ends them (their
  // journals are checkpointed, partial files kept for resume) and stops run(). Thread-safe;
  // returns when run() has returned (or, if run() is not running, at once).
  virtual Status shutdown(std::chrono::milliseconds grace) = 0;
};

}  // namespace ferry
