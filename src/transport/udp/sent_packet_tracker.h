// Sender-side bookkeeping of datagrams in flight: ACK processing, RTT samples, loss detection
// (RFC 9002 §6), probe timeout, delivery-rate samples (draft-cheng-iccrg-delivery-rate-
// estimation) and the feed into the congestion controller.
//
// Storage: a deque indexed by (pn - base_pn_), so sending, acking and loss detection are O(1)
// amortised per packet at ~20k packets/s and ~10k in flight. Invariants:
//  - packet numbers are sent strictly increasing; entries exist for every pn in
//    [base_pn_, next_pn_) (gaps the caller skipped are stored as kGone);
//  - every packet with pn < first_outstanding_ is acked, lost or gone, so loss detection and
//    ACK processing only walk the new part of the window;
//  - a packet is reported once: in `acked` when first acked, or in `lost` when declared lost.
//    An ACK for a packet already declared lost only bumps spurious_losses (looked up in a
//    bounded record of recently lost pns).
#pragma once

#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "transport/cc/congestion_controller.h"
#include "transport/udp/ack_ranges.h"
#include "transport/udp/rtt_estimator.h"

namespace ferry::udp {

struct SentPacket {
  uint64_t packet_number = 0;
  uint64_t sent_time_us = 0;
  uint32_t bytes = 0;
  uint64_t token = 0;  // opaque: the caller's id of what the packet carried
  // Delivery-rate state at send time.
  uint64_t delivered = 0;          // connection bytes delivered when this was sent
  uint64_t delivered_time_us = 0;  // when `delivered` last changed
  uint64_t first_sent_time_us = 0; // send time of the packet that started the sample interval
  bool app_limited = false;
};

struct AckOutcome {
  std::vector<SentPacket> acked;
  std::vector<SentPacket> lost;
  bool any_new = false;  // something was newly acked
};

class SentPacketTracker {
 public:
  static constexpr uint64_t kPacketThreshold = 3;  // RFC 9002 kPacketThreshold
  static constexpr size_t kLostRecordSize = 8192;  // recently lost pns kept for spurious accounting

  explicit SentPacketTracker(cc::CongestionController& cc);

  // pn strictly increasing (a non-increasing pn is ignored). app_limited: the sender has nothing else queued right now.
  void on_sent(uint64_t now_us, uint64_t pn, uint32_t bytes, uint64_t token, bool app_limited);
  // ranges: descending, non-overlapping (as decoded from an ACK). Updates RTT (only if the
  // largest acked is newly acked), detects loss (packet threshold 3, time threshold 9/8 x
  // max(srtt, latest_rtt), granularity 1 ms), feeds the controller, returns what was acked
  // and what is now deemed lost.
  AckOutcome on_ack(uint64_t now_us, std::span<const AckRange> ranges, uint64_t ack_delay_us);
  // Time-threshold losses that became due without a new ACK; call when loss_deadline_us() passes.
  AckOutcome on_timer(uint64_t now_us);
  // The caller sent a probe because pto_deadline_us() passed: back the next PTO off (x2).
  void on_pto_fired() { ++pto_count_; }

  uint64_t loss_deadline_us() const;  // 0 = none pending
  uint64_t pto_deadline_us() const;   // probe timeout (RFC 9002 §6.2), 0 if nothing in flight
  uint64_t bytes_in_flight() const { return bytes_in_flight_; }
  const RttEstimator& rtt() const { return rtt_; }
  RttEstimator& rtt() { return rtt_; }  // e.g. set_max_ack_delay()
  uint64_t largest_acked() const { return largest_acked_; }
  bool has_acked() const { return has_acked_; }

  uint64_t packets_sent() const { return packets_sent_; }
  uint64_t packets_lost() const { return packets_lost_; }
  uint64_t bytes_lost() const { return bytes_lost_; }
  uint64_t packets_acked() const { return packets_acked_; }
  uint64_t delivered_bytes() const { return delivered_; }
  // Packets declared lost that were later acked (their resend was redundant).
  uint64_t spurious_losses() const { return spurious_losses_; }

 private:
  enum class State : uint8_t { kOutstanding, kAcked, kLost, kGone };
  struct Entry {
    SentPacket pkt;
    State state;
  };
  struct LostRecord {
    uint64_t pn;
    bool acked_later;
  };

  Entry* find(uint64_t pn);
  void note_ack_of_lost(uint64_t first, uint64_t last);
  // Declares due losses among [first_outstanding_, largest_acked_); appends to out.lost.
  void detect_losses(uint64_t now_us, AckOutcome& out);
  uint64_t loss_delay_us() const;
  void advance_first_outstanding();
  void trim_front();
  void report_losses(uint64_t now_us, const AckOutcome& out);

  cc::CongestionController& cc_;
  RttEstimator rtt_;
  std::deque<Entry> window_;  // window_[i] has pn base_pn_ + i
  uint64_t base_pn_ = 0;
  uint64_t next_pn_ = 0;            // one past the largest pn sent
  uint64_t first_outstanding_ = 0;  // see invariants
  std::deque<LostRecord> lost_record_;  // ascending pn
  bool has_acked_ = false;
  uint64_t largest_acked_ = 0;
  uint64_t bytes_in_flight_ = 0;
  uint64_t last_ack_eliciting_sent_us_ = 0;
  uint32_t pto_count_ = 0;
  // Delivery-rate state (connection level).
  uint64_t delivered_ = 0;
  uint64_t delivered_time_us_ = 0;
  uint64_t first_sent_time_us_ = 0;
  uint64_t app_limited_until_ = 0;  // delivered_ mark; 0 = not app limited
  // Counters.
  uint64_t packets_sent_ = 0, packets_lost_ = 0, bytes_lost_ = 0, packets_acked_ = 0;
  uint64_t spurious_losses_ = 0;
};

}  // namespace ferry::udp
