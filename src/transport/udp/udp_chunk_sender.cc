#include "transport/udp/udp_chunk_sender.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/byte_order.h"
#include "core/log.h"
#include "transport/udp/datagram_format.h"

namespace ferry::udp {

uint64_t monotonic_us() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

namespace {
constexpr uint64_t kMaxBurstDatagrams = 64;  // one GSO send at most
constexpr uint64_t kIdleWaitUs = 1'000'000;
// With data in flight and not one authentic ACK for this long, the UDP path is dead (a
// firewall that passes the TCP control connection but not UDP, or a receiver that stopped):
// the session fails with kNetwork, and the retry logic reconnects and resumes.
constexpr uint64_t kStallUs = 20'000'000;
}  // namespace

UdpChunkSender::UdpChunkSender(asio::io_context& io, std::unique_ptr<DatagramSocket> socket,
                               const crypto::SessionKeys& keys, UdpSenderConfig config,
                               std::function<void(const Status&)> on_error)
    : io_(io),
      socket_(std::move(socket)),
      sealer_(keys.outgoing()),
      opener_(keys.incoming()),
      config_(std::move(config)),
      on_error_(std::move(on_error)),
      cc_(cc::make_controller(config_.rate)),
      tracker_(*cc_),
      shim_(config_.faults),
      timer_(io),
      frag_size_(config_.max_datagram - static_cast<uint32_t>(kHeaderSize + kTagSize + kDataPrefix)) {}

UdpChunkSender::~UdpChunkSender() = default;

void UdpChunkSender::start() {
  trace_ = std::getenv("FERRY_UDP_TRACE") != nullptr;  // a line every 100 ms at -vv (debugging)
  tracker_.rtt().set_max_ack_delay(kMaxAckDelayUs);
  asio::co_spawn(io_, send_loop(), asio::detached);
  asio::co_spawn(io_, ack_loop(), asio::detached);
}

void UdpChunkSender::send(OutgoingChunk chunk) {
  if (closed_) {
    asio::post(io_, [cb = std::move(chunk.sent)] { cb(false); });
    return;
  }
  ChunkState c;
  uint8_t prefix[protocol::kChunkPrefixSize];
  protocol::encode_chunk_prefix(chunk.header, chunk.payload_len, prefix);
  std::memcpy(c.record_header, prefix + protocol::kFrameHeaderSize, protocol::kChunkHeaderSize);
  c.payload = chunk.payload;
  c.payload_len = chunk.payload_len;
  c.record_len = static_cast<uint32_t>(protocol::kChunkHeaderSize) + chunk.payload_len;
  c.frag_count = (c.record_len + frag_size_ - 1) / frag_size_;
  c.frag.assign(c.frag_count, kPending);
  c.sent = std::move(chunk.sent);
  unsent_bytes_ += c.record_len;
  chunks_.push_back(std::move(c));
  wake();
}

void UdpChunkSender::wake() {
  if (waiting_) timer_.cancel();
}

UdpChunkSender::ChunkState* UdpChunkSender::chunk_of(uint32_t ref) {
  if (ref < base_ref_) return nullptr;
  size_t i = ref - base_ref_;
  return i < chunks_.size() ? &chunks_[i] : nullptr;
}

uint32_t UdpChunkSender::fragment_len(const ChunkState& c, uint32_t index) const {
  uint32_t off = index * frag_size_;
  return std::min(frag_size_, c.record_len - off);
}

bool UdpChunkSender::build_data(DatagramBatch& batch, uint64_t now, bool* app_limited) {
  uint32_t ref = 0, index = 0;
  ChunkState* c = nullptr;
  bool resend = false;
  while (!c && !retransmit_.empty()) {
    uint64_t token = retransmit_.front();
    retransmit_.pop_front();
    ref = static_cast<uint32_t>(token >> 32);
    index = static_cast<uint32_t>(token);
    c = chunk_of(ref);
    if (c && (c->done || c->frag[index] != kQueued)) c = nullptr;  // acked meanwhile
    resend = c != nullptr;
  }
  while (!c && new_cursor_ < chunks_.size()) {
    ChunkState& n = chunks_[new_cursor_];
    if (n.next_new < n.frag_count) {
      c = &n;
      ref = base_ref_ + static_cast<uint32_t>(new_cursor_);
      index = n.next_new++;
      unsent_bytes_ -= fragment_len(n, index);
    }
    if (n.next_new >= n.frag_count) ++new_cursor_;
  }
  if (!c) return false;
  c->frag[index] = kPending;

  // Plaintext body: chunk_ref, offset, then the fragment of the record (header, then payload).
  const uint32_t off = index * frag_size_;
  const uint32_t len = fragment_len(*c, index);
  scratch_.resize(kDataPrefix + len);
  store_be32(scratch_.data(), ref);
  // Bit 31 of the offset marks the record's last fragment: it tells the receiver the length.
  store_be32(scratch_.data() + 4, off | (index + 1 == c->frag_count ? kLastFragmentFlag : 0));
  uint8_t* dst = scratch_.data() + kDataPrefix;
  uint32_t pos = off, left = len;
  if (pos < protocol::kChunkHeaderSize) {
    uint32_t n = std::min<uint32_t>(left, static_cast<uint32_t>(protocol::kChunkHeaderSize) - pos);
    std::memcpy(dst, c->record_header + pos, n);
    dst += n;
    pos += n;
    left -= n;
  }
  if (left) std::memcpy(dst, c->payload + (pos - protocol::kChunkHeaderSize), left);

  const uint64_t pn = next_pn_++;
  const size_t dg_len = kHeaderSize + scratch_.size() + kTagSize;
  size_t at = batch.bytes.size();
  batch.bytes.resize(at + dg_len);
  uint8_t* out = batch.bytes.data() + at;
  encode_header(DatagramKind::kData, pn, out);
  sealer_.seal(pn, {out, kHeaderSize}, scratch_, out + kHeaderSize);
  batch.lengths.push_back(static_cast<uint16_t>(dg_len));
  *app_limited = !has_data();
  tracker_.on_sent(now, pn, static_cast<uint32_t>(dg_len), (uint64_t{ref} << 32) | index, *app_limited);
  if (resend) retransmitted_bytes_ += len;
  datagram_bytes_ += dg_len;
  if (!first_send_us_) first_send_us_ = now;
  if (!last_heard_us_) last_heard_us_ = now;  // the stall clock starts with the first datagram
  return true;
}

void UdpChunkSender::build_probe(DatagramBatch& batch, uint64_t now) {
  // A PTO: a small sealed PROBE (no chunk data, so any receiver takes it) elicits an ACK, after which the time
  // threshold declares the tail of the flight lost (no fragment is sent twice blindly).
  const uint64_t pn = next_pn_++;
  uint8_t padding[32] = {};
  const size_t dg_len = kHeaderSize + sizeof padding + kTagSize;
  size_t at = batch.bytes.size();
  batch.bytes.resize(at + dg_len);
  uint8_t* out = batch.bytes.data() + at;
  encode_header(DatagramKind::kProbe, pn, out);
  sealer_.seal(pn, {out, kHeaderSize}, {padding, sizeof padding}, out + kHeaderSize);
  batch.lengths.push_back(static_cast<uint16_t>(dg_len));
  tracker_.on_sent(now, pn, static_cast<uint32_t>(dg_len), kProbeToken, true);
  datagram_bytes_ += dg_len;
}

asio::awaitable<void> UdpChunkSender::send_loop() {
  auto self = shared_from_this();
  DatagramBatch batch;
  auto sleep_until = [&](uint64_t until_us, uint64_t now) -> asio::awaitable<void> {
    uint64_t delta = until_us > now ? until_us - now : 0;
    waiting_ = true;
    timer_.expires_after(std::chrono::microseconds(std::min(delta, kIdleWaitUs)));
    co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    waiting_ = false;
  };
  while (!closed_) {
    uint64_t now = monotonic_us();
    if (tracker_.bytes_in_flight() > 0 && last_heard_us_ && now - last_heard_us_ > kStallUs) {
      fail(Status(Error::kNetwork, config_.peer + ": nothing acknowledged for " + std::to_string(kStallUs / 1'000'000) +
                                       " s (is UDP blocked between the two hosts?)"));
      co_return;
    }
    if (uint64_t d = tracker_.loss_deadline_us(); d && now >= d) {
      handle_outcome(tracker_.on_timer(now), now);
      if (closed_) break;
    }
    bool probe = false;
    if (uint64_t p = tracker_.pto_deadline_us(); p && now >= p) {
      probe = true;
      tracker_.on_pto_fired();
    }
    const uint64_t cwnd = cc_->congestion_window();
    const bool window_open = tracker_.bytes_in_flight() + config_.max_datagram <= cwnd;
    if (!probe && (!has_data() || !window_open)) {
      uint64_t until = now + kIdleWaitUs;
      for (uint64_t d : {tracker_.loss_deadline_us(), tracker_.pto_deadline_us()})
        if (d) until = std::min(until, d);
      co_await sleep_until(until, now);
      continue;
    }
    if (!probe && now < next_send_us_) {
      co_await sleep_until(next_send_us_, now);
      continue;
    }

    // One burst: about a millisecond of the pacing rate (at least two datagrams, at most one
    // GSO send), then the pacer waits burst/rate before the next.
    const uint64_t rate = std::max<uint64_t>(cc_->pacing_rate(), 1);
    const uint64_t burst_limit = std::clamp<uint64_t>(rate / 1000, 2ull * config_.max_datagram,
                                                      kMaxBurstDatagrams * config_.max_datagram);
    batch.clear();
    bool app_limited = false;
    size_t built = 0;
    while (batch.bytes.size() < burst_limit &&
           (built == 0 || tracker_.bytes_in_flight() + config_.max_datagram <= cwnd) &&
           build_data(batch, now, &app_limited))
      ++built;
    // A PTO always carries a PROBE, even when there was new data to send: a receiver whose
    // memory is full of partial chunks drops new-chunk fragments unacknowledged, and if the
    // fragments those partial chunks miss were the tail of what it had acknowledged, no ACK
    // would ever come to reveal their loss - new data alone deadlocked (receiver --memory 12M,
    // 2 % drop: "nothing acknowledged for 20 s" every time). The PROBE needs no memory, so it
    // is acknowledged, and the time threshold then declares the tail lost and resends it.
    if (probe) build_probe(batch, now);
    const uint64_t burst_bytes = batch.bytes.size();
    if (shim_.active()) shim_.apply(batch);  // TEST-ONLY FAULT
    size_t first = 0;
    while (first < batch.count() && !closed_) {
      auto left = socket_->send(batch, first);
      if (!left) {
        fail(Status(left.status().code(), config_.peer + ": " + left.status().message()));
        co_return;
      }
      if (*left == 0) break;
      first = batch.count() - *left;
      co_await socket_->socket().async_wait(asio::ip::udp::socket::wait_write, asio::as_tuple(asio::use_awaitable));
    }
    if (trace_ && now >= next_trace_us_) {
      next_trace_us_ = now + 100'000;
      char line[256];
      std::snprintf(line, sizeof line,
                    "udp trace t=%.1f state=%s pace=%.1fMbit bw=%.1fMbit cwnd=%llu inflight=%llu srtt=%.1fms "
                    "min=%.1fms lost=%llu",
                    static_cast<double>(now - first_send_us_) / 1e6, cc_->state_name(),
                    static_cast<double>(rate) * 8 / 1e6, static_cast<double>(cc_->bandwidth_estimate()) * 8 / 1e6,
                    static_cast<unsigned long long>(cwnd),
                    static_cast<unsigned long long>(tracker_.bytes_in_flight()),
                    static_cast<double>(tracker_.rtt().smoothed()) / 1000, static_cast<double>(tracker_.rtt().min()) / 1000,
                    static_cast<unsigned long long>(tracker_.packets_lost()));
      log::debug(line);
    }
    const uint64_t interval = burst_bytes * 1'000'000 / rate;
    next_send_us_ = std::max(next_send_us_, now > 1000 ? now - 1000 : 0) + interval;
  }
}

asio::awaitable<void> UdpChunkSender::ack_loop() {
  auto self = shared_from_this();
  while (!closed_) {
    auto [ec] = co_await socket_->socket().async_wait(asio::ip::udp::socket::wait_read,
                                                      asio::as_tuple(asio::use_awaitable));
    if (closed_ || ec) break;
    for (int round = 0; round < 64 && !closed_; ++round) {
      const uint64_t now = monotonic_us();
      auto n = socket_->receive([&](const uint8_t* data, size_t len, const udp_endpoint&) {
        if (!closed_) on_ack_datagram(data, len, now);
      });
      if (!n) {
        fail(Status(n.status().code(), config_.peer + ": " + n.status().message()));
        co_return;
      }
      if (*n == 0) break;
    }
    wake();
  }
}

void UdpChunkSender::on_ack_datagram(const uint8_t* data, size_t len, uint64_t now) {
  auto header = decode_header({data, len});
  if (!header || header->kind != DatagramKind::kAck || len < kHeaderSize + kTagSize) {
    ++auth_failures_;
    return;
  }
  uint8_t plain[2048];
  if (len - kHeaderSize - kTagSize > sizeof plain) {
    ++auth_failures_;
    return;
  }
  auto opened = opener_.open(header->packet_number, {data, kHeaderSize}, {data + kHeaderSize, len - kHeaderSize}, plain);
  if (!opened || !replay_.check_and_mark(header->packet_number)) {
    ++auth_failures_;  // forged, corrupted or replayed: dropped, counted
    return;
  }
  last_heard_us_ = now;
  auto ack = decode_ack_body({plain, *opened});
  if (!ack) {
    fail(Status(Error::kProtocol, config_.peer + ": " + ack.status().message()));
    return;
  }
  handle_outcome(tracker_.on_ack(now, ack->ranges, ack->ack_delay_us), now);
}

void UdpChunkSender::handle_outcome(const AckOutcome& out, uint64_t now) {
  const uint32_t overhead = static_cast<uint32_t>(kHeaderSize + kTagSize + kDataPrefix);
  for (const SentPacket& p : out.acked) {
    if (p.token == kProbeToken) continue;
    last_ack_us_ = now;
    ChunkState* c = chunk_of(static_cast<uint32_t>(p.token >> 32));
    const uint32_t index = static_cast<uint32_t>(p.token);
    if (!c || c->done || c->frag[index] == kAcked) {
      redundant_bytes_ += p.bytes > overhead ? p.bytes - overhead : 0;  // the receiver had it already
      continue;
    }
    c->frag[index] = kAcked;
    if (++c->acked == c->frag_count) {
      c->done = true;
      c->payload = nullptr;
      auto cb = std::move(c->sent);
      cb(true);  // may queue more chunks (deque references stay valid) or close us
      if (closed_) return;
    }
  }
  for (const SentPacket& p : out.lost) {
    if (p.token == kProbeToken) continue;
    ChunkState* c = chunk_of(static_cast<uint32_t>(p.token >> 32));
    const uint32_t index = static_cast<uint32_t>(p.token);
    if (!c || c->done || c->frag[index] == kAcked) continue;
    if (c->frag[index] == kPending) {
      c->frag[index] = kQueued;
      retransmit_.push_back(p.token);
    }
  }
  complete_front();
}

void UdpChunkSender::complete_front() {
  while (!chunks_.empty() && chunks_.front().done) {
    chunks_.pop_front();
    ++base_ref_;
    if (new_cursor_ > 0) --new_cursor_;
  }
}

void UdpChunkSender::set_rate_cap(uint64_t bytes_per_second) {
  cc_->set_rate_cap(bytes_per_second);  // the next burst is paced at the new rate
}

void UdpChunkSender::close() {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  socket_->close();
  std::vector<std::function<void(bool)>> pending;
  for (auto& c : chunks_)
    if (!c.done && c.sent) pending.push_back(std::move(c.sent));
  chunks_.clear();
  retransmit_.clear();
  if (!pending.empty())
    asio::post(io_, [pending = std::move(pending)] {
      for (auto& cb : pending) cb(false);
    });
}

void UdpChunkSender::fail(const Status& st) {
  if (closed_) return;
  close();
  if (on_error_) asio::post(io_, [cb = on_error_, st] { cb(st); });
}

UdpReport UdpChunkSender::report() const {
  UdpReport r;
  r.used = true;
  r.policy = cc::to_string(config_.rate.policy);
  r.packets_sent = tracker_.packets_sent();
  r.packets_lost = tracker_.packets_lost();
  r.packets_spurious = tracker_.spurious_losses();
  r.datagram_bytes = datagram_bytes_;
  r.retransmitted_bytes = retransmitted_bytes_;
  // A loss declared and later acked means its resend was not needed either.
  r.redundant_bytes = redundant_bytes_ + tracker_.spurious_losses() * frag_size_;
  r.auth_failures = auth_failures_;
  r.data_seconds = last_ack_us_ > first_send_us_ ? static_cast<double>(last_ack_us_ - first_send_us_) / 1e6 : 0;
  r.srtt_ms = static_cast<double>(tracker_.rtt().smoothed()) / 1000.0;
  r.min_rtt_ms = static_cast<double>(tracker_.rtt().min()) / 1000.0;
  r.bandwidth_estimate_bps = static_cast<double>(cc_->bandwidth_estimate()) * 8;
  return r;
}

}  // namespace ferry::udp
