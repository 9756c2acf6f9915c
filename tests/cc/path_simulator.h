// A tiny deterministic discrete-event model of a network path for controller tests: one
// bottleneck link (rate, FIFO tail-drop buffer), fixed propagation delay, seeded random loss
// after the bottleneck, and a receiver that ACKs every ack_interval or immediately on a gap.
// Flow 0 is ferry's UDP sender built from the real SentPacketTracker, ReceivedPackets and a
// CongestionController; flow 1 is an optional TCP competitor sharing the same queue: Reno
// (window-based, halves once per RTT on a drop) or Cubic (RFC 9438: beta 0.7, C 0.4, fast
// convergence and the Reno-friendly region; no HyStart, like a flow long past slow start). Time is simulated; nothing here sleeps.
//
// This is a simulator, not a fake of a ferry part: a test cannot produce a 200 Mbit/s, 300 ms,
// 5 %-loss WAN on loopback deterministically, and the controller takes time as a parameter.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <queue>
#include <random>
#include <vector>

#include "transport/cc/congestion_controller.h"
#include "transport/udp/ack_ranges.h"
#include "transport/udp/datagram_format.h"
#include "transport/udp/sent_packet_tracker.h"

namespace ferry::cc::sim {

struct PathConfig {
  double link_rate = 25e6;        // bytes/s at the bottleneck
  uint64_t base_rtt_us = 100'000;
  uint64_t buffer_bytes = 2'500'000;
  double random_loss = 0;         // probability a packet is lost after the bottleneck (flow 0)
  uint64_t seed = 1;
  uint64_t ack_interval_us = 10'000;
  uint32_t datagram = 1472;
  bool start_paused = false;  // flow 0 starts only at start_sender()
};

class PathSimulator {
 public:
  PathSimulator(const PathConfig& path, const RateConfig& rate)
      : path_(path), cc_(make_controller(rate)), tracker_(*cc_), rng_(path.seed) {
    if (!path.start_paused) schedule(0, Kind::kSenderWake);
  }
  // Start flow 0 now (with PathConfig::start_paused).
  void start_sender() {
    next_send_ = static_cast<double>(now_);
    schedule(now_, Kind::kSenderWake);
  }

  CongestionController& controller() { return *cc_; }
  udp::SentPacketTracker& tracker() { return tracker_; }
  uint64_t now() const { return now_; }

  // Change the bottleneck rate from now on (a capacity drop or rise).
  void set_link_rate(double r) { path_.link_rate = r; }
  // Change the propagation delay (a route change) for packets sent from now on.
  void set_base_rtt(uint64_t us) { path_.base_rtt_us = us; }
  // Change the random loss probability (1.0 = the path goes dark).
  void set_random_loss(double p) { path_.random_loss = p; }
  // Start / stop the TCP competitor.
  void start_reno() { start_tcp(false); }
  void start_cubic() { start_tcp(true); }
  void start_tcp(bool cubic) {
    reno_on_ = true;
    cubic_ = cubic;
    reno_cwnd_ = 10.0 * path_.datagram;
    reno_ssthresh_ = 1e18;
    cubic_w_max_ = 0;
    reno_send();
  }
  void stop_reno() { reno_on_ = false; }

  void run_until(uint64_t t_us) {
    while (!events_.empty() && events_.top().time <= t_us) {
      Event e = events_.top();
      events_.pop();
      now_ = e.time;
      handle(e);
    }
    now_ = t_us;
  }

  // Counters since the last reset_window().
  void reset_window() {
    win_start_ = now_;
    win_link_bytes_[0] = win_link_bytes_[1] = 0;
    win_delivered_[0] = win_delivered_[1] = 0;
    win_queue_delay_us_.clear();
  }
  double window_seconds() const { return static_cast<double>(now_ - win_start_) / 1e6; }
  // Rate at which flow f's bytes crossed the bottleneck / were delivered (unique) in the window.
  double link_rate_of(int f) const { return static_cast<double>(win_link_bytes_[f]) / window_seconds(); }
  double goodput_of(int f) const { return static_cast<double>(win_delivered_[f]) / window_seconds(); }
  // Median queueing delay met by flow-0 packets at the bottleneck in the window.
  uint64_t median_queue_delay_us() {
    if (win_queue_delay_us_.empty()) return 0;
    auto mid = win_queue_delay_us_.begin() + static_cast<long>(win_queue_delay_us_.size() / 2);
    std::nth_element(win_queue_delay_us_.begin(), mid, win_queue_delay_us_.end());
    return *mid;
  }

 private:
  enum class Kind : uint8_t { kSenderWake, kTimer, kArrive, kAckArrive, kAckTimer, kRenoAck, kRenoLoss };
  struct Event {
    uint64_t time;
    uint64_t seq;
    Kind kind;
    int flow = 0;
    uint64_t pn = 0;
    uint32_t bytes = 0;
    uint64_t ack_delay = 0;
    std::shared_ptr<std::vector<udp::AckRange>> ranges;
    bool operator>(const Event& o) const { return time != o.time ? time > o.time : seq > o.seq; }
  };

  void schedule(uint64_t t, Kind k, int flow = 0, uint64_t pn = 0, uint32_t bytes = 0) {
    Event e{t, seq_++, k, flow, pn, bytes, 0, nullptr};
    events_.push(std::move(e));
  }

  // Bottleneck: returns false if tail-dropped. Schedules arrival at the receiver side.
  bool enqueue(int flow, uint64_t pn, uint32_t bytes) {
    const double backlog_us = std::max(0.0, link_free_at_ - static_cast<double>(now_));
    const double backlog_bytes = backlog_us * path_.link_rate / 1e6;
    if (backlog_bytes + bytes > static_cast<double>(path_.buffer_bytes)) return false;
    if (flow == 0) win_queue_delay_us_.push_back(static_cast<uint64_t>(backlog_us));
    link_free_at_ = std::max(link_free_at_, static_cast<double>(now_)) + bytes * 1e6 / path_.link_rate;
    win_link_bytes_[flow] += bytes;
    const auto arrive = static_cast<uint64_t>(link_free_at_) + path_.base_rtt_us / 2;
    if (flow == 0 && loss_(rng_) < path_.random_loss) return true;  // lost after the link
    schedule(arrive, Kind::kArrive, flow, pn, bytes);
    return true;
  }

  void handle(const Event& e) {
    switch (e.kind) {
      case Kind::kSenderWake:
        wake_pending_ = false;
        sender_send();
        break;
      case Kind::kTimer: sender_timer(); break;
      case Kind::kArrive: e.flow == 0 ? receiver_arrive(e) : reno_arrive(e); break;
      case Kind::kAckArrive: {
        tracker_.on_ack(now_, *e.ranges, e.ack_delay);
        arm_timers();
        sender_send();
        break;
      }
      case Kind::kAckTimer:
        if (ack_timer_armed_ && e.pn == ack_timer_gen_) send_ack();
        break;
      case Kind::kRenoAck: reno_ack(e.bytes); break;
      case Kind::kRenoLoss: reno_loss(e.bytes); break;
    }
  }

  // ---- flow 0: ferry's sender, paced and window-limited, always has data ----
  void sender_send() {
    const double mtu = path_.datagram;
    const double now = static_cast<double>(now_);
    if (next_send_ < now - 1000) next_send_ = now - 1000;  // at most ~1 ms of pacing credit
    while (next_send_ <= now && tracker_.bytes_in_flight() + path_.datagram <= cc_->congestion_window()) {
      send_one();
      next_send_ += mtu * 1e6 / static_cast<double>(std::max<uint64_t>(cc_->pacing_rate(), 1));
    }
    if (tracker_.bytes_in_flight() + path_.datagram <= cc_->congestion_window() && !wake_pending_) {
      wake_pending_ = true;
      schedule(static_cast<uint64_t>(std::max(next_send_, now + 1)), Kind::kSenderWake);
    }
  }
  void send_one() {
    tracker_.on_sent(now_, next_pn_, path_.datagram, next_pn_, false);
    enqueue(0, next_pn_, path_.datagram);
    ++next_pn_;
    arm_timers();
  }
  void arm_timers() {
    uint64_t t = tracker_.loss_deadline_us();
    const uint64_t pto = tracker_.pto_deadline_us();
    if (t == 0 || (pto != 0 && pto < t)) t = pto;
    // One pending timer event at a time; a later deadline is re-armed when the earlier fires.
    if (t != 0 && (timer_at_ == 0 || t < timer_at_)) {
      timer_at_ = t;
      schedule(t, Kind::kTimer);
    }
  }
  void sender_timer() {
    if (timer_at_ != now_) return;  // superseded by an earlier one that already re-armed
    const uint64_t loss = tracker_.loss_deadline_us();
    if (loss != 0 && loss <= now_) tracker_.on_timer(now_);
    const uint64_t pto = tracker_.pto_deadline_us();
    if (pto != 0 && pto <= now_) {
      tracker_.on_pto_fired();
      send_one();  // a probe, regardless of the window
    }
    timer_at_ = 0;
    arm_timers();
    sender_send();
  }

  // ---- flow 0 receiver ----
  void receiver_arrive(const Event& e) {
    const uint64_t prev_largest = rx_.empty() ? 0 : rx_.largest();
    const bool gap = !rx_.empty() && e.pn != prev_largest + 1;
    if (rx_.record(e.pn, now_)) win_delivered_[0] += e.bytes;
    if (gap) {
      send_ack();
    } else if (!ack_timer_armed_) {
      ack_timer_armed_ = true;
      ++ack_timer_gen_;
      schedule(now_ + path_.ack_interval_us, Kind::kAckTimer, 0, ack_timer_gen_);
    }
  }
  void send_ack() {
    ack_timer_armed_ = false;
    Event e{now_ + path_.base_rtt_us / 2, seq_++, Kind::kAckArrive, 0, 0, 0, 0, nullptr};
    e.ranges = std::make_shared<std::vector<udp::AckRange>>(rx_.ranges(udp::kMaxAckRangesDefault));
    e.ack_delay = now_ - rx_.largest_time_us();
    events_.push(std::move(e));
  }

  // ---- flow 1: Reno-style TCP competitor ----
  void reno_send() {
    while (reno_on_ && reno_inflight_ + path_.datagram <= reno_cwnd_) {
      reno_inflight_ += path_.datagram;
      if (!enqueue(1, 0, path_.datagram)) {
        schedule(now_ + path_.base_rtt_us, Kind::kRenoLoss, 1, 0, path_.datagram);
      }
    }
  }
  void reno_arrive(const Event& e) {
    win_delivered_[1] += e.bytes;
    schedule(now_ + path_.base_rtt_us / 2, Kind::kRenoAck, 1, 0, e.bytes);
  }
  void reno_ack(uint32_t bytes) {
    reno_inflight_ -= bytes;
    const double mss = path_.datagram;
    if (reno_cwnd_ < reno_ssthresh_) {
      reno_cwnd_ += mss;
    } else if (!cubic_) {
      reno_cwnd_ += mss * mss / reno_cwnd_;
    } else {
      // RFC 9438 congestion avoidance, in MSS units and seconds since the last reduction.
      const double t = static_cast<double>(now_ - cubic_epoch_us_) / 1e6;
      const double rtt = static_cast<double>(path_.base_rtt_us) / 1e6;
      const double w = reno_cwnd_ / mss;
      const double target_t = t + rtt;
      double target = kCubicC * (target_t - cubic_k_) * (target_t - cubic_k_) * (target_t - cubic_k_) + cubic_w_max_;
      target = std::clamp(target, w, 1.5 * w);
      cubic_w_est_ += kCubicAlpha / w;  // the Reno-friendly estimate, per MSS acked
      const double next = std::max(target, cubic_w_est_);
      reno_cwnd_ += std::max(0.0, next - w) / w * mss;
    }
    reno_send();
  }
  void reno_loss(uint32_t bytes) {
    reno_inflight_ -= bytes;
    if (now_ >= reno_recovery_until_) {
      if (cubic_) {
        const double w = reno_cwnd_ / path_.datagram;
        // Fast convergence: a flow whose window keeps falling lets go of more.
        cubic_w_max_ = w < cubic_w_max_ ? w * (1 + kCubicBeta) / 2 : w;
        reno_ssthresh_ = std::max(2.0 * path_.datagram, reno_cwnd_ * kCubicBeta);
        cubic_k_ = std::cbrt(cubic_w_max_ * (1 - kCubicBeta) / kCubicC);
        cubic_epoch_us_ = now_;
        cubic_w_est_ = reno_ssthresh_ / path_.datagram;
      } else {
        reno_ssthresh_ = std::max(2.0 * path_.datagram, reno_cwnd_ / 2);
      }
      reno_cwnd_ = reno_ssthresh_;
      const double backlog_us = std::max(0.0, link_free_at_ - static_cast<double>(now_));
      reno_recovery_until_ = now_ + path_.base_rtt_us + static_cast<uint64_t>(backlog_us);
    }
    reno_send();
  }

  PathConfig path_;
  std::unique_ptr<CongestionController> cc_;
  udp::SentPacketTracker tracker_;
  udp::ReceivedPackets rx_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> loss_{0.0, 1.0};
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  uint64_t seq_ = 0;
  uint64_t now_ = 0;
  double link_free_at_ = 0;
  // Sender.
  double next_send_ = 0;
  uint64_t next_pn_ = 0;
  bool wake_pending_ = false;
  uint64_t timer_at_ = 0;
  // Receiver.
  bool ack_timer_armed_ = false;
  uint64_t ack_timer_gen_ = 0;
  // TCP competitor (Reno or Cubic).
  static constexpr double kCubicC = 0.4;
  static constexpr double kCubicBeta = 0.7;
  static constexpr double kCubicAlpha = 3 * (1 - kCubicBeta) / (1 + kCubicBeta);
  bool reno_on_ = false;
  bool cubic_ = false;
  double cubic_w_max_ = 0, cubic_k_ = 0, cubic_w_est_ = 0;
  uint64_t cubic_epoch_us_ = 0;
  double reno_cwnd_ = 0, reno_ssthresh_ = 0;
  uint64_t reno_inflight_ = 0;
  uint64_t reno_recovery_until_ = 0;
  // Window counters.
  uint64_t win_start_ = 0;
  uint64_t win_link_bytes_[2] = {0, 0};
  uint64_t win_delivered_[2] = {0, 0};
  std::vector<uint64_t> win_queue_delay_us_;
};

}  // namespace ferry::cc::sim
