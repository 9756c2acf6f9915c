// The receiving end of the UDP data path: opens and authenticates DATA datagrams, reassembles
// each chunk's wire record from its fragments (in any order, duplicates ignored), hands
// complete chunks to the session, and acknowledges what arrived with ACK datagrams carrying
// SACK ranges — every ~5 ms, after every 16 datagrams, and at once when a gap appears.
//
// Memory: a chunk being reassembled holds a buffer counted in the session's MemoryBudget from
// its first fragment until the session has written it. When the budget is exhausted the
// datagram is dropped unacknowledged, so the sender sees a loss and sends it again later: the
// budget doubles as flow control.
//
// Network thread only.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "core/memory_budget.h"
#include "crypto/datagram_aead.h"
#include "protocol/frames.h"
#include "transport/udp/ack_ranges.h"
#include "transport/udp/datagram_socket.h"

namespace ferry::udp {

struct UdpReceiverConfig {
  uint16_t max_datagram = 1472;
  uint32_t chunk_size = protocol::kDefaultChunkSize;
  DatagramFaults faults;  // TEST-ONLY: applied to outgoing ACKs
  std::string peer;       // "sender 10.0.0.4", for messages
};

struct UdpReceiverStats {
  uint64_t datagrams = 0;
  uint64_t duplicates = 0;     // fragments (or packets) that had arrived already
  uint64_t auth_failures = 0;  // failed authentication, replays, or wrong kind: dropped
  uint64_t budget_drops = 0;   // dropped unacknowledged for lack of memory budget
  uint64_t chunks = 0;
  uint64_t acks_sent = 0;
};

class UdpChunkReceiver : public std::enable_shared_from_this<UdpChunkReceiver> {
 public:
  // A complete chunk: its header, its payload (payload_len bytes) and the budget bytes held
  // for it, which the consumer releases. Network thread.
  using Deliver = std::function<void(const protocol::ChunkHeader& header, Buffer payload, uint32_t payload_len,
                                     uint64_t reserved)>;

  UdpChunkReceiver(asio::io_context& io, std::unique_ptr<DatagramSocket> socket, const crypto::SessionKeys& keys,
                   MemoryBudget& budget, UdpReceiverConfig config, Deliver deliver,
                   std::function<void(const Status&)> on_error);
  ~UdpChunkReceiver();

  void start();
  void close();
  uint16_t port() const { return socket_->local_port(); }
  const UdpReceiverStats& stats() const { return stats_; }

 private:
  struct Partial {
    uint8_t header[protocol::kChunkHeaderSize] = {};
    Buffer payload;           // chunk_size bytes
    uint64_t reserved = 0;    // budget held
    uint32_t record_len = 0;  // 0 until the fragment holding the header arrived
    uint32_t got_bytes = 0;
    std::vector<uint8_t> got;  // per fragment
  };

  asio::awaitable<void> receive_loop();
  asio::awaitable<void> ack_timer_loop();
  // Returns false when the datagram must not be acknowledged (dropped for budget).
  bool on_datagram(const uint8_t* data, size_t len, uint64_t now);
  bool on_fragment(uint32_t ref, uint32_t offset, const uint8_t* bytes, uint32_t len);
  void send_ack(uint64_t now);
  bool completed(uint32_t ref) const { return ref < done_floor_ || done_above_.count(ref); }
  void mark_completed(uint32_t ref);
  void fail(const Status& st);

  asio::io_context& io_;
  std::unique_ptr<DatagramSocket> socket_;
  crypto::DatagramSealer sealer_;
  crypto::DatagramOpener opener_;
  crypto::ReplayWindow replay_;
  MemoryBudget& budget_;
  UdpReceiverConfig config_;
  Deliver deliver_;
  std::function<void(const Status&)> on_error_;
  DatagramFaultShim shim_;
  asio::steady_timer ack_timer_;
  const uint32_t frag_size_;

  ReceivedPackets received_;
  udp_endpoint peer_;
  bool have_peer_ = false;
  uint64_t next_pn_ = 0;
  uint32_t unacked_ = 0;  // datagrams received since the last ACK
  bool gap_ = false;      // a gap appeared since the last ACK: acknowledge at once
  bool closed_ = false;

  std::unordered_map<uint32_t, Partial> partial_;
  uint32_t done_floor_ = 0;       // every ref below is complete
  std::set<uint32_t> done_above_;  // complete refs at or above the floor
  UdpReceiverStats stats_;
  std::vector<uint8_t> plain_;
};

}  // namespace ferry::udp
