// HTTP/1.1 client for the S3 API: Boost.Beast over Asio, plain TCP or TLS (OpenSSL, peers
// verified against the system trust store or a CA bundle), keep-alive connection pool,
// connect and I/O timeouts.
//
// Blocking and thread-safe: uploader threads call execute() concurrently. Each pooled
// connection owns a private io_context, so a call runs its connection's asynchronous
// operations (which is what gives it timeouts) on the calling thread and nothing else.
// One call is one attempt: retry policy lives a layer up (s3_client.cc), where requests are
// re-signed for each attempt.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"
#include "s3/s3_url.h"
#include "s3/sigv4.h"

namespace ferry::s3 {

struct HttpRequest {
  std::string method;           // GET, PUT, POST, DELETE, HEAD
  std::string target;           // "/bucket/key?uploadId=...", already percent-encoded
  HeaderList headers;           // Host is added from the endpoint unless present
  const uint8_t* body = nullptr;
  size_t body_size = 0;
  size_t max_response_body = 32u << 20;  // a larger body is a kProtocol error
};

struct HttpResponse {
  unsigned status = 0;
  HeaderList headers;  // names lower-cased
  std::string body;
  // Value of the first header named `name` (lower case), or "".
  std::string header(std::string_view name) const;
};

struct HttpClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  // Per request: the time allowed to send it and read the response, plus one second per
  // MiB of body so a large part on a slow link is not cut off.
  std::chrono::milliseconds io_timeout{60'000};
  std::string ca_file;   // PEM bundle to trust instead of the system store (AWS_CA_BUNDLE)
  size_t max_idle = 64;  // idle keep-alive connections kept
};

class HttpClient {
 public:
  static Result<std::unique_ptr<HttpClient>> create(const Endpoint& endpoint, const HttpClientOptions& options);
  ~HttpClient();

  // Sends one request and reads the response (any status code is a success here). Transport
  // failures (resolve, connect, TLS, reset, timeout) are kNetwork errors naming the peer.
  // A pooled connection the server had already closed is replaced once, silently: that is a
  // keep-alive race, not a failure.
  Result<HttpResponse> execute(const HttpRequest& request);

  const Endpoint& endpoint() const { return endpoint_; }
  uint64_t connections_opened() const;

  struct Connection;

 private:
  HttpClient(const Endpoint& endpoint, const HttpClientOptions& options);
  Result<std::unique_ptr<Connection>> connect();
  Result<HttpResponse> attempt(Connection& c, const HttpRequest& request, bool* reusable, bool* sent_nothing);

  Endpoint endpoint_;
  HttpClientOptions options_;
  struct Tls;
  std::unique_ptr<Tls> tls_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Connection>> idle_;
  uint64_t opened_ = 0;
};

}  // namespace ferry::s3
