#include "transport/udp/sent_packet_tracker.h"

#include <algorithm>

namespace ferry::udp {

namespace {
constexpr uint64_t kPersistentCongestionThreshold = 3;  // RFC 9002 §7.6.1
constexpr uint32_t kMaxPtoBackoffShift = 10;
}  // namespace

SentPacketTracker::SentPacketTracker(cc::CongestionController& cc) : cc_(cc) {}

SentPacketTracker::Entry* SentPacketTracker::find(uint64_t pn) {
  if (pn < base_pn_ || pn >= next_pn_) return nullptr;
  return &window_[pn - base_pn_];
}

void SentPacketTracker::on_sent(uint64_t now_us, uint64_t pn, uint32_t bytes, uint64_t token,
                                bool app_limited) {
  // Contract: pn strictly increasing. A repeated or older pn is a caller bug; tracking it
  // would break the offset indexing, so it is not tracked (and not counted in flight).
  if (packets_sent_ != 0 && pn < next_pn_) return;
  if (window_.empty()) {
    base_pn_ = pn;
    first_outstanding_ = pn;
  } else {
    // pn strictly increasing; numbers the caller skipped are stored as gone so that the
    // window stays indexable by offset.
    for (uint64_t skipped = next_pn_; skipped < pn; ++skipped) {
      window_.push_back(Entry{SentPacket{skipped, now_us, 0, 0, 0, 0, 0, false}, State::kGone});
    }
  }
  next_pn_ = pn + 1;
  if (bytes_in_flight_ == 0) {
    // A new flight starts: the sample interval must not include the idle time before it.
    first_sent_time_us_ = now_us;
    delivered_time_us_ = now_us;
  }
  if (app_limited) app_limited_until_ = std::max<uint64_t>(delivered_ + bytes_in_flight_ + bytes, 1);
  SentPacket p;
  p.packet_number = pn;
  p.sent_time_us = now_us;
  p.bytes = bytes;
  p.token = token;
  p.delivered = delivered_;
  p.delivered_time_us = delivered_time_us_;
  p.first_sent_time_us = first_sent_time_us_;
  p.app_limited = app_limited_until_ != 0;
  window_.push_back(Entry{p, State::kOutstanding});
  bytes_in_flight_ += bytes;
  last_ack_eliciting_sent_us_ = now_us;
  ++packets_sent_;
  cc_.on_sent(cc::SentEvent{now_us, pn, bytes, bytes_in_flight_, p.app_limited});
}

void SentPacketTracker::note_ack_of_lost(uint64_t first, uint64_t last) {
  auto it = std::lower_bound(lost_record_.begin(), lost_record_.end(), first,
                             [](const LostRecord& r, uint64_t v) { return r.pn < v; });
  for (; it != lost_record_.end() && it->pn <= last; ++it) {
    if (!it->acked_later) {
      it->acked_later = true;
      ++spurious_losses_;
    }
  }
}

AckOutcome SentPacketTracker::on_ack(uint64_t now_us, std::span<const AckRange> ranges,
                                     uint64_t ack_delay_us) {
  AckOutcome out;
  if (ranges.empty() || next_pn_ == 0) return out;
  const uint64_t largest = ranges.front().last;
  // An ACK for a packet never sent is a peer bug; ignore the whole frame rather than guess.
  if (largest >= next_pn_ && !window_.empty()) return out;
  if (window_.empty()) {
    // Nothing in flight: only spurious-loss accounting can apply.
    for (const AckRange& r : ranges) note_ack_of_lost(r.first, r.last);
    return out;
  }

  // RTT sample only when the largest acked is newly acked (RFC 9002 §5.1).
  bool rtt_sampled = false;
  if (Entry* e = find(largest); e != nullptr && e->state == State::kOutstanding) {
    rtt_.update(now_us - std::min(now_us, e->pkt.sent_time_us), ack_delay_us);
    rtt_sampled = true;
  }

  // The newest-sent acked packet (largest `delivered` at send) defines the rate sample.
  const SentPacket* sample_pkt = nullptr;
  SentPacket sample_copy;
  for (const AckRange& r : ranges) {
    if (r.first > r.last) continue;
    const uint64_t hi = std::min(r.last, next_pn_ - 1);
    if (r.first < first_outstanding_) note_ack_of_lost(r.first, std::min(hi, first_outstanding_ - 1));
    for (uint64_t pn = std::max(r.first, first_outstanding_); pn <= hi; ++pn) {
      Entry& e = window_[pn - base_pn_];
      if (e.state == State::kLost) {
        note_ack_of_lost(pn, pn);
        continue;
      }
      if (e.state != State::kOutstanding) continue;
      e.state = State::kAcked;
      bytes_in_flight_ -= e.pkt.bytes;
      delivered_ += e.pkt.bytes;
      ++packets_acked_;
      if (sample_pkt == nullptr || e.pkt.delivered > sample_copy.delivered ||
          (e.pkt.delivered == sample_copy.delivered && e.pkt.sent_time_us > sample_copy.sent_time_us)) {
        sample_copy = e.pkt;
        sample_pkt = &sample_copy;
      }
      out.acked.push_back(e.pkt);
    }
  }
  out.any_new = !out.acked.empty();
  cc::RateSample rs{0, 0, false};
  uint64_t acked_bytes = 0;
  if (out.any_new) {
    for (const SentPacket& p : out.acked) acked_bytes += p.bytes;
    delivered_time_us_ = now_us;
    rs.delivered_bytes = delivered_ - sample_copy.delivered;
    const uint64_t send_elapsed = sample_copy.sent_time_us - sample_copy.first_sent_time_us;
    const uint64_t ack_elapsed = now_us - std::min(now_us, sample_copy.delivered_time_us);
    rs.interval_us = std::max(send_elapsed, ack_elapsed);
    rs.app_limited = sample_copy.app_limited;
    first_sent_time_us_ = sample_copy.sent_time_us;
    if (app_limited_until_ != 0 && delivered_ > app_limited_until_) app_limited_until_ = 0;
    if (!has_acked_ || largest > largest_acked_) largest_acked_ = largest;
    has_acked_ = true;
    pto_count_ = 0;
  }
  advance_first_outstanding();
  detect_losses(now_us, out);
  trim_front();
  report_losses(now_us, out);
  if (out.any_new) {
    cc::AckEvent ev{};
    ev.time_us = now_us;
    ev.acked_bytes = acked_bytes;
    ev.bytes_in_flight = bytes_in_flight_;
    if (rtt_sampled) {
      // The controller sees path RTT: the ack delay removed, never below min_rtt.
      const uint64_t delay = std::min(ack_delay_us, rtt_.max_ack_delay());
      const uint64_t adjusted = rtt_.latest() > delay ? rtt_.latest() - delay : 0;
      ev.latest_rtt_us = std::max(adjusted, rtt_.min());
    }
    ev.min_rtt_us = rtt_.min();
    ev.smoothed_rtt_us = rtt_.smoothed();
    ev.sample = rs;
    ev.largest_acked = largest_acked_;
    cc_.on_ack(ev);
  }
  return out;
}

AckOutcome SentPacketTracker::on_timer(uint64_t now_us) {
  AckOutcome out;
  detect_losses(now_us, out);
  trim_front();
  report_losses(now_us, out);
  return out;
}

uint64_t SentPacketTracker::loss_delay_us() const {
  const uint64_t base = std::max(rtt_.smoothed(), rtt_.latest());
  return std::max(base * 9 / 8, RttEstimator::kGranularityUs);
}

void SentPacketTracker::advance_first_outstanding() {
  while (first_outstanding_ < next_pn_ && window_[first_outstanding_ - base_pn_].state != State::kOutstanding) {
    ++first_outstanding_;
  }
}

void SentPacketTracker::detect_losses(uint64_t now_us, AckOutcome& out) {
  if (!has_acked_) return;
  const uint64_t delay = loss_delay_us();
  // Packets below first_outstanding_ are settled; the first outstanding one below the largest
  // acked is the oldest candidate, and if it is not lost yet no later one is (larger pn and
  // later send time), so this loop is amortised O(1) per packet.
  while (first_outstanding_ < largest_acked_) {
    Entry& e = window_[first_outstanding_ - base_pn_];
    if (e.state == State::kOutstanding) {
      const bool by_count = largest_acked_ >= e.pkt.packet_number + kPacketThreshold;
      const bool by_time = e.pkt.sent_time_us + delay <= now_us;
      if (!by_count && !by_time) break;
      e.state = State::kLost;
      bytes_in_flight_ -= e.pkt.bytes;
      ++packets_lost_;
      bytes_lost_ += e.pkt.bytes;
      lost_record_.push_back(LostRecord{e.pkt.packet_number, false});
      if (lost_record_.size() > kLostRecordSize) lost_record_.pop_front();
      out.lost.push_back(e.pkt);
    }
    ++first_outstanding_;
  }
  advance_first_outstanding();
}

void SentPacketTracker::trim_front() {
  while (!window_.empty() && base_pn_ < first_outstanding_ && window_.front().state != State::kOutstanding) {
    window_.pop_front();
    ++base_pn_;
  }
}

void SentPacketTracker::report_losses(uint64_t now_us, const AckOutcome& out) {
  if (out.lost.empty()) return;
  cc::LossEvent ev{};
  ev.time_us = now_us;
  for (const SentPacket& p : out.lost) {
    ev.lost_bytes += p.bytes;
    ev.largest_lost = std::max(ev.largest_lost, p.packet_number);
  }
  ev.bytes_in_flight = bytes_in_flight_;
  // Persistent congestion (simplified RFC 9002 §7.6): a run of consecutive packet numbers,
  // all lost in this batch, whose send times span more than 3 PTO durations. Requires an RTT
  // sample so that a slow first round trip is not mistaken for a collapse.
  if (rtt_.has_sample()) {
    const uint64_t span_limit = rtt_.pto_duration() * kPersistentCongestionThreshold;
    size_t run_start = 0;
    for (size_t i = 1; i <= out.lost.size(); ++i) {
      const bool run_continues =
          i < out.lost.size() && out.lost[i].packet_number == out.lost[i - 1].packet_number + 1;
      if (run_continues) continue;
      const uint64_t span = out.lost[i - 1].sent_time_us - out.lost[run_start].sent_time_us;
      if (span > span_limit) ev.persistent_congestion = true;
      run_start = i;
    }
  }
  cc_.on_loss(ev);
}

uint64_t SentPacketTracker::loss_deadline_us() const {
  if (!has_acked_ || first_outstanding_ >= largest_acked_ || first_outstanding_ >= next_pn_) return 0;
  const Entry& e = window_[first_outstanding_ - base_pn_];
  return e.pkt.sent_time_us + loss_delay_us();
}

uint64_t SentPacketTracker::pto_deadline_us() const {
  if (bytes_in_flight_ == 0) return 0;
  return last_ack_eliciting_sent_us_ + (rtt_.pto_duration() << std::min(pto_count_, kMaxPtoBackoffShift));
}

}  // namespace ferry::udp
