#include "core/memory_budget.h"

#include <malloc.h>

#include <algorithm>
#include <vector>

namespace ferry {

void tune_allocator_for_chunks() {
  // Up to 64 MiB chunks plus headroom stay on the heap; trimming waits for 256 MiB free.
  mallopt(M_MMAP_THRESHOLD, 80 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

bool MemoryBudget::try_acquire(uint64_t n, uint64_t keep_free) {
  std::lock_guard lock(mu_);
  if (!waiters_.empty() || !fits_locked(n, keep_free)) return false;
  used_ += n;
  peak_ = std::max(peak_, used_);
  return true;
}

void MemoryBudget::acquire_over_limit(uint64_t n) {
  std::lock_guard lock(mu_);
  used_ += n;
  peak_ = std::max(peak_, used_);
}

void MemoryBudget::acquire(uint64_t n, std::function<void()> granted) {
  {
    std::lock_guard lock(mu_);
    if (!waiters_.empty() || !fits_locked(n)) {
      waiters_.emplace_back(n, std::move(granted));
      return;
    }
    used_ += n;
    peak_ = std::max(peak_, used_);
  }
  granted();
}

void MemoryBudget::release(uint64_t n) {
  std::vector<std::function<void()>> ready;
  {
    std::lock_guard lock(mu_);
    used_ -= std::min(used_, n);
    while (!waiters_.empty() && fits_locked(waiters_.front().first)) {
      used_ += waiters_.front().first;
      peak_ = std::max(peak_, used_);
      ready.push_back(std::move(waiters_.front().second));
      waiters_.pop_front();
    }
  }
  for (auto& f : ready) f();
}

uint64_t MemoryBudget::in_use() const {
  std::lock_guard lock(mu_);
  return used_;
}

uint64_t MemoryBudget::peak() const {
  std::lock_guard lock(mu_);
  return peak_;
}

}  // namespace ferry
