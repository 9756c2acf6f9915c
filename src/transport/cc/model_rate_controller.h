// ModelRateController: the rate controller behind every ferry UDP policy.
//
// Why model-based. A file transfer over a long fat WAN path (200 Mbit/s, 100-300 ms RTT, 1-5 %
// random loss) cannot use loss as its congestion signal: at 1 % random loss a loss-based
// controller (Reno, Cubic) is held to a small fraction of the link. Like BBR, this controller
// keeps a *model* of the path - the bottleneck bandwidth (a windowed max of delivery-rate
// samples) and the base RTT (a windowed min of RTT samples) - and paces at gain x bandwidth,
// with cwnd = cwnd_gain x BDP only as a safety cap. Random loss does not change the model.
// Congestion shows up as queueing delay: RTT above the base RTT. That is the signal we act on.
//
// States (state_name()):
//  - startup: pace at 2.885 x bw (or the initial rate before the first sample) so the estimate
//    roughly doubles each round. Leave when bw stopped growing by 25 % for 3 rounds, or when a
//    whole round's minimum RTT exceeds base RTT by the delay threshold (our own queue formed).
//  - drain: pace at 1/2.885 x bw until bytes in flight <= BDP, removing the startup queue.
//  - probe_bw: a cycle of rounds [up, down, cruise x N]. up probes for more bandwidth (gain 1.25,
//    1.5 for high), down (0.75) removes the queue the probe made — only down to the queue
//    target, so the bottleneck is never left idle — and cruise holds a small standing queue
//    (base/32 within [2 ms, 5 ms]): gain 1.03 below it, 1.0 above; pacing at exactly the estimate
//    left the link idle whenever the estimate ran low. N is 6,
//    or 1 while the last cycle found >= 10 % more bandwidth (fast regrowth after a yield).
//  - probe_rtt: if no RTT sample came within the queue target of the base RTT for 10 s, cap cwnd at BDP/2 for
//    max(200 ms, base RTT) to drain our queue and re-measure. A higher minimum is accepted as
//    the new base RTT only after two such probes agree (route change), so a competing flow's
//    standing queue cannot silently raise our baseline.
//
// Queueing-delay guard (fair, high). At the end of each round, queue_delay = (minimum RTT seen
// in that round) - base RTT. The round minimum ignores the brief queue of our own up-probe.
// If queue_delay > threshold (fair: max(5 ms, base/8); high: max(10 ms, base/4)) the path has a
// standing queue that we are not draining: up-probes are skipped (gain 1.0), the cycle becomes
// [hold, down, cruise x 2] and, for fair, the bandwidth window shrinks from 10 to 4 rounds so a
// capacity drop (or a competitor taking its share) cuts our rate within a few rounds. The window
// always spans more than one down phase, so holding never spirals the rate down.
//
// Competing (fair, high). If the excess delay outlasts 8 rounds in a row - two of our down
// phases did not drain it, so the queue is not ours - the path is shared with a loss-based flow
// that keeps its buffer full (Cubic, Reno). Holding then only loses ground: such a flow grows
// until the buffer overflows whatever we do, and a flow that never probes ends with what it had
// when the other arrived (measured on linkemu against iperf3 cubic: 29 % of the link). So while
// competing, the up phase probes again, gently (gain 1.05; high 1.15), every 4 rounds, with
// the full 10-round bandwidth window. The other flow's losses at the full buffer push it back,
// ours (ignored, as all loss) do not, and the two settle near an even split: on the simulator
// against Cubic at 200 Mbit/s, 100 ms, one-BDP buffer, 0.48 whichever flow starts first.
// Competing ends with the first round whose queue delay is back under the threshold; low never
// competes.
//
// Policies:
//  - fixed: pace at target_rate always; cwnd >= 2 x target x max(srtt, 100 ms). Nothing else
//    matters (the model is still tracked for reports).
//  - fair: the above. Shares a bottleneck with a loss-based TCP flow through the competing
//    rule (simulated with a one-BDP buffer: 45-64 % against Reno and Cubic at 40-100 ms).
//  - high: up gain 1.5, cwnd gain 2.5, a doubled delay threshold and no window shrink - it takes
//    roughly twice what fair would.
//  - low (scavenger, LEDBAT-like): fair's model (cruising with a 1.5 ms standing queue), further
//    capped by low_rate. Each round,
//    low_rate x= max(0.5, 1 - 0.25 x (queue_delay/5 ms - 1)) when queue_delay > 5 ms, and grows
//    by up to 25 % (in proportion to how far below 5 ms the delay is) otherwise. It yields
//    within a few rounds to any flow that builds a queue and comes back when the queue is gone.
//
// Loss rule. Loss never changes the rate unless it is heavy or correlated:
//  - a round (>= 20 packets) that lost more than 15 % of its bytes caps every bandwidth-filter
//    slot at that round's measured delivery rate (the path really is narrower), and ends startup;
//  - persistent congestion (RFC 9002 §7.6; the path went dark for ~3 PTOs) resets the model to
//    half the last delivery rate and restarts from startup.
// Consequence: sustained *random* loss above 15 % shrinks the rate round after round (each
// round's delivery rate is (1 - loss) of what was sent). That is deliberate - such a path is
// broken, not merely lossy - and the rate regrows by probing once loss falls back.
// Fixed ignores both.
//
// Every rate is clamped to [floor, target_rate], floor = max(min_rate, 4 datagrams per base RTT)
// so that even a yielded low flow keeps measuring the path.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>

#include "transport/cc/congestion_controller.h"

namespace ferry::cc {

class ModelRateController final : public CongestionController {
 public:
  enum class State : uint8_t { kStartup, kDrain, kProbeBw, kProbeRtt, kFixed };

  explicit ModelRateController(const RateConfig& cfg);

  void on_sent(const SentEvent& ev) override;
  void on_ack(const AckEvent& ev) override;
  void on_loss(const LossEvent& ev) override;
  uint64_t pacing_rate() const override { return pacing_rate_; }
  uint64_t congestion_window() const override { return cwnd_; }
  uint64_t bandwidth_estimate() const override { return bw_; }
  const char* state_name() const override;
  void set_rate_cap(uint64_t bytes_per_second) override;

  State state() const { return state_; }
  uint64_t min_rtt_us() const { return min_rtt_us_; }
  uint64_t queue_delay_us() const { return last_queue_delay_us_; }  // of the last full round
  uint64_t rounds() const { return round_count_; }

  static constexpr int kBwWindowRounds = 10;
  static constexpr int kShortBwWindowRounds = 4;
  static constexpr uint64_t kMinRttWindowUs = 10'000'000;
  static constexpr uint64_t kProbeRttDurationUs = 200'000;
  static constexpr uint64_t kLowTargetDelayUs = 5'000;
  static constexpr uint64_t kLowQueueTargetUs = 1'500;  // low's standing queue while cruising
  // The standing queue fair and high hold at the bottleneck while cruising (and the level the
  // down phase drains to): 1/32 of the base RTT, at least 2 ms and at most 5 ms.
  uint64_t queue_target_us() const { return std::clamp<uint64_t>(min_rtt_us_ / 32, 2'000, 5'000); }
  double cruise_gain() const;
  uint64_t latest_queue_us_ = 0;  // latest RTT sample minus base RTT

 private:
  void on_round_end(uint64_t now_us);
  void update_min_rtt(uint64_t now_us, uint64_t rtt_us);
  void take_rate_sample(const RateSample& s);
  void recompute_bw();
  void advance_cycle();
  uint64_t delay_threshold_us() const;
  uint64_t floor_rate() const;
  uint64_t bdp(double gain) const;
  void update_outputs(uint64_t bytes_in_flight);
  double pacing_gain() const;
  bool competing() const;  // see "Competing" above

  RateConfig cfg_;  // cfg_.target_rate is the effective cap: min(configured, set_rate_cap)
  uint64_t configured_target_;
  uint64_t initial_rate_;
  State state_;
  // Bandwidth model: per-round maxima of delivery-rate samples in a ring.
  std::array<uint64_t, kBwWindowRounds> bw_slots_{};
  uint64_t bw_ = 0;
  uint64_t round_count_ = 0;
  uint64_t next_round_pn_ = 0;
  uint64_t last_sent_pn_ = 0;
  bool sent_any_ = false;
  uint64_t round_max_sample_ = 0;
  // RTT model.
  uint64_t min_rtt_us_ = 0;  // 0 = no sample yet
  uint64_t min_rtt_stamp_us_ = 0;
  uint64_t round_min_rtt_us_ = 0;  // 0 = none this round
  uint64_t last_queue_delay_us_ = 0;
  bool excess_delay_ = false;  // last round's queue delay was above the threshold
  int excess_rounds_ = 0;      // consecutive rounds with excess_delay_
  uint64_t srtt_us_ = 0;
  // Startup.
  uint64_t full_bw_ = 0;
  int full_bw_rounds_ = 0;
  // Probe-bw cycle.
  int cycle_phase_ = 0;  // 0 = up, 1 = down, >= 2 cruise
  int cruise_rounds_ = 6;
  uint64_t bw_at_cycle_start_ = 0;
  // Probe-rtt.
  uint64_t probe_rtt_end_us_ = 0;
  uint64_t probe_rtt_min_us_ = 0;
  int higher_min_rtt_probes_ = 0;
  State probe_rtt_return_ = State::kProbeBw;  // startup if probe_rtt interrupted it
  // Loss accounting per round.
  uint64_t round_lost_bytes_ = 0;
  uint64_t round_acked_bytes_ = 0;
  uint64_t round_packets_ = 0;
  // Policy low.
  double low_rate_ = 0;
  // Outputs.
  uint64_t pacing_rate_ = 0;
  uint64_t cwnd_ = 0;
};

}  // namespace ferry::cc
