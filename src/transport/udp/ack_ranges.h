// Receiver-side record of which packet numbers arrived, turned into ACK ranges.
//
// Invariants: ranges_ is sorted ascending, non-overlapping and non-adjacent (touching ranges
// are merged); every range lies at or above floor_; at most kMaxKeptRanges ranges are kept.
// A packet number below floor_ is reported as a duplicate: either it was received, or the
// sender gave up on it long ago (dropped-old ranges, forget_below) and already resent its
// content under a new packet number, so discarding it loses nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ferry::udp {

struct AckRange {
  uint64_t first, last;  // inclusive, first <= last
  bool operator==(const AckRange&) const = default;
};

class ReceivedPackets {
 public:
  static constexpr size_t kMaxKeptRanges = 256;

  // Records pn as received at now_us. Returns false if it is a duplicate (already received,
  // or below the forget floor).
  bool record(uint64_t pn, uint64_t now_us);
  // Up to max_ranges ranges, descending from the largest; ack_delay = now - largest_time_us().
  std::vector<AckRange> ranges(size_t max_ranges) const;
  bool empty() const { return ranges_.empty(); }
  uint64_t largest() const;          // 0 if nothing recorded
  uint64_t largest_time_us() const;  // receive time of largest()
  uint64_t floor() const { return floor_; }
  size_t range_count() const { return ranges_.size(); }
  // Bound memory: ranges below pn are dropped (a range straddling pn is cut to start at pn),
  // and pns below pn count as duplicates from now on.
  void forget_below(uint64_t pn);

 private:
  std::vector<AckRange> ranges_;  // ascending
  uint64_t floor_ = 0;
  uint64_t largest_time_us_ = 0;
};

}  // namespace ferry::udp
