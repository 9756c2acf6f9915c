#include "s3/http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <optional>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace ferry::s3 {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

std::string HttpResponse::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

struct HttpClient::Tls {
  ssl::context ctx{ssl::context::tls_client};
};

// One keep-alive connection. Its io_context runs only inside execute(), on the caller's
// thread; a connection is used by one thread at a time (it is out of the pool while used).
struct HttpClient::Connection {
  asio::io_context io{1};
  std::optional<beast::tcp_stream> tcp;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  beast::flat_buffer buffer;
  bool reused = false;

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *tcp; }

  // Runs one asynchronous operation to completion on this thread. The stream's expiry
  // (set by the caller) turns a stalled operation into beast::error::timeout.
  template <class Start>
  beast::error_code run(Start&& start) {
    beast::error_code result = asio::error::operation_aborted;
    bool done = false;
    start([&](beast::error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    io.restart();
    io.run();
    if (!done) return asio::error::operation_aborted;
    return result;
  }
};

HttpClient::HttpClient(const Endpoint& endpoint, const HttpClientOptions& options)
    : endpoint_(endpoint), options_(options) {}

HttpClient::~HttpClient() = default;

Result<std::unique_ptr<HttpClient>> HttpClient::create(const Endpoint& endpoint, const HttpClientOptions& options) {
  std::unique_ptr<HttpClient> c(new HttpClient(endpoint, options));
  if (endpoint.https) {
    c->tls_ = std::make_unique<Tls>();
    beast::error_code ec;
    c->tls_->ctx.set_verify_mode(ssl::verify_peer, ec);
    if (!options.ca_file.empty()) {
      c->tls_->ctx.load_verify_file(options.ca_file, ec);
      if (ec) return Status(Error::kUsage, "cannot load CA bundle '" + options.ca_file + "': " + ec.message());
    } else {
      c->tls_->ctx.set_default_verify_paths(ec);
      if (ec) return Status(Error::kLocalIo, "cannot load the system's trusted CA certificates: " + ec.message());
    }
  }
  return c;
}

uint64_t HttpClient::connections_opened() const {
  std::lock_guard lock(mu_);
  return opened_;
}

Result<std::unique_ptr<HttpClient::Connection>> HttpClient::connect() {
  auto c = std::make_unique<Connection>();
  std::string peer = endpoint_.to_string();
  beast::error_code ec;
  tcp::resolver resolver(c->io);
  auto results = resolver.resolve(endpoint_.host, std::to_string(endpoint_.port), ec);
  if (ec) return Status(Error::kNetwork, "cannot resolve " + peer + ": " + ec.message());
  c->tcp.emplace(c->io);
  c->tcp->expires_after(options_.connect_timeout);
  ec = c->run([&](auto h) { c->tcp->async_connect(results, std::move(h)); });
  if (ec == beast::error::timeout) return Status(Error::kNetwork, "connect to " + peer + " timed out");
  if (ec) return Status(Error::kNetwork, "cannot connect to " + peer + ": " + ec.message());
  c->tcp->socket().set_option(tcp::no_delay(true), ec);
  if (tls_) {
    c->tls.emplace(std::move(*c->tcp), tls_->ctx);
    c->tcp.reset();
    if (!SSL_set_tlsext_host_name(c->tls->native_handle(), endpoint_.host.c_str()))
      return Status(Error::kNetwork, "TLS to " + peer + ": cannot set the server name");
    c->tls->set_verify_callback(ssl::host_name_verification(endpoint_.host));
    c->lowest().expires_after(options_.connect_timeout);
    ec = c->run([&](auto h) { c->tls->async_handshake(ssl::stream_base::client, std::move(h)); });
    // An untrusted or mismatched certificate will not get better by retrying: refused.
    if (ec && ec.category() == asio::error::get_ssl_category() &&
        ERR_GET_REASON(static_cast<unsigned long>(ec.value())) == SSL_R_CERTIFICATE_VERIFY_FAILED)
      return Status(Error::kRefused, "TLS handshake with " + peer + " failed: certificate verify failed (" +
                                         X509_verify_cert_error_string(SSL_get_verify_result(c->tls->native_handle())) +
                                         "; AWS_CA_BUNDLE names a CA file to trust)");
    if (ec) return Status(Error::kNetwork, "TLS handshake with " + peer + " failed: " + ec.message());
  }
  std::lock_guard lock(mu_);
  ++opened_;
  return c;
}

Result<HttpResponse> HttpClient::attempt(Connection& c, const HttpRequest& r, bool* reusable, bool* sent_nothing) {
  *reusable = false;
  *sent_nothing = true;
  std::string peer = endpoint_.to_string();
  http::request<http::buffer_body> req;
  req.method_string(r.method);
  req.target(r.target);
  req.version(11);
  bool has_host = false;
  for (const auto& [k, v] : r.headers) {
    req.insert(k, v);
    if (beast::iequals(k, "host")) has_host = true;
  }
  if (!has_host) req.set(http::field::host, endpoint_.host_header());
  req.set(http::field::user_agent, "ferry/0.2");
  req.body().data = const_cast<uint8_t*>(r.body);  // buffer_body never writes through it
  req.body().size = r.body_size;
  req.body().more = false;
  req.content_length(r.body_size);
  if (r.body_size == 0 && (r.method == "GET" || r.method == "HEAD" || r.method == "DELETE")) req.erase(http::field::content_length);

  auto timeout = options_.io_timeout + std::chrono::seconds(r.body_size >> 20);
  c.lowest().expires_after(timeout);
  beast::error_code ec = c.run([&](auto h) {
    if (c.tls) http::async_write(*c.tls, req, std::move(h));
    else http::async_write(*c.tcp, req, std::move(h));
  });
  if (ec) {
    if (ec == beast::error::timeout) return Status(Error::kNetwork, r.method + " to " + peer + " timed out while sending");
    return Status(Error::kNetwork, r.method + " to " + peer + ": connection lost while sending: " + ec.message());
  }

  http::response_parser<http::string_body> parser;
  parser.body_limit(r.max_response_body);
  parser.header_limit(64 * 1024);
  if (r.method == "HEAD") parser.skip(true);
  ec = c.run([&](auto h) {
    if (c.tls) http::async_read(*c.tls, c.buffer, parser, std::move(h));
    else http::async_read(*c.tcp, c.buffer, parser, std::move(h));
  });
  if (parser.is_header_done()) *sent_nothing = false;
  if (ec == http::error::body_limit)
    return Status(Error::kProtocol, r.method + " to " + peer + ": response body larger than " + std::to_string(r.max_response_body) + " bytes");
  if (ec == beast::error::timeout) return Status(Error::kNetwork, r.method + " to " + peer + " timed out waiting for the response");
  if (ec) return Status(Error::kNetwork, r.method + " to " + peer + ": connection lost while reading the response: " + ec.message());
  auto msg = parser.release();
  HttpResponse out;
  out.status = msg.result_int();
  for (const auto& f : msg) {
    std::string name(f.name_string());
    for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    out.headers.emplace_back(std::move(name), std::string(f.value()));
  }
  out.body = std::move(msg.body());
  *reusable = msg.keep_alive() && !parser.need_eof();
  return out;
}

Result<HttpResponse> HttpClient::execute(const HttpRequest& request) {
  for (int round = 0;; ++round) {
    std::unique_ptr<Connection> c;
    {
      std::lock_guard lock(mu_);
      if (!idle_.empty()) {
        c = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    if (!c) {
      auto fresh = connect();
      if (!fresh) return fresh.status();
      c = std::move(*fresh);
    }
    bool reusable = false, sent_nothing = true;
    auto res = attempt(*c, request, &reusable, &sent_nothing);
    // The server may close an idle keep-alive connection just as we pick it up: retry once
    // on a fresh connection when nothing of a response came back on a reused one.
    if (!res && c->reused && sent_nothing && round == 0) continue;
    if (res && reusable) {
      c->reused = true;
      std::lock_guard lock(mu_);
      if (idle_.size() < options_.max_idle) idle_.push_back(std::move(c));
    }
    return res;
  }
}

}  // namespace ferry::s3
