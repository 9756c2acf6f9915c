#include "transport/udp/ack_ranges.h"

#include <algorithm>

namespace ferry::udp {

bool ReceivedPackets::record(uint64_t pn, uint64_t now_us) {
  if (pn < floor_) return false;
  // Fast path: in order or a new gap above everything received so far.
  if (ranges_.empty() || pn > ranges_.back().last) {
    if (!ranges_.empty() && pn == ranges_.back().last + 1) {
      ranges_.back().last = pn;
    } else {
      ranges_.push_back({pn, pn});
    }
    largest_time_us_ = now_us;
  } else {
    // First range whose last >= pn.
    auto it = std::lower_bound(ranges_.begin(), ranges_.end(), pn,
                               [](const AckRange& r, uint64_t v) { return r.last < v; });
    if (it->first <= pn) return false;  // inside an existing range
    // pn lies in the gap just below *it.
    const bool joins_next = (pn + 1 == it->first);
    const bool joins_prev = (it != ranges_.begin() && std::prev(it)->last + 1 == pn);
    if (joins_prev && joins_next) {
      std::prev(it)->last = it->last;
      ranges_.erase(it);
    } else if (joins_next) {
      it->first = pn;
    } else if (joins_prev) {
      std::prev(it)->last = pn;
    } else {
      ranges_.insert(it, AckRange{pn, pn});
    }
  }
  if (ranges_.size() > kMaxKeptRanges) {
    // Drop the oldest range; everything below the next one is now "already handled".
    ranges_.erase(ranges_.begin());
    floor_ = ranges_.front().first;
  }
  return true;
}

std::vector<AckRange> ReceivedPackets::ranges(size_t max_ranges) const {
  std::vector<AckRange> out;
  out.reserve(std::min(max_ranges, ranges_.size()));
  for (auto it = ranges_.rbegin(); it != ranges_.rend() && out.size() < max_ranges; ++it) {
    out.push_back(*it);
  }
  return out;
}

uint64_t ReceivedPackets::largest() const { return ranges_.empty() ? 0 : ranges_.back().last; }

uint64_t ReceivedPackets::largest_time_us() const { return largest_time_us_; }

void ReceivedPackets::forget_below(uint64_t pn) {
  if (pn <= floor_) return;
  floor_ = pn;
  auto it = ranges_.begin();
  while (it != ranges_.end() && it->last < pn) ++it;
  ranges_.erase(ranges_.begin(), it);
  if (!ranges_.empty() && ranges_.front().first < pn) ranges_.front().first = pn;
}

}  // namespace ferry::udp
