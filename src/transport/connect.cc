#include "transport/connect.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace ferry {

using namespace asio::experimental::awaitable_operators;

asio::awaitable<Result<std::shared_ptr<FrameSocket>>> connect_frame_socket(const std::string& host, uint16_t port,
                                                                          std::chrono::milliseconds timeout) {
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
  co_return std::make_shared<FrameSocket>(std::move(socket), peer);
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

asio::awaitable<Result<protocol::Welcome>> client_handshake(FrameSocket& conn) {
  conn.send(protocol::encode(protocol::Hello{}));
  auto frame = co_await conn.read_frame();
  if (!frame) co_return frame.status();
  if (frame->type != protocol::FrameType::kWelcome)
    co_return unexpected_frame(*frame, protocol::FrameType::kWelcome, conn.peer());
  auto w = protocol::decode_welcome(frame->payload);
  if (!w) co_return Status(Error::kProtocol, conn.peer() + ": " + w.status().message());
  if (w->version < protocol::kMinVersion || w->version > protocol::kMaxVersion)
    co_return Status(Error::kProtocol, conn.peer() + " chose protocol version " + std::to_string(w->version) +
                                           ", which this ferry does not speak");
  co_return *w;
}

}  // namespace ferry
