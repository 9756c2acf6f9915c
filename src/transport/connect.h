// Outgoing TCP (+ TLS) connection with a timeout, and the HELLO/WELCOME/AUTH handshake.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

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

// Sets up one data stream: the caller's connect + handshake + JOIN_STREAM for stream `index`.
using JoinOne = std::function<asio::awaitable<Result<std::shared_ptr<FrameSocket>>>(uint16_t index)>;

// Runs `join_one(0) .. join_one(count - 1)` concurrently on the calling coroutine's executor
// (a long path pays the round trips once, not once per stream) and waits for all of them.
// Returns the sockets in stream order, or the first failure in stream order; on failure every
// stream that did join is closed, so no half-set-up session is left behind. A join that throws
// counts as "data stream N setup failed" (kInternal). `join_one` must stay valid until this
// returns (it is only called before then). Callers pass a named JoinOne, not a lambda
// temporary: g++ 12 destroys temporaries inside a co_await expression twice.
asio::awaitable<Result<std::vector<std::shared_ptr<FrameSocket>>>> join_streams(uint16_t count,
                                                                               const JoinOne& join_one);

// Turns an ERROR frame's payload into a Status naming the peer.
Status status_from_error_frame(const Frame& frame, const std::string& peer);

// The frame that was expected did not come: ERROR frames become their Status, anything else
// a kProtocol error "expected WELCOME from X, got CHUNK".
Status unexpected_frame(const Frame& frame, protocol::FrameType expected, const std::string& peer);

}  // namespace ferry
