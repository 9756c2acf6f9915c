// ChunkSender over UDP: each chunk's wire record (32-byte CHUNK header + payload) is cut into
// fragments that travel in AES-256-GCM sealed DATA datagrams, paced by the congestion
// controller (transport/cc). The receiver's ACKs (with SACK ranges) drive loss detection
// (RFC 9002, SentPacketTracker); a lost fragment is sent again in a new packet, so packet
// numbers are never reused and every RTT sample is unambiguous. A chunk's `sent` callback runs
// once every fragment of it was acknowledged — only then may the session free its buffer.
//
// Network thread only. The send loop and the ACK loop are coroutines on the session's
// io_context; neither touches the disk.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "crypto/datagram_aead.h"
#include "ferry/report.h"
#include "transport/cc/congestion_controller.h"
#include "transport/chunk_transport.h"
#include "transport/udp/datagram_socket.h"
#include "transport/udp/sent_packet_tracker.h"

namespace ferry::udp {

struct UdpSenderConfig {
  cc::RateConfig rate;
  uint16_t max_datagram = 1472;
  DatagramFaults faults;  // TEST-ONLY
  std::string peer;       // "receiver 10.0.0.5:40001", for messages
};

class UdpChunkSender final : public ChunkSender, public std::enable_shared_from_this<UdpChunkSender> {
 public:
  UdpChunkSender(asio::io_context& io, std::unique_ptr<DatagramSocket> socket, const crypto::SessionKeys& keys,
                 UdpSenderConfig config, std::function<void(const Status&)> on_error);
  ~UdpChunkSender() override;

  void start();  // spawns the send and ACK loops
  void send(OutgoingChunk chunk) override;
  uint64_t wire_bytes() const override { return datagram_bytes_; }
  uint64_t queued_bytes() const override { return unsent_bytes_; }
  void close() override;
  // The receiver's RATE_LIMIT: pace at or below this from now on (0 = back to the configured
  // target). Network thread.
  void set_rate_cap(uint64_t bytes_per_second);

  UdpReport report() const;

 private:
  enum : uint8_t { kPending = 0, kAcked = 1, kQueued = 2 };  // fragment states
  struct ChunkState {
    uint8_t record_header[protocol::kChunkHeaderSize];
    const uint8_t* payload = nullptr;
    uint32_t payload_len = 0;
    uint32_t record_len = 0;
    uint32_t frag_count = 0;
    uint32_t next_new = 0;  // first fragment never sent
    uint32_t acked = 0;
    std::vector<uint8_t> frag;  // kPending / kAcked / kQueued per fragment
    std::function<void(bool)> sent;
    bool done = false;
  };
  static constexpr uint64_t kProbeToken = UINT64_MAX;

  asio::awaitable<void> send_loop();
  asio::awaitable<void> ack_loop();
  void on_ack_datagram(const uint8_t* data, size_t len, uint64_t now);
  void handle_outcome(const AckOutcome& out, uint64_t now);
  ChunkState* chunk_of(uint32_t ref);
  bool has_data() const { return !retransmit_.empty() || new_cursor_ < chunks_.size(); }
  // Appends one sealed datagram for the next fragment (retransmissions first) to `batch`;
  // false when there is nothing to send.
  bool build_data(DatagramBatch& batch, uint64_t now, bool* app_limited);
  void build_probe(DatagramBatch& batch, uint64_t now);
  uint32_t fragment_len(const ChunkState& c, uint32_t index) const;
  void complete_front();
  void wake();
  void fail(const Status& st);

  asio::io_context& io_;
  std::unique_ptr<DatagramSocket> socket_;
  crypto::DatagramSealer sealer_;
  crypto::DatagramOpener opener_;
  crypto::ReplayWindow replay_;
  UdpSenderConfig config_;
  std::function<void(const Status&)> on_error_;
  std::unique_ptr<cc::CongestionController> cc_;
  SentPacketTracker tracker_;
  DatagramFaultShim shim_;
  asio::steady_timer timer_;
  const uint32_t frag_size_;  // record bytes per DATA datagram

  std::deque<ChunkState> chunks_;  // chunks_[i] has ref base_ref_ + i
  uint32_t base_ref_ = 0;
  size_t new_cursor_ = 0;          // first chunk with unsent fragments
  std::deque<uint64_t> retransmit_;  // tokens (ref << 32 | fragment) to send again
  uint64_t next_pn_ = 0;
  uint64_t next_send_us_ = 0;  // pacing: the earliest time of the next burst
  bool closed_ = false;
  bool waiting_ = false;

  uint64_t unsent_bytes_ = 0;
  uint64_t datagram_bytes_ = 0;
  uint64_t retransmitted_bytes_ = 0;
  uint64_t redundant_bytes_ = 0;
  uint64_t auth_failures_ = 0;
  uint64_t first_send_us_ = 0;
  uint64_t last_ack_us_ = 0;
  uint64_t last_heard_us_ = 0;  // the last authentic ACK (or the first send)
  std::vector<uint8_t> scratch_;
  bool trace_ = false;
  uint64_t next_trace_us_ = 0;
};

uint64_t monotonic_us();

}  // namespace ferry::udp
