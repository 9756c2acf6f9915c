// TLS 1.3 contexts for ferry's TCP connections (control and data streams), over OpenSSL 3
// through Boost.Asio's ssl layer.
//
// Server: a certificate and key from files, or an EPHEMERAL self-signed EC P-256 certificate
// made in memory at start (`ferry recv`: zero setup; the client pins its fingerprint), and
// optionally mutual TLS (a client certificate signed by a given CA is required).
// Client: verifies the server by a CA file, by the system store (both with host name
// checks), or by a pinned certificate fingerprint; or not at all (--insecure, tests only).
//
// Invariant: no context negotiates anything older than TLS 1.3.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>
#include <string_view>

#include "ferry/options.h"
#include "ferry/status.h"

typedef struct ssl_st SSL;
typedef struct x509_st X509;

namespace ferry {

namespace asio = boost::asio;

// "sha256:<64 lower-case hex>": SHA-256 of the certificate's DER encoding.
std::string certificate_fingerprint(X509* cert);

// Accepts "sha256:<hex>", bare hex, and the colon-separated upper-case form `openssl x509
// -fingerprint -sha256` prints; returns the canonical "sha256:<hex>" or a kUsage error.
Result<std::string> normalize_fingerprint(std::string_view text);

// The text of the OpenSSL error queue (emptied), for messages: "", or "; <reason>...".
std::string drain_openssl_errors();

class TlsContext {
 public:
  static Result<std::shared_ptr<TlsContext>> server(const TlsServerSettings& settings);
  static Result<std::shared_ptr<TlsContext>> client(const TlsClientSettings& settings);

  asio::ssl::context& native() { return ctx_; }
  bool is_server() const { return server_; }
  // Server: the fingerprint of the certificate it presents.
  const std::string& fingerprint() const { return fingerprint_; }
  // Client: the host name to check the certificate against (CA and system-store modes).
  bool checks_host_name() const { return check_host_; }
  bool insecure() const { return insecure_; }

  // Client, after the handshake: re-checks the pinned fingerprint, if any (the handshake's
  // verify callback enforces it first). The error names the peer and both fingerprints.
  Status check_peer(SSL* ssl, const std::string& peer) const;
  bool pinned() const { return !server_ && !fingerprint_.empty(); }
  // "certificate fingerprint mismatch: <peer> presented sha256:..., expected sha256:...",
  // after a handshake the pin check aborted (`presented` "" = as recorded during it).
  std::string mismatch_message(SSL* ssl, const std::string& peer, const std::string& presented = "") const;

  explicit TlsContext(asio::ssl::context::method m) : ctx_(m) {}

 private:
  asio::ssl::context ctx_;
  bool server_ = false;
  bool check_host_ = false;
  bool insecure_ = false;
  std::string fingerprint_;  // server: own certificate; client: the pin ("" = none)
};

}  // namespace ferry
