// Outgoing TCP (+ TLS) connection with a timeout, and the HELLO/WELCOME/AUTH handshake.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "ferry/status.h"
#include "transport/frame_socket.h"

namespace ferry {

class TlsContext;

// Resolves and connects to host:port, then (with `tls`, a client context) runs the TLS
// handshake, all within `timeout`; sets TCP_NODELAY. `tls` null: plain TCP. Errors name the
// peer: "connect to receiver example.com:7400: Connection refused".
asio::awaitable<Result<std::shared_ptr<FrameSocket>>> connect_frame_socket(const std::string& host, uint16_t port,
                                                                          std::chrono::milliseconds timeout,
                                                                          std::shared_ptr<TlsContext> tls = nullptr);

// Client side of version negotiation and authentication: sends HELLO, expects WELCOME (or
// ERROR), sends AUTH with `token`, expects AUTH_OK (or ERROR: a refused token is kRefused).
asio::awaitable<Result<protocol::Welcome>> client_handshake(FrameSocket& conn, const std::string& token);

// Turns an ERROR frame's payload into a Status naming the peer.
Status status_from_error_frame(const Frame& frame, const std::string& peer);

// The frame that was expected did not come: ERROR frames become their Status, anything else
// a kProtocol error "expected WELCOME from X, got CHUNK".
Status unexpected_frame(const Frame& frame, protocol::FrameType expected, const std::string& peer);

}  // namespace ferry
