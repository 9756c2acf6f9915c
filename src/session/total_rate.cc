#include "session/total_rate.h"

#include <algorithm>

namespace ferry {

TotalRate::Clock::time_point TotalRate::claim(uint64_t bytes, Clock::time_point now) {
  const Clock::time_point start = std::max(next_, now);
  const auto cost = std::chrono::nanoseconds(
      static_cast<int64_t>(static_cast<double>(bytes) * 1e9 / static_cast<double>(std::max<uint64_t>(rate_, 1))));
  next_ = start + std::chrono::duration_cast<Clock::duration>(cost);
  return start;
}

uint64_t TotalRate::share_of(uint64_t total, size_t active) {
  return std::max<uint64_t>(total / std::max<size_t>(active, 1), 1);
}

}  // namespace ferry
