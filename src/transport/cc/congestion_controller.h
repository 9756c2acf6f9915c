// Congestion control for the UDP transport: the event structs the transport feeds in and the
// interface every algorithm implements. Pure logic: no sockets, no clocks. Time is passed in as
// microseconds on the caller's monotonic clock, so tests drive a controller with synthetic
// events (see tests/cc/).
//
// Call order per ACK (SentPacketTracker does this): on_loss() for packets the ACK made lost,
// then on_ack() for the newly acked bytes. on_sent() for every datagram that counts in flight.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "ferry/status.h"

namespace ferry::cc {

// Aspera-style transfer policies (see model_rate_controller.h for what each one does).
enum class Policy : uint8_t { kFixed = 0, kHigh = 1, kFair = 2, kLow = 3 };

struct RateConfig {
  uint64_t target_rate = 0;   // bytes/s; upper bound for every policy (0 = unlimited); fixed sends at it
  uint64_t min_rate = 0;      // bytes/s; never pace below (except policy low may go to min_rate only)
  uint64_t initial_rate = 0;  // bytes/s; 0 = max(min_rate, 1.25 MB/s)
  Policy policy = Policy::kFair;
  uint32_t max_datagram = 1472;  // bytes of UDP payload per datagram
  // The longest the receiver holds back an ACK. The window must cover it on top of the
  // BDP, or a path whose RTT is far below it (a LAN, loopback) is held to a few datagrams
  // per ACK interval (BBR's ack-aggregation allowance, fixed here because we know it).
  uint64_t max_ack_delay_us = 0;
};

struct SentEvent {
  uint64_t time_us;
  uint64_t packet_number;
  uint32_t bytes;
  uint64_t bytes_in_flight;  // including this packet
  bool app_limited;          // the sender had nothing more to send (rate samples understate the path)
};

struct RateSample {           // delivery-rate sample for one newly acked packet (the latest one)
  uint64_t delivered_bytes;   // bytes delivered between the sample packet's send and its ack
  uint64_t interval_us;       // max(send interval, ack interval) as in the delivery-rate draft
  bool app_limited;
};

struct AckEvent {
  uint64_t time_us;
  uint64_t acked_bytes;      // newly acked by this ACK
  uint64_t bytes_in_flight;  // after removing acked and lost
  // latest_rtt_us is the sample of this ACK with the peer's reported ack delay removed (never
  // below min_rtt_us), so the receiver's ACK cadence does not read as queueing delay. 0 = this
  // ACK gave no RTT sample (its largest acked was not newly acked).
  uint64_t latest_rtt_us, min_rtt_us, smoothed_rtt_us;
  RateSample sample;
  uint64_t largest_acked;  // packet number
};

struct LossEvent {
  uint64_t time_us;
  uint64_t lost_bytes;
  uint64_t largest_lost;
  uint64_t bytes_in_flight;
  bool persistent_congestion;  // RFC 9002 §7.6: everything over ~3 PTOs was lost
};

class CongestionController {
 public:
  virtual ~CongestionController() = default;
  virtual void on_sent(const SentEvent&) = 0;
  virtual void on_ack(const AckEvent&) = 0;
  virtual void on_loss(const LossEvent&) = 0;
  virtual uint64_t pacing_rate() const = 0;         // bytes/s
  virtual uint64_t congestion_window() const = 0;   // bytes allowed in flight
  virtual uint64_t bandwidth_estimate() const = 0;  // bytes/s (for reports)
  virtual const char* state_name() const = 0;       // "startup", "drain", "probe_bw", ... (for logs)
  // A cap from outside the model (the receiver's RATE_LIMIT): the rate stays at or below
  // min(cfg.target_rate, cap) from now on; 0 lifts it (back to cfg.target_rate).
  virtual void set_rate_cap(uint64_t bytes_per_second) = 0;
};

// The controller for cfg.policy (today: ModelRateController for every policy).
std::unique_ptr<CongestionController> make_controller(const RateConfig& cfg);

// "fixed" | "high" | "fair" | "low"; anything else is Error::kUsage naming the bad value.
Result<Policy> parse_policy(std::string_view text);
const char* to_string(Policy p);

}  // namespace ferry::cc
