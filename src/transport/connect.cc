#include "transport/connect.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "crypto/tls_context.h"

namespace ferry {

using namespace asio::experimental::awaitable_operators;

asio::awaitable<Result<std::shared_ptr<FrameSocket>>> connect_frame_socket(const std::string& host, uint16_t port,
                                                                          std::chrono::milliseconds timeout,
                                                                          std::shared_ptr<TlsContext> tls) {
  auto ex = co_await asio::this_coro::executor;
  std::string peer = "receiver " + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
                     std::to_string(port);
  tcp::resolver resolver(ex);
  auto [rec, endpoints] =
      co_await resolver.async_resolve(host, std::to_string(port), asio::as_tuple(asio::use_awaitable));
  if (rec) co_return Status(Error::kNetwork, "resolve " + peer + ": " + rec.message());

  tcp::socket socket(ex);
  asio::steady_timer timer(ex, timeout);
  auto outcome = co_await (asio::async_connect(socket, endpoints, asio::as_tuple(asio::use_awaitable)) ||
                           timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (outcome.index() == 1) co_return Status(Error::kNetwork, "connect to " + peer + ": timed out");
  auto [cec, ep] = std::get<0>(outcome);
  if (cec) co_return Status(Error::kNetwork, "connect to " + peer + ": " + cec.message());
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  if (!tls) co_return std::make_shared<FrameSocket>(std::move(socket), peer);
  auto conn = std::make_shared<FrameSocket>(std::move(socket), peer, std::move(tls));
  // The rest of the timeout bounds the handshake: when it fires, closing the socket ends it.
  auto timed_out = std::make_shared<bool>(false);
  timer.async_wait([conn, timed_out](boost::system::error_code ec) {
    if (ec) return;
    *timed_out = true;
    conn->close();
  });
  Status st = co_await conn->handshake(host);
  timer.cancel();
  if (*timed_out) co_return Status(Error::kNetwork, "TLS handshake with " + peer + ": timed out");
  if (!st) co_return st;
  co_return conn;
}

asio::awaitable<Result<std::vector<std::shared_ptr<FrameSocket>>>> join_streams(uint16_t count,
                                                                               const JoinOne& join_one) {
  auto ex = co_await asio::this_coro::executor;
  std::vector<Result<std::shared_ptr<FrameSocket>>> joined(count, Status(Error::kInternal, "stream not set up"));
  // Every spawned join refers to `joined`, `pending`, `all_done` (this frame) and `join_one`
  // (the caller's): this coroutine does not return before `pending` is back to 0.
  size_t pending = count;
  asio::steady_timer all_done(ex, asio::steady_timer::time_point::max());
  for (uint16_t i = 0; i < count; ++i) {
    asio::co_spawn(
        ex, [&joined, &join_one, i]() -> asio::awaitable<void> { joined[i] = co_await join_one(i); },
        [&joined, &pending, &all_done, i](std::exception_ptr e) {
          if (e) joined[i] = Status(Error::kInternal, "data stream " + std::to_string(i) + " setup failed");
          if (--pending == 0) all_done.cancel();
        });
  }
  while (pending > 0) co_await all_done.async_wait(asio::as_tuple(asio::use_awaitable));
  std::vector<std::shared_ptr<FrameSocket>> out;
  out.reserve(count);
  for (auto& j : joined) {
    if (!j) {
      for (auto& other : joined)
        if (other) (*other)->close();
      co_return j.status();
    }
    out.push_back(*j);
  }
  co_return out;
}

Status status_from_error_frame(const Frame& frame, const std::string& peer) {
  auto e = protocol::decode_error(frame.payload);
  if (!e) return Status(Error::kProtocol, peer + " sent a malformed ERROR frame");
  Error code = e->code >= 1 && e->code <= 9 ? static_cast<Error>(e->code) : Error::kProtocol;
  return Status(code, peer + ": " + e->message);
}

Status unexpected_frame(const Frame& frame, protocol::FrameType expected, const std::string& peer) {
  if (frame.type == protocol::FrameType::kError) return status_from_error_frame(frame, peer);
  return Status(Error::kProtocol, std::string("expected ") + protocol::to_string(expected) + " from " + peer +
                                      ", got " + protocol::to_string(frame.type));
}

asio::awaitable<Result<protocol::Welcome>> client_handshake(FrameSocket& conn, const std::string& token) {
  conn.send(protocol::encode(protocol::Hello{}));
  auto frame = co_await conn.read_frame();
  if (!frame) {
    Status st = frame.status();
    // A TLS receiver answers a plaintext HELLO with a TLS alert record (0x15) or hangs up.
    if (!conn.encrypted())
      co_return Status(st.code(), st.message() + " (is the receiver using TLS? --plaintext needs --plaintext on both sides)");
    co_return st;
  }
  if (frame->type != protocol::FrameType::kWelcome)
    co_return unexpected_frame(*frame, protocol::FrameType::kWelcome, conn.peer());
  auto w = protocol::decode_welcome(frame->payload);
  if (!w) co_return Status(Error::kProtocol, conn.peer() + ": " + w.status().message());
  if (w->version < protocol::kMinVersion || w->version > protocol::kMaxVersion)
    co_return Status(Error::kProtocol, conn.peer() + " chose protocol version " + std::to_string(w->version) +
                                           ", which this ferry does not speak");
  if (token.size() > protocol::kMaxTokenLength)
    co_return Status(Error::kUsage, "the token is longer than " + std::to_string(protocol::kMaxTokenLength) + " bytes");
  conn.send(protocol::encode(protocol::Auth{token}));
  auto ok = co_await conn.read_frame();
  if (!ok) co_return ok.status();
  if (ok->type != protocol::FrameType::kAuthOk) {
    Status st = unexpected_frame(*ok, protocol::FrameType::kAuthOk, conn.peer());
    if (st.code() == Error::kRefused && token.empty())
      co_return Status(st.code(), st.message() + " (no token given: use the URL ferry recv printed, --token or FERRY_TOKEN)");
    co_return st;
  }
  co_return *w;
}

}  // namespace ferry
