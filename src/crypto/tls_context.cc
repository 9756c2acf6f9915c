#include "crypto/tls_context.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cctype>
#include <cstdio>

namespace ferry {
namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

Status tls_error(const std::string& what) { return Status(Error::kUsage, what + drain_openssl_errors()); }

// TLS 1.3 only: every ferry peer is new enough, and 1.3 leaves no weak suites to configure.
Status restrict_to_tls13(SSL_CTX* ctx) {
  if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1) return tls_error("TLS: cannot require TLS 1.3");
  // AES-128-GCM first: hardware-accelerated nearly everywhere and the cheapest of the three
  // on the network thread, which encrypts every byte; all three are TLS 1.3's strong suites.
  if (SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256") != 1)
    return tls_error("TLS: cannot set the TLS 1.3 cipher suites");
  // Sessions are long-lived and few; tickets would only add state.
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  SSL_CTX_set_num_tickets(ctx, 0);
  return Status::ok();
}

// A self-signed EC P-256 certificate made in memory, valid from an hour ago for a year. The
// client never validates it against a CA: it pins its fingerprint (printed in the URL).
Status use_ephemeral_certificate(SSL_CTX* ctx, std::string* fingerprint) {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Status(Error::kInternal, "TLS: cannot generate an EC P-256 key" + drain_openssl_errors());
  X509Ptr cert(X509_new());
  if (!cert) return Status(Error::kInternal, "TLS: out of memory");
  uint8_t serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return Status(Error::kInternal, "TLS: no randomness for a serial");
  serial[0] &= 0x7F;  // a positive integer
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  bool ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr;
  BN_free(bn);
  ok = ok && X509_set_version(cert.get(), X509_VERSION_3) == 1;
  ok = ok && X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) != nullptr;
  ok = ok && X509_gmtime_adj(X509_getm_notAfter(cert.get()), 365L * 24 * 3600) != nullptr;
  ok = ok && X509_set_pubkey(cert.get(), key.get()) == 1;
  X509_NAME* name = X509_get_subject_name(cert.get());
  ok = ok && X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        reinterpret_cast<const unsigned char*>("ferry recv (ephemeral)"), -1, -1,
                                        0) == 1;
  ok = ok && X509_set_issuer_name(cert.get(), name) == 1;
  ok = ok && X509_sign(cert.get(), key.get(), EVP_sha256()) > 0;
  ok = ok && SSL_CTX_use_certificate(ctx, cert.get()) == 1 && SSL_CTX_use_PrivateKey(ctx, key.get()) == 1;
  if (!ok) return Status(Error::kInternal, "TLS: cannot make the ephemeral certificate" + drain_openssl_errors());
  *fingerprint = certificate_fingerprint(cert.get());
  return Status::ok();
}

// Pinned-fingerprint verification runs inside the handshake, so a mismatch aborts it with an
// alert: the server sees (and counts) the refusal, and no frame is ever sent to an impostor.
// The context's pin hangs off the SSL_CTX; what the server presented is kept on the SSL for
// the error message.
int ctx_pin_index() {
  static const int idx = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return idx;
}
void free_presented(void*, void* ptr, CRYPTO_EX_DATA*, int, long, void*) { delete static_cast<std::string*>(ptr); }
int ssl_presented_index() {
  static const int idx = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, free_presented);
  return idx;
}

int verify_pinned(int /*preverify*/, X509_STORE_CTX* store) {
  // Only the leaf matters: the pin names exactly one certificate, whoever signed it.
  if (X509_STORE_CTX_get_error_depth(store) > 0) return 1;
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  if (!ssl) return 0;
  auto* pin = static_cast<const std::string*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_pin_index()));
  std::string presented = certificate_fingerprint(X509_STORE_CTX_get_current_cert(store));
  if (pin && !presented.empty() && presented == *pin) {
    X509_STORE_CTX_set_error(store, X509_V_OK);
    return 1;
  }
  auto* keep = static_cast<std::string*>(SSL_get_ex_data(ssl, ssl_presented_index()));
  if (!keep) {
    keep = new std::string;
    SSL_set_ex_data(ssl, ssl_presented_index(), keep);
  }
  *keep = presented;
  X509_STORE_CTX_set_error(store, X509_V_ERR_APPLICATION_VERIFICATION);
  return 0;
}

}  // namespace

std::string drain_openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += "; ";
    out += buf;
  }
  return out;
}

std::string certificate_fingerprint(X509* cert) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!cert || X509_digest(cert, EVP_sha256(), md, &len) != 1) return {};
  std::string s = "sha256:";
  static const char* kHex = "0123456789abcdef";
  for (unsigned i = 0; i < len; ++i) {
    s.push_back(kHex[md[i] >> 4]);
    s.push_back(kHex[md[i] & 15]);
  }
  return s;
}

Result<std::string> normalize_fingerprint(std::string_view text) {
  std::string_view t = text;
  for (std::string_view prefix : {"sha256:", "SHA256:", "sha256=", "SHA256 Fingerprint="})
    if (t.substr(0, prefix.size()) == prefix) {
      t.remove_prefix(prefix.size());
      break;
    }
  std::string hex;
  for (char c : t) {
    if (c == ':') continue;
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      hex.clear();
      break;
    }
    hex.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  if (hex.size() != 64)
    return Status(Error::kUsage, "invalid certificate fingerprint '" + std::string(text) +
                                     "' (expected sha256: and 64 hex digits)");
  return "sha256:" + hex;
}

Result<std::shared_ptr<TlsContext>> TlsContext::server(const TlsServerSettings& s) {
  std::shared_ptr<TlsContext> c;
  try {
    c = std::make_shared<TlsContext>(asio::ssl::context::tls_server);
  } catch (const std::exception& e) {
    return Status(Error::kInternal, std::string("TLS: cannot create a server context: ") + e.what());
  }
  c->server_ = true;
  SSL_CTX* ctx = c->ctx_.native_handle();
  if (Status st = restrict_to_tls13(ctx); !st) return st;
  if (s.cert_file.empty() != s.key_file.empty())
    return Status(Error::kUsage, "TLS: give both a certificate and a key file, or neither");
  if (s.cert_file.empty()) {
    if (Status st = use_ephemeral_certificate(ctx, &c->fingerprint_); !st) return st;
  } else {
    if (SSL_CTX_use_certificate_chain_file(ctx, s.cert_file.c_str()) != 1)
      return tls_error("TLS: cannot load certificate '" + s.cert_file + "'");
    if (SSL_CTX_use_PrivateKey_file(ctx, s.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      return tls_error("TLS: cannot load private key '" + s.key_file + "'");
    if (SSL_CTX_check_private_key(ctx) != 1)
      return tls_error("TLS: key '" + s.key_file + "' does not match certificate '" + s.cert_file + "'");
    c->fingerprint_ = certificate_fingerprint(SSL_CTX_get0_certificate(ctx));
  }
  if (!s.client_ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(ctx, s.client_ca_file.c_str(), nullptr) != 1)
      return tls_error("TLS: cannot load client CA '" + s.client_ca_file + "'");
    // Tell clients which CA to pick their certificate for.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.client_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(ctx, names);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  }
  drain_openssl_errors();
  return c;
}

Result<std::shared_ptr<TlsContext>> TlsContext::client(const TlsClientSettings& s) {
  std::shared_ptr<TlsContext> c;
  try {
    c = std::make_shared<TlsContext>(asio::ssl::context::tls_client);
  } catch (const std::exception& e) {
    return Status(Error::kInternal, std::string("TLS: cannot create a client context: ") + e.what());
  }
  SSL_CTX* ctx = c->ctx_.native_handle();
  if (Status st = restrict_to_tls13(ctx); !st) return st;
  if (s.insecure) {
    c->insecure_ = true;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else if (!s.fingerprint.empty()) {
    // The pin replaces chain validation (the ephemeral certificate of `ferry recv` is
    // self-signed); it is checked right after the handshake, before any frame is sent.
    auto fp = normalize_fingerprint(s.fingerprint);
    if (!fp) return fp.status();
    c->fingerprint_ = *fp;
    SSL_CTX_set_ex_data(ctx, ctx_pin_index(), &c->fingerprint_);  // lives as long as the context
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, verify_pinned);
  } else {
    if (!s.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(ctx, s.ca_file.c_str(), nullptr) != 1)
        return tls_error("TLS: cannot load CA file '" + s.ca_file + "'");
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
      return tls_error("TLS: cannot load the system certificate store");
    }
    c->check_host_ = true;
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  }
  if (s.cert_file.empty() != s.key_file.empty())
    return Status(Error::kUsage, "TLS: give both a client certificate and key file, or neither");
  if (!s.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(ctx, s.cert_file.c_str()) != 1)
      return tls_error("TLS: cannot load client certificate '" + s.cert_file + "'");
    if (SSL_CTX_use_PrivateKey_file(ctx, s.key_file.c_str(), SSL_FILETYPE_PEM) != 1)
      return tls_error("TLS: cannot load client key '" + s.key_file + "'");
    if (SSL_CTX_check_private_key(ctx) != 1)
      return tls_error("TLS: client key '" + s.key_file + "' does not match '" + s.cert_file + "'");
  }
  drain_openssl_errors();
  return c;
}

std::string TlsContext::mismatch_message(SSL* ssl, const std::string& peer, const std::string& presented) const {
  std::string got = presented;
  if (got.empty())
    if (auto* keep = static_cast<std::string*>(SSL_get_ex_data(ssl, ssl_presented_index()))) got = *keep;
  return "certificate fingerprint mismatch: " + peer + " presented " + (got.empty() ? "an unreadable certificate" : got) +
         ", expected " + fingerprint_ + " (a different receiver, or someone in between)";
}

Status TlsContext::check_peer(SSL* ssl, const std::string& peer) const {
  if (server_ || fingerprint_.empty()) return Status::ok();
  X509Ptr cert(SSL_get1_peer_certificate(ssl));
  if (!cert) return Status(Error::kRefused, peer + " presented no certificate");
  std::string got = certificate_fingerprint(cert.get());
  if (got != fingerprint_) return Status(Error::kRefused, mismatch_message(ssl, peer, got));
  return Status::ok();
}

}  // namespace ferry
