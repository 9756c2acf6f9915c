// A UDP socket for the data path: batched sends (sendmmsg, with UDP GSO when the kernel has
// it) and batched receives (recvmmsg, with UDP GRO), driven from the network thread. The
// socket is non-blocking; callers wait for readiness with async_wait.
#pragma once

#include <array>
#include <boost/asio/ip/udp.hpp>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "ferry/options.h"
#include "ferry/status.h"

namespace ferry::udp {

namespace asio = boost::asio;
using udp_endpoint = asio::ip::udp::endpoint;

// Datagrams laid out back to back in one buffer: datagram i is `lengths[i]` bytes.
struct DatagramBatch {
  std::vector<uint8_t> bytes;
  std::vector<uint16_t> lengths;
  void clear() {
    bytes.clear();
    lengths.clear();
  }
  size_t count() const { return lengths.size(); }
};

// HKDF salt binding the datagram keys to the session and both public keys (docs/udp.md).
template <typename A, typename B>
std::vector<uint8_t> key_context(const std::array<uint8_t, 16>& session_id, const A& sender_key,
                                 const B& receiver_key) {
  std::vector<uint8_t> c(session_id.begin(), session_id.end());
  c.insert(c.end(), sender_key.begin(), sender_key.end());
  c.insert(c.end(), receiver_key.begin(), receiver_key.end());
  return c;
}

class DatagramSocket {
 public:
  explicit DatagramSocket(asio::io_context& io) : socket_(io) {}

  // Opens and binds to `local` (port 0 = any); sets large kernel buffers and turns on GRO.
  Status open(const udp_endpoint& local, const std::string& what);
  // Fixes the peer: sends go there, and the kernel drops datagrams from anyone else.
  Status connect(const udp_endpoint& peer);
  uint16_t local_port() const;
  asio::ip::udp::socket& socket() { return socket_; }
  bool gso() const { return gso_; }

  // Sends datagrams [first, batch.count()) to the connected peer (or `to` if given). Returns
  // how many left (the rest hit a full socket buffer: wait for writability), or an error.
  // GSO batches runs of equal-size datagrams into one send.
  Result<size_t> send(const DatagramBatch& batch, size_t first, const udp_endpoint* to = nullptr);

  // Receives what is queued (one recvmmsg call) without blocking and calls `on_datagram` for
  // each datagram in place (GRO super-packets are split back; the bytes are valid during the
  // call only). Returns the number received (0 = nothing queued), or an error.
  using DatagramHandler = std::function<void(const uint8_t* data, size_t len, const udp_endpoint& from)>;
  Result<size_t> receive(const DatagramHandler& on_datagram);

  void close();

 private:
  asio::ip::udp::socket socket_;
  bool gso_ = true;  // cleared the first time the kernel refuses a GSO send
  std::vector<uint8_t> recv_area_;
};

// TEST-ONLY FAULT (see DatagramFaults in ferry/options.h): rewrites an outgoing batch with
// seeded drops, duplicates and reorders before it reaches the socket.
class DatagramFaultShim {
 public:
  explicit DatagramFaultShim(const DatagramFaults& faults) : faults_(faults), state_(faults.seed * 2 + 1) {}
  bool active() const { return faults_.any(); }
  // Replaces `batch` with what a bad path would deliver from it. A reordered datagram is held
  // back and sent after the next batch's first datagram (or flushed with the next batch).
  void apply(DatagramBatch& batch);
  uint64_t dropped() const { return dropped_; }

 private:
  double next_uniform();
  DatagramFaults faults_;
  uint64_t state_;
  std::vector<uint8_t> held_;
  uint64_t dropped_ = 0;
};

}  // namespace ferry::udp
