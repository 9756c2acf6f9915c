#include "transport/cc/model_rate_controller.h"

#include <algorithm>
#include <cmath>

namespace ferry::cc {

namespace {
constexpr double kStartupGain = 2.885;  // 2/ln 2: doubles the delivery rate each round
constexpr double kDownGain = 0.75;
constexpr double kQueueFillGain = 1.03;
constexpr double kStartupCwndGain = 2.0;
constexpr double kFairUpGain = 1.25;
constexpr double kHighUpGain = 1.5;
constexpr double kCwndGain = 2.0;
constexpr double kHighCwndGain = 2.5;
constexpr uint64_t kDefaultInitialRate = 1'250'000;  // 10 Mbit/s
constexpr uint64_t kHeavyLossMinPackets = 20;
constexpr double kHeavyLossFraction = 0.15;
constexpr int kCruiseRounds = 6;
constexpr int kExcessCruiseRounds = 2;
// Competing (see the header): after this many rounds in a row with excess delay, probe gently.
constexpr int kCompeteAfterRounds = 8;
constexpr double kCompeteGain = 1.05;
constexpr double kHighCompeteGain = 1.15;
constexpr int kCompeteCruiseRounds = 2;
constexpr uint64_t kFixedMinWindowUs = 100'000;

uint64_t scale(uint64_t v, double g) { return static_cast<uint64_t>(static_cast<double>(v) * g); }
}  // namespace

ModelRateController::ModelRateController(const RateConfig& cfg)
    : cfg_(cfg),
      configured_target_(cfg.target_rate),
      initial_rate_(cfg.initial_rate != 0 ? cfg.initial_rate : std::max(cfg.min_rate, kDefaultInitialRate)),
      state_(cfg.policy == Policy::kFixed ? State::kFixed : State::kStartup) {
  if (cfg_.max_datagram == 0) cfg_.max_datagram = 1472;
  if (cfg_.target_rate != 0) initial_rate_ = std::min(initial_rate_, cfg_.target_rate);
  low_rate_ = static_cast<double>(initial_rate_);
  update_outputs(0);
}

void ModelRateController::set_rate_cap(uint64_t bytes_per_second) {
  uint64_t cap = configured_target_;
  if (bytes_per_second != 0 && (cap == 0 || bytes_per_second < cap)) cap = bytes_per_second;
  cfg_.target_rate = cap;
  // Startup's ramp and policy low's own rate must not restart above the new cap either.
  if (cap != 0) low_rate_ = std::min(low_rate_, static_cast<double>(cap));
  update_outputs(0);
}

const char* ModelRateController::state_name() const {
  switch (state_) {
    case State::kStartup: return "startup";
    case State::kDrain: return "drain";
    case State::kProbeBw: return "probe_bw";
    case State::kProbeRtt: return "probe_rtt";
    case State::kFixed: return "fixed";
  }
  return "unknown";
}

void ModelRateController::on_sent(const SentEvent& ev) {
  last_sent_pn_ = ev.packet_number;
  if (!sent_any_) {
    sent_any_ = true;
    next_round_pn_ = ev.packet_number + 1;
  }
  ++round_packets_;
}

uint64_t ModelRateController::delay_threshold_us() const {
  switch (cfg_.policy) {
    case Policy::kHigh: return std::max<uint64_t>(10'000, min_rtt_us_ / 4);
    case Policy::kLow: return kLowTargetDelayUs;
    default: return std::max<uint64_t>(5'000, min_rtt_us_ / 8);
  }
}

uint64_t ModelRateController::floor_rate() const {
  uint64_t f = cfg_.min_rate;
  if (min_rtt_us_ != 0) f = std::max<uint64_t>(f, uint64_t{4} * cfg_.max_datagram * 1'000'000 / min_rtt_us_);
  if (cfg_.target_rate != 0) f = std::min(f, cfg_.target_rate);
  return f;
}

uint64_t ModelRateController::bdp(double gain) const {
  return scale(bw_, gain) * min_rtt_us_ / 1'000'000;
}

void ModelRateController::update_min_rtt(uint64_t now_us, uint64_t rtt_us) {
  if (rtt_us == 0) return;
  if (min_rtt_us_ == 0 || rtt_us <= min_rtt_us_) {
    min_rtt_us_ = rtt_us;
    min_rtt_stamp_us_ = now_us;
    higher_min_rtt_probes_ = 0;
  } else if (rtt_us <= min_rtt_us_ + queue_target_us()) {
    // Within the standing queue we hold on purpose: the base RTT is confirmed, no probe_rtt
    // needed (each one would halve the rate for a round trip every 10 s).
    min_rtt_stamp_us_ = now_us;
    higher_min_rtt_probes_ = 0;
  }
  if (round_min_rtt_us_ == 0 || rtt_us < round_min_rtt_us_) round_min_rtt_us_ = rtt_us;
  if (state_ == State::kProbeRtt && (probe_rtt_min_us_ == 0 || rtt_us < probe_rtt_min_us_)) {
    probe_rtt_min_us_ = rtt_us;
  }
}

void ModelRateController::take_rate_sample(const RateSample& s) {
  if (s.interval_us == 0 || s.delivered_bytes == 0) return;
  // Intervals shorter than the base RTT come from ACK compression and overstate the rate.
  if (min_rtt_us_ != 0 && s.interval_us < min_rtt_us_) return;
  const uint64_t rate = s.delivered_bytes * 1'000'000 / s.interval_us;
  round_max_sample_ = std::max(round_max_sample_, rate);
  // An app-limited sample only tells us the path can do at least this much.
  if (s.app_limited && rate <= bw_) return;
  uint64_t& slot = bw_slots_[round_count_ % kBwWindowRounds];
  slot = std::max(slot, rate);
  bw_ = std::max(bw_, rate);
}

void ModelRateController::recompute_bw() {
  const bool shrink = excess_delay_ && !competing() && cfg_.policy != Policy::kHigh && state_ != State::kStartup;
  const int window = shrink ? kShortBwWindowRounds : kBwWindowRounds;
  uint64_t m = 0;
  for (int i = 0; i < window && static_cast<uint64_t>(i) <= round_count_; ++i) {
    m = std::max(m, bw_slots_[(round_count_ - i) % kBwWindowRounds]);
  }
  bw_ = m;
}

void ModelRateController::advance_cycle() {
  ++cycle_phase_;
  if (cycle_phase_ >= 2 + cruise_rounds_) {
    cycle_phase_ = 0;
    // Fast regrowth: if the last cycle found >= 10 % more bandwidth, probe again soon.
    const bool grew = bw_ > bw_at_cycle_start_ + bw_at_cycle_start_ / 10;
    cruise_rounds_ = excess_delay_ ? (competing() ? kCompeteCruiseRounds : kExcessCruiseRounds) : (grew ? 1 : kCruiseRounds);
    bw_at_cycle_start_ = bw_;
  }
}

void ModelRateController::on_round_end(uint64_t now_us) {
  // Queueing delay of the finished round.
  if (round_min_rtt_us_ != 0 && min_rtt_us_ != 0) {
    last_queue_delay_us_ = round_min_rtt_us_ - std::min(round_min_rtt_us_, min_rtt_us_);
    excess_delay_ = last_queue_delay_us_ > delay_threshold_us();
    excess_rounds_ = excess_delay_ ? excess_rounds_ + 1 : 0;
  }
  // Heavy loss: the path really is narrower than the model says.
  const uint64_t round_bytes = round_lost_bytes_ + round_acked_bytes_;
  const bool heavy_loss = round_packets_ >= kHeavyLossMinPackets && round_bytes > 0 &&
                          static_cast<double>(round_lost_bytes_) > kHeavyLossFraction * static_cast<double>(round_bytes);
  if (heavy_loss && round_max_sample_ != 0) {
    for (uint64_t& s : bw_slots_) s = std::min(s, round_max_sample_);
  }

  if (cfg_.policy == Policy::kLow && state_ != State::kStartup && min_rtt_us_ != 0) {
    const double target = static_cast<double>(kLowTargetDelayUs);
    const double qd = static_cast<double>(last_queue_delay_us_);
    if (qd > target) {
      low_rate_ *= std::max(0.5, 1.0 - 0.25 * (qd / target - 1.0));
    } else {
      low_rate_ *= 1.0 + 0.25 * (1.0 - qd / target);
    }
    // Never run ahead of what the model could probe to.
    low_rate_ = std::min(low_rate_, static_cast<double>(bw_) * kFairUpGain);
    low_rate_ = std::max(low_rate_, static_cast<double>(floor_rate()));
  }

  ++round_count_;
  bw_slots_[round_count_ % kBwWindowRounds] = 0;
  recompute_bw();

  switch (state_) {
    case State::kStartup:
      if (bw_ >= full_bw_ + full_bw_ / 4) {
        full_bw_ = bw_;
        full_bw_rounds_ = 0;
      } else {
        ++full_bw_rounds_;
      }
      if (full_bw_rounds_ >= 3 || heavy_loss || (excess_delay_ && round_count_ >= 3)) {
        state_ = State::kDrain;
        if (cfg_.policy == Policy::kLow) low_rate_ = static_cast<double>(bw_);
      }
      break;
    case State::kProbeBw: advance_cycle(); break;
    default: break;
  }
  if (state_ != State::kProbeRtt && state_ != State::kFixed && min_rtt_us_ != 0 &&
      now_us > min_rtt_stamp_us_ + kMinRttWindowUs) {
    probe_rtt_return_ = state_ == State::kStartup ? State::kStartup : State::kProbeBw;
    state_ = State::kProbeRtt;
    probe_rtt_end_us_ = now_us + std::max(kProbeRttDurationUs, min_rtt_us_);
    probe_rtt_min_us_ = 0;
  }
  round_min_rtt_us_ = 0;
  round_max_sample_ = 0;
  round_lost_bytes_ = round_acked_bytes_ = round_packets_ = 0;
}

void ModelRateController::on_ack(const AckEvent& ev) {
  srtt_us_ = ev.smoothed_rtt_us;
  update_min_rtt(ev.time_us, ev.latest_rtt_us);
  latest_queue_us_ = ev.latest_rtt_us > min_rtt_us_ ? ev.latest_rtt_us - min_rtt_us_ : 0;
  round_acked_bytes_ += ev.acked_bytes;
  take_rate_sample(ev.sample);
  if (sent_any_ && ev.largest_acked >= next_round_pn_) {
    next_round_pn_ = last_sent_pn_ + 1;
    on_round_end(ev.time_us);
  }
  if (state_ == State::kDrain && ev.bytes_in_flight <= bdp(1.0)) {
    state_ = State::kProbeBw;
    cycle_phase_ = 1;  // start with a down phase: the startup queue may not be fully gone
    cruise_rounds_ = kCruiseRounds;
    bw_at_cycle_start_ = bw_;
  }
  if (state_ == State::kProbeRtt && ev.time_us >= probe_rtt_end_us_) {
    if (probe_rtt_min_us_ != 0 && probe_rtt_min_us_ > min_rtt_us_) {
      // Two probes in a row saw a higher minimum: the route changed; accept it.
      if (++higher_min_rtt_probes_ >= 2) {
        min_rtt_us_ = probe_rtt_min_us_;
        higher_min_rtt_probes_ = 0;
      }
    }
    min_rtt_stamp_us_ = ev.time_us;
    state_ = probe_rtt_return_;
    cycle_phase_ = 0;
  }
  update_outputs(ev.bytes_in_flight);
}

void ModelRateController::on_loss(const LossEvent& ev) {
  round_lost_bytes_ += ev.lost_bytes;
  if (state_ == State::kFixed) return;
  if (ev.persistent_congestion) {
    const uint64_t restart = std::max(floor_rate(), round_max_sample_ / 2);
    bw_slots_.fill(0);
    bw_slots_[round_count_ % kBwWindowRounds] = restart;
    bw_ = restart;
    full_bw_ = 0;
    full_bw_rounds_ = 0;
    state_ = State::kStartup;
    low_rate_ = static_cast<double>(restart);
    // The collapse is accounted for by the restart; its losses must not also count as a
    // heavy-loss round that would end the new startup at once. Start a fresh round.
    round_lost_bytes_ = round_acked_bytes_ = round_packets_ = 0;
    next_round_pn_ = last_sent_pn_ + 1;
  }
  update_outputs(ev.bytes_in_flight);
}

// Cruising, hold a small standing queue (queue_target_us) at the bottleneck instead of none:
// the bandwidth estimate is only an estimate, and pacing at exactly it leaves the link idle
// whenever it runs a little low (measured on linkemu: ~6 % of the link). A queue of a few ms
// keeps the bottleneck busy through that noise; FASP holds a target queueing delay the same
// way. Above the target it paces at the estimate: a queue that keeps growing is handled by
// the down phase (which drains to the target each cycle) and the delay guard. Easing off
// further would make fair and high yield to any flow that keeps a queue.
// Low holds a smaller one (kLowQueueTargetUs, well under its 5 ms yield threshold, so its own
// queue never reads as a competitor's): alone it paced at exactly the estimate and left ~10 %
// of a 200 Mbit/s linkemu link idle.
double ModelRateController::cruise_gain() const {
  if (excess_delay_) return 1.0;
  const uint64_t target = cfg_.policy == Policy::kLow ? kLowQueueTargetUs : queue_target_us();
  return latest_queue_us_ < target ? kQueueFillGain : 1.0;
}

bool ModelRateController::competing() const {
  return cfg_.policy != Policy::kLow && state_ == State::kProbeBw && excess_rounds_ >= kCompeteAfterRounds;
}

double ModelRateController::pacing_gain() const {
  switch (state_) {
    case State::kStartup: return kStartupGain;
    case State::kDrain: return 1.0 / kStartupGain;
    case State::kProbeRtt: return 1.0;
    case State::kFixed: return 1.0;
    case State::kProbeBw: break;
  }
  if (cycle_phase_ == 0) {
    if (excess_delay_ && !competing()) return 1.0;  // someone else's queue: hold, do not add to it
    if (excess_delay_ && competing()) return cfg_.policy == Policy::kHigh ? kHighCompeteGain : kCompeteGain;
    return cfg_.policy == Policy::kHigh ? kHighUpGain : kFairUpGain;
  }
  // The down phase drains the queue the up-probe made — only while there is one. Draining an
  // empty queue would idle the bottleneck for a quarter of a round every cycle (BBRv1's tax).
  if (cycle_phase_ == 1 && latest_queue_us_ > queue_target_us()) return kDownGain;
  return cruise_gain();
}

void ModelRateController::update_outputs(uint64_t /*bytes_in_flight*/) {
  const uint64_t mtu = cfg_.max_datagram;
  if (state_ == State::kFixed) {
    pacing_rate_ = cfg_.target_rate != 0 ? cfg_.target_rate : initial_rate_;
    const uint64_t window_us = std::max(srtt_us_, kFixedMinWindowUs);
    cwnd_ = std::max<uint64_t>(2 * pacing_rate_ * window_us / 1'000'000, 64 * mtu);
    return;
  }
  double rate = static_cast<double>(bw_) * pacing_gain();
  if (state_ == State::kStartup) rate = std::max(rate, static_cast<double>(initial_rate_));
  if (cfg_.policy == Policy::kLow && state_ != State::kStartup) rate = std::min(rate, low_rate_);
  uint64_t r = static_cast<uint64_t>(rate);
  r = std::max(r, floor_rate());
  if (cfg_.target_rate != 0) r = std::min(r, cfg_.target_rate);
  pacing_rate_ = std::max<uint64_t>(r, 1);

  if (min_rtt_us_ == 0 || bw_ == 0) {
    // No model yet: allow the initial rate for a long default RTT.
    cwnd_ = std::max<uint64_t>(32 * mtu, 2 * initial_rate_ / 5);
    return;
  }
  // Startup's window is 2 x BDP, not its pacing gain: in flight beyond BDP + a one-BDP buffer
  // overflows the bottleneck in the round that finds its rate.
  const double cwnd_gain = state_ == State::kStartup ? kStartupCwndGain
                           : cfg_.policy == Policy::kHigh ? kHighCwndGain
                                                           : kCwndGain;
  uint64_t w = bdp(cwnd_gain) + scale(bw_, cwnd_gain) * cfg_.max_ack_delay_us / 1'000'000 + 3 * mtu;
  if (state_ == State::kProbeRtt) w = std::max<uint64_t>(bdp(0.5), 4 * mtu);
  cwnd_ = std::max<uint64_t>(w, 4 * mtu);
}

}  // namespace ferry::cc
