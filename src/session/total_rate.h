// A server-wide rate cap shared by every session of one receiver (ferryd's total_rate_cap).
//
// TCP sessions are paced on the read side: before reading a chunk's payload a session claims
// it on a virtual clock that advances by the payload's transmission time at the total rate,
// and waits until the clock says so; TCP flow control then slows the sender. Chunks arriving
// over UDP cannot be delayed that way (the sender paces itself), so they are charged to the
// same clock afterwards, and the receiver tells each UDP sender its share of the total
// (RATE_LIMIT frames) as sessions come, go and fall idle. Idle time earns no credit beyond
// the present, so a burst after a quiet minute is not let through at many times the cap.
//
// Network thread only (the receiver's io_context runs on one thread).
#pragma once

#include <chrono>
#include <cstdint>

namespace ferry {

class TotalRate {
 public:
  using Clock = std::chrono::steady_clock;

  explicit TotalRate(uint64_t bytes_per_second) : rate_(bytes_per_second), share_(bytes_per_second) {}

  uint64_t rate() const { return rate_; }
  // Each UDP session's current share (rate / active sessions), set by the receiver.
  uint64_t share() const { return share_; }
  void set_share(uint64_t bytes_per_second) { share_ = bytes_per_second; }

  // A TCP reader wants `bytes` more: returns when it may read them, and books them.
  Clock::time_point claim(uint64_t bytes, Clock::time_point now);
  // `bytes` arrived without asking (UDP): books them so TCP readers yield to them.
  void charge(uint64_t bytes, Clock::time_point now) { (void)claim(bytes, now); }

  // The share of each of `active` sessions (at least 1 byte/s).
  static uint64_t share_of(uint64_t total, size_t active);

 private:
  uint64_t rate_;
  uint64_t share_;
  Clock::time_point next_{};
};

}  // namespace ferry
