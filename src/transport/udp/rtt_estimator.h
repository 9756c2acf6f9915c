// Round-trip time estimation per RFC 9002 §5: latest, min, smoothed and variance.
//
// min_rtt is the all-time minimum of raw samples (ack delay is never subtracted from it, so
// it cannot be pushed below the true path RTT by a lying peer). smoothed_rtt and rttvar use the
// sample minus the peer's reported ack delay (capped at max_ack_delay), but only while that
// keeps the sample >= min_rtt. Before the first sample, smoothed_rtt is the initial RTT.
#pragma once

#include <algorithm>
#include <cstdint>

namespace ferry::udp {

class RttEstimator {
 public:
  static constexpr uint64_t kDefaultInitialRttUs = 333'000;  // RFC 9002 §6.2.2
  static constexpr uint64_t kGranularityUs = 1'000;          // timer granularity (RFC 9002 kGranularity)

  explicit RttEstimator(uint64_t initial_rtt_us = kDefaultInitialRttUs)
      : smoothed_(initial_rtt_us), rttvar_(initial_rtt_us / 2) {}

  // Upper bound the peer promises for its ack delay; larger reported delays are clamped.
  void set_max_ack_delay(uint64_t us) { max_ack_delay_ = us; }
  uint64_t max_ack_delay() const { return max_ack_delay_; }

  // One RTT sample: now - send time of the newly acked largest packet, and the peer's delay.
  void update(uint64_t sample_us, uint64_t ack_delay_us) {
    latest_ = sample_us;
    if (!has_sample_) {
      has_sample_ = true;
      min_ = sample_us;
      smoothed_ = sample_us;
      rttvar_ = sample_us / 2;
      adjusted_ = sample_us;
      return;
    }
    min_ = std::min(min_, sample_us);
    const uint64_t delay = std::min(ack_delay_us, max_ack_delay_);
    adjusted_ = (sample_us >= min_ + delay) ? sample_us - delay : sample_us;
    const uint64_t diff = smoothed_ > adjusted_ ? smoothed_ - adjusted_ : adjusted_ - smoothed_;
    rttvar_ = (3 * rttvar_ + diff) / 4;
    smoothed_ = (7 * smoothed_ + adjusted_) / 8;
  }

  bool has_sample() const { return has_sample_; }
  uint64_t latest() const { return latest_; }
  // The latest sample with the ack delay removed (what the controller sees as path RTT).
  uint64_t latest_adjusted() const { return adjusted_; }
  uint64_t min() const { return min_; }
  uint64_t smoothed() const { return smoothed_; }
  uint64_t rttvar() const { return rttvar_; }

  // RFC 9002 §6.2.1 probe timeout duration, without backoff.
  uint64_t pto_duration() const {
    return smoothed_ + std::max(4 * rttvar_, kGranularityUs) + max_ack_delay_;
  }

 private:
  bool has_sample_ = false;
  uint64_t latest_ = 0;
  uint64_t adjusted_ = 0;
  uint64_t min_ = 0;
  uint64_t smoothed_;
  uint64_t rttvar_;
  uint64_t max_ack_delay_ = 25'000;
};

}  // namespace ferry::udp
