// A TCP connection that carries ferry frames: an ordered write queue with scatter/gather
// batching, and awaitable frame reads. Used from the network thread only.
//
// The byte stream is either plain TCP or TLS 1.3 over it (crypto/tls_context.h). Both share
// one write queue and one read path: the stream is a std::variant and each I/O call visits
// it, so plaintext costs one branch and TLS no extra copy of the queue logic.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <variant>
#include <vector>

#include "ferry/status.h"
#include "protocol/frames.h"

namespace ferry {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct Frame {
  protocol::FrameType type;
  std::vector<uint8_t> payload;
};

class TlsContext;

class FrameSocket : public std::enable_shared_from_this<FrameSocket> {
 public:
  // Plain TCP. `peer` names the other side in error messages ("receiver 10.0.0.5:7400").
  FrameSocket(tcp::socket socket, std::string peer);
  // TLS over `socket` with `tls`'s role (client or server); handshake() must succeed before
  // any other call.
  FrameSocket(tcp::socket socket, std::string peer, std::shared_ptr<TlsContext> tls);

  // TLS handshake (no-op for plain TCP). A client checks the server's certificate here: by
  // the CA/system store and `host` (SNI and host name), or by the context's pinned
  // fingerprint. Errors name the peer: kRefused when the peer's identity is not accepted,
  // kNetwork otherwise.
  asio::awaitable<Status> handshake(const std::string& host = "");

  bool encrypted() const { return stream_.index() == 1; }
  tcp::socket& tcp_socket();
  const std::string& peer() const { return peer_; }
  // Renames the other side once its role is known (a server names every accepted connection
  // "sender ADDR" before it has read what the peer wants). Network thread, before the
  // connection is handed to a session: the name is read without a lock.
  void set_peer(std::string peer) { peer_ = std::move(peer); }

  // RFC 8446 section 7.5 exporter (SSL_export_keying_material) over this connection's TLS
  // session; both ends get the same bytes for the same label and context. kUsage error on a
  // plaintext connection: there is no secret to derive from.
  Result<std::vector<uint8_t>> export_keying_material(std::string_view label, std::span<const uint8_t> context,
                                                      size_t len);

  // Reads exactly n bytes (the data streams read CHUNK frames in pieces).
  asio::awaitable<std::tuple<boost::system::error_code, size_t>> read_exact(void* data, size_t n);

  // Called once, on the first write error (the connection is then closed).
  void on_write_error(std::function<void(const Status&)> handler) { on_error_ = std::move(handler); }

  // Queues a complete frame (header + payload).
  void send(std::vector<uint8_t> frame);
  // Queues a CHUNK: 40-byte prefix + a borrowed payload that must stay alive until `written`
  // runs (with true once the kernel took the bytes, false if the connection failed first).
  void send_chunk(const uint8_t (&prefix)[protocol::kChunkPrefixSize], const uint8_t* payload,
                  size_t payload_len, std::function<void(bool)> written);

  // Bytes queued and not yet handed to the kernel.
  uint64_t queued_bytes() const { return queued_bytes_; }
  uint64_t bytes_written() const { return bytes_written_; }

  // Reads one frame whose payload is at most the limit for its type (`max_chunk_size`
  // bounds CHUNK frames). A clean EOF before any header byte is reported as kNetwork
  // "connection closed by <peer>".
  asio::awaitable<Result<Frame>> read_frame(uint32_t max_chunk_size = 0);

  void close();
  // Closes once every queued frame has been handed to the kernel (e.g. after an ERROR).
  void close_after_flush();
  bool closed() const { return closed_; }

 private:
  struct Pending {
    std::vector<uint8_t> owned;
    uint8_t prefix[protocol::kChunkPrefixSize] = {};
    size_t prefix_len = 0;
    const uint8_t* payload = nullptr;
    size_t payload_len = 0;
    std::function<void(bool)> written;
    size_t size() const { return owned.size() + prefix_len + payload_len; }
  };
  void enqueue(Pending p);
  void start_write();
  void fail(const Status& st);
  void drain_queue();  // completes every queued entry not being written with false

  using TlsStream = asio::ssl::stream<tcp::socket>;
  std::shared_ptr<TlsContext> tls_;  // outlives stream_ (which refers to its SSL_CTX)
  std::variant<tcp::socket, TlsStream> stream_;
  std::string peer_;
  std::deque<Pending> queue_;
  size_t in_flight_ = 0;  // entries at the queue front currently being written
  bool writing_ = false;
  bool close_when_flushed_ = false;
  bool closed_ = false;
  uint64_t queued_bytes_ = 0;
  uint64_t bytes_written_ = 0;
  std::function<void(const Status&)> on_error_;
};

// "host:port" of a connected socket's remote end (for messages).
std::string endpoint_text(const tcp::endpoint& ep);

}  // namespace ferry
