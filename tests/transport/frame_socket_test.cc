// FrameSocket over real loopback TLS: frames cross intact, and both ends derive the same
// keying material from the TLS session (what the UDP transport keys its datagrams with).
#include <gtest/gtest.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "crypto/tls_context.h"
#include "transport/connect.h"
#include "transport/frame_socket.h"

namespace ferry {
namespace {

struct Ends {
  std::shared_ptr<FrameSocket> client, server;
  Status client_status, server_status;
};

// Connects a client FrameSocket to a server FrameSocket on 127.0.0.1 (TLS when contexts are
// given), runs `body` with both, on one io_context.
void with_connected_pair(std::shared_ptr<TlsContext> server_tls, std::shared_ptr<TlsContext> client_tls,
                         std::function<asio::awaitable<void>(Ends&)> body) {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  uint16_t port = acceptor.local_endpoint().port();
  Ends ends;
  int ready = 0;
  auto both_ready = [&]() -> asio::awaitable<void> {
    if (++ready == 2) co_await body(ends);
  };
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    auto [ec, s] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    ends.server = server_tls ? std::make_shared<FrameSocket>(std::move(s), "test client", server_tls)
                             : std::make_shared<FrameSocket>(std::move(s), "test client");
    ends.server_status = co_await ends.server->handshake();
    co_await both_ready();
  }, asio::detached);
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    auto c = co_await connect_frame_socket("127.0.0.1", port, std::chrono::seconds(5), client_tls);
    if (!c) {
      ends.client_status = c.status();
      co_return;
    }
    ends.client = *c;
    co_await both_ready();
  }, asio::detached);
  io.run_for(std::chrono::seconds(10));
}

std::shared_ptr<TlsContext> server_context() {
  auto s = TlsContext::server(TlsServerSettings{});
  EXPECT_TRUE(s) << s.status().to_string();
  return s ? *s : nullptr;
}

std::shared_ptr<TlsContext> pinned_client(const std::string& fp) {
  TlsClientSettings cs;
  cs.fingerprint = fp;
  auto c = TlsContext::client(cs);
  EXPECT_TRUE(c) << c.status().to_string();
  return c ? *c : nullptr;
}

TEST(FrameSocketTls, FramesCrossAndBothEndsExportTheSameKeyingMaterial) {
  auto server = server_context();
  ASSERT_TRUE(server);
  EXPECT_EQ(server->fingerprint().rfind("sha256:", 0), 0u);
  EXPECT_EQ(server->fingerprint().size(), 7u + 64u);
  std::vector<uint8_t> ck, sk, other;
  Result<Frame> got = Status(Error::kInternal, "not run");
  bool encrypted = false;
  with_connected_pair(server, pinned_client(server->fingerprint()), [&](Ends& e) -> asio::awaitable<void> {
    EXPECT_TRUE(e.server_status.is_ok()) << e.server_status.to_string();
    encrypted = e.client->encrypted() && e.server->encrypted();
    const uint8_t ctx[] = {1, 2, 3};
    auto a = e.client->export_keying_material("EXPORTER-ferry-udp", ctx, 32);
    auto b = e.server->export_keying_material("EXPORTER-ferry-udp", ctx, 32);
    auto c = e.server->export_keying_material("EXPORTER-ferry-other", ctx, 32);
    if (a && b && c) {
      ck = *a;
      sk = *b;
      other = *c;
    }
    e.client->send(protocol::encode(protocol::Auth{"hello over tls"}));
    got = co_await e.server->read_frame();
    e.client->close();
    e.server->close();
  });
  EXPECT_TRUE(encrypted);
  ASSERT_EQ(ck.size(), 32u);
  EXPECT_EQ(ck, sk);
  EXPECT_NE(ck, other) << "a different label derives a different key";
  ASSERT_TRUE(got) << got.status().to_string();
  EXPECT_EQ(got->type, protocol::FrameType::kAuth);
  auto auth = protocol::decode_auth(got->payload);
  ASSERT_TRUE(auth);
  EXPECT_EQ(auth->token, "hello over tls");
}

TEST(FrameSocketTls, PlaintextConnectionHasNoKeyingMaterial) {
  Result<std::vector<uint8_t>> km = std::vector<uint8_t>{};
  with_connected_pair(nullptr, nullptr, [&](Ends& e) -> asio::awaitable<void> {
    EXPECT_FALSE(e.client->encrypted());
    km = e.client->export_keying_material("EXPORTER-ferry-udp", {}, 32);
    e.client->close();
    e.server->close();
    co_return;
  });
  EXPECT_FALSE(km.is_ok());
  EXPECT_EQ(km.status().code(), Error::kUsage);
  EXPECT_NE(km.status().message().find("plaintext"), std::string::npos) << km.status().message();
}

TEST(FrameSocketTls, WrongPinFailsTheHandshakeAtBothEnds) {
  auto server = server_context();
  ASSERT_TRUE(server);
  Ends ends;
  Status client_status, server_status;
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  uint16_t port = acceptor.local_endpoint().port();
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    auto [ec, s] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    auto conn = std::make_shared<FrameSocket>(std::move(s), "test client", server);
    server_status = co_await conn->handshake();
  }, asio::detached);
  asio::co_spawn(io, [&]() -> asio::awaitable<void> {
    auto c = co_await connect_frame_socket("127.0.0.1", port, std::chrono::seconds(5),
                                           pinned_client("sha256:" + std::string(64, 'f')));
    client_status = c.status();
  }, asio::detached);
  io.run_for(std::chrono::seconds(10));
  EXPECT_EQ(client_status.code(), Error::kRefused) << client_status.to_string();
  EXPECT_NE(client_status.message().find("fingerprint mismatch"), std::string::npos) << client_status.message();
  EXPECT_FALSE(server_status.is_ok()) << "the server sees the client's alert";
}

TEST(TlsContextTest, FingerprintsAreNormalized) {
  std::string hex(64, 'a');
  auto a = normalize_fingerprint("sha256:" + hex);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, "sha256:" + hex);
  // The form `openssl x509 -fingerprint -sha256` prints.
  std::string colons, lower;
  for (int i = 0; i < 32; ++i) {
    colons += std::string(i ? ":" : "") + "AB";
    lower += "ab";
  }
  auto b = normalize_fingerprint("SHA256 Fingerprint=" + colons);
  ASSERT_TRUE(b) << b.status().to_string();
  EXPECT_EQ(*b, "sha256:" + lower);
  EXPECT_FALSE(normalize_fingerprint("sha256:abc"));
  EXPECT_FALSE(normalize_fingerprint("sha256:" + std::string(64, 'g')));
}

TEST(TlsContextTest, MissingCertificateFilesAreAUsageErrorNamingTheFile) {
  TlsServerSettings s;
  s.cert_file = "/nonexistent/ferry.pem";
  s.key_file = "/nonexistent/ferry.key";
  auto r = TlsContext::server(s);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.status().code(), Error::kUsage);
  EXPECT_NE(r.status().message().find("/nonexistent/ferry.pem"), std::string::npos) << r.status().message();
  TlsServerSettings half;
  half.cert_file = "/x.pem";
  EXPECT_FALSE(TlsContext::server(half));
}

TEST(TlsContextTest, EachEphemeralCertificateIsNew) {
  auto a = server_context(), b = server_context();
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->fingerprint(), b->fingerprint());
}

}  // namespace
}  // namespace ferry
