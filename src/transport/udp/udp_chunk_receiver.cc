#include "transport/udp/udp_chunk_receiver.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>

#include "codec/chunk_codec.h"
#include "core/byte_order.h"
#include "transport/udp/datagram_format.h"
#include "transport/udp/udp_chunk_sender.h"  // monotonic_us

namespace ferry::udp {
namespace {
constexpr uint32_t kAckEvery = 16;         // datagrams
constexpr uint64_t kAckIntervalUs = kMaxAckDelayUs / 2;  // timer period; ACKs wait at most about twice this
constexpr size_t kMaxAckRanges = 64;
}  // namespace

UdpChunkReceiver::UdpChunkReceiver(asio::io_context& io, std::unique_ptr<DatagramSocket> socket,
                                   const crypto::SessionKeys& keys, MemoryBudget& budget, UdpReceiverConfig config,
                                   Deliver deliver, std::function<void(const Status&)> on_error)
    : io_(io),
      socket_(std::move(socket)),
      sealer_(keys.outgoing()),
      opener_(keys.incoming()),
      budget_(budget),
      config_(std::move(config)),
      deliver_(std::move(deliver)),
      on_error_(std::move(on_error)),
      shim_(config_.faults),
      ack_timer_(io),
      frag_size_(config_.max_datagram - static_cast<uint32_t>(kHeaderSize + kTagSize + kDataPrefix)) {}

UdpChunkReceiver::~UdpChunkReceiver() {
  for (auto& [ref, p] : partial_) budget_.release(p.reserved);
}

void UdpChunkReceiver::start() {
  asio::co_spawn(io_, receive_loop(), asio::detached);
  asio::co_spawn(io_, ack_timer_loop(), asio::detached);
}

void UdpChunkReceiver::close() {
  if (closed_) return;
  closed_ = true;
  ack_timer_.cancel();
  socket_->close();
  for (auto& [ref, p] : partial_) budget_.release(p.reserved);
  partial_.clear();
}

void UdpChunkReceiver::fail(const Status& st) {
  if (closed_) return;
  close();
  if (on_error_) asio::post(io_, [cb = on_error_, st] { cb(st); });
}

asio::awaitable<void> UdpChunkReceiver::receive_loop() {
  auto self = shared_from_this();
  while (!closed_) {
    auto [ec] = co_await socket_->socket().async_wait(asio::ip::udp::socket::wait_read,
                                                      asio::as_tuple(asio::use_awaitable));
    if (closed_ || ec) break;
    for (int round = 0; round < 64 && !closed_; ++round) {
      const uint64_t now = monotonic_us();
      auto n = socket_->receive([&](const uint8_t* data, size_t len, const udp_endpoint& from) {
        if (closed_) return;
        // Only an authentic datagram tells (or moves, after a NAT rebinding) where the sender is.
        if (on_datagram(data, len, now) && (!have_peer_ || from != peer_) && from.port() != 0) {
          peer_ = from;
          have_peer_ = true;
        }
      });
      if (!n) {
        fail(Status(n.status().code(), config_.peer + ": " + n.status().message()));
        co_return;
      }
      if (*n == 0) break;
      if (gap_ || unacked_ >= kAckEvery) send_ack(monotonic_us());
    }
  }
}

asio::awaitable<void> UdpChunkReceiver::ack_timer_loop() {
  auto self = shared_from_this();
  while (!closed_) {
    ack_timer_.expires_after(std::chrono::microseconds(kAckIntervalUs));
    co_await ack_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    if (closed_) break;
    if (unacked_ > 0) send_ack(monotonic_us());
  }
}

bool UdpChunkReceiver::on_datagram(const uint8_t* data, size_t len, uint64_t now) {
  ++stats_.datagrams;
  auto header = decode_header({data, len});
  if (!header || header->kind == DatagramKind::kAck || len < kHeaderSize + kTagSize) {
    ++stats_.auth_failures;
    return false;
  }
  plain_.resize(len);
  auto opened = opener_.open(header->packet_number, {data, kHeaderSize}, {data + kHeaderSize, len - kHeaderSize},
                             plain_.data());
  if (!opened) {
    ++stats_.auth_failures;  // forged or corrupted: dropped before anything else looks at it
    return false;
  }
  const uint64_t pn = header->packet_number;
  if (!replay_.check_and_mark(pn)) {
    ++stats_.auth_failures;  // a replay (or a packet too old to tell): dropped
    return false;
  }
  if (header->kind == DatagramKind::kData) {
    if (*opened < kDataPrefix) {
      fail(Status(Error::kProtocol, config_.peer + ": DATA datagram too short"));
      return false;
    }
    const uint32_t ref = load_be32(plain_.data());
    const uint32_t offset_field = load_be32(plain_.data() + 4);
    if (completed(ref)) {
      ++stats_.duplicates;
    } else if (!on_fragment(ref, offset_field, plain_.data() + kDataPrefix,
                            static_cast<uint32_t>(*opened - kDataPrefix))) {
      // Dropped for lack of budget (or the session failed): not acknowledged, so the sender
      // resends the fragment later in a new packet.
      if (!closed_) ++stats_.budget_drops;
      return false;
    }
  }
  const uint64_t largest_before = received_.empty() ? 0 : received_.largest();
  const bool had_any = !received_.empty();
  if (!received_.record(pn, now)) {
    ++stats_.duplicates;
    return true;
  }
  if (had_any && pn > largest_before + 1) gap_ = true;
  ++unacked_;
  return true;
}

bool UdpChunkReceiver::on_fragment(uint32_t ref, uint32_t offset_field, const uint8_t* bytes, uint32_t len) {
  const bool last = offset_field & kLastFragmentFlag;
  const uint32_t offset = offset_field & ~kLastFragmentFlag;
  const uint64_t max_record = protocol::kChunkHeaderSize + uint64_t{config_.chunk_size};
  if (len == 0 || len > frag_size_ || offset % frag_size_ != 0 || offset + uint64_t{len} > max_record ||
      (!last && len != frag_size_) || (last && offset + len < protocol::kChunkHeaderSize + 1)) {
    fail(Status(Error::kProtocol, config_.peer + ": DATA fragment at offset " + std::to_string(offset) +
                                      " of chunk " + std::to_string(ref) + " is malformed"));
    return false;
  }
  auto it = partial_.find(ref);
  if (it == partial_.end()) {
    // Room for the record and, if it turns out compressed, its decompressed chunk; trimmed
    // to the exact need once the header is known.
    const uint64_t reserve = max_record + config_.chunk_size;
    if (!budget_.try_acquire(reserve)) return false;
    Partial p;
    p.payload = make_buffer(config_.chunk_size);
    p.reserved = reserve;
    p.got.assign((max_record + frag_size_ - 1) / frag_size_, 0);
    it = partial_.emplace(ref, std::move(p)).first;
  }
  Partial& p = it->second;
  const uint32_t index = offset / frag_size_;
  if (p.got[index]) {
    ++stats_.duplicates;
    return true;
  }
  if (last) {
    if (p.record_len && p.record_len != offset + len) {
      fail(Status(Error::kProtocol, config_.peer + ": chunk " + std::to_string(ref) + " has two lengths"));
      return false;
    }
    p.record_len = offset + len;
  }
  if (p.record_len && offset + len > p.record_len) {
    fail(Status(Error::kProtocol, config_.peer + ": fragment beyond the end of chunk " + std::to_string(ref)));
    return false;
  }
  // The record is the 32-byte header, then the payload: write each part where it belongs so
  // the payload buffer can be handed on without another copy.
  uint32_t pos = offset, left = len;
  if (pos < protocol::kChunkHeaderSize) {
    uint32_t n = std::min<uint32_t>(left, static_cast<uint32_t>(protocol::kChunkHeaderSize) - pos);
    std::memcpy(p.header + pos, bytes, n);
    bytes += n;
    pos += n;
    left -= n;
  }
  if (left) std::memcpy(p.payload.get() + (pos - protocol::kChunkHeaderSize), bytes, left);
  p.got[index] = 1;
  p.got_bytes += len;
  if (!p.record_len || p.got_bytes != p.record_len) return true;

  // Complete: parse the header and hand the chunk on.
  auto header = protocol::decode_chunk_header({p.header, protocol::kChunkHeaderSize});
  if (!header) {
    fail(Status(Error::kProtocol, config_.peer + ": " + header.status().message()));
    return false;
  }
  const uint32_t payload_len = p.record_len - static_cast<uint32_t>(protocol::kChunkHeaderSize);
  uint64_t need = payload_len + (header->codec == static_cast<uint8_t>(Codec::kZstd) ? header->raw_length : 0);
  uint64_t reserved = p.reserved;
  if (need < reserved) {
    budget_.release(reserved - need);
    reserved = need;
  }
  Buffer payload = std::move(p.payload);
  partial_.erase(it);
  mark_completed(ref);
  ++stats_.chunks;
  deliver_(*header, std::move(payload), payload_len, reserved);
  return true;
}

void UdpChunkReceiver::mark_completed(uint32_t ref) {
  if (ref == done_floor_) {
    ++done_floor_;
    while (!done_above_.empty() && *done_above_.begin() == done_floor_) {
      done_above_.erase(done_above_.begin());
      ++done_floor_;
    }
  } else if (ref > done_floor_) {
    done_above_.insert(ref);
  }
}

void UdpChunkReceiver::send_ack(uint64_t now) {
  if (!have_peer_ || received_.empty() || closed_) return;
  AckFrame ack;
  ack.largest_acked = received_.largest();
  ack.ack_delay_us = static_cast<uint32_t>(std::min<uint64_t>(now - received_.largest_time_us(), UINT32_MAX));
  ack.largest_recv_time_us = received_.largest_time_us();
  ack.floor = received_.floor();
  ack.ranges = received_.ranges(kMaxAckRanges);
  std::vector<uint8_t> body;
  encode_ack_body(ack, body);
  const uint64_t pn = next_pn_++;
  DatagramBatch batch;
  batch.bytes.resize(kHeaderSize + body.size() + kTagSize);
  encode_header(DatagramKind::kAck, pn, batch.bytes.data());
  sealer_.seal(pn, {batch.bytes.data(), kHeaderSize}, body, batch.bytes.data() + kHeaderSize);
  batch.lengths.push_back(static_cast<uint16_t>(batch.bytes.size()));
  if (shim_.active()) shim_.apply(batch);  // TEST-ONLY FAULT
  auto left = socket_->send(batch, 0, &peer_);
  if (!left) {
    fail(Status(left.status().code(), config_.peer + ": " + left.status().message()));
    return;
  }
  // A full socket buffer drops this ACK; the next one carries the same ranges.
  ++stats_.acks_sent;
  unacked_ = 0;
  gap_ = false;
}

}  // namespace ferry::udp
