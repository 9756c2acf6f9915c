// One byte budget bounds every chunk buffer in flight (--memory). Buffers are plain heap
// blocks; the budget, not a pool, is what bounds them.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace ferry {

using Buffer = std::unique_ptr<uint8_t[]>;
// Uninitialised heap block (no zeroing: it is overwritten by a read at once).
inline Buffer make_buffer(size_t n) { return Buffer(new uint8_t[n]); }

// Keep freed chunk-sized blocks in the heap instead of returning them to the kernel after
// each chunk (glibc mmaps blocks above 128 KiB by default, which costs page faults per chunk).
void tune_allocator_for_chunks();

class MemoryBudget {
 public:
  explicit MemoryBudget(uint64_t limit) : limit_(limit) {}

  // Takes n bytes if they fit, or if nothing is in use (so a single buffer larger than the
  // whole budget can still make progress instead of deadlocking).
  // With keep_free > 0, takes n only if keep_free bytes stay free afterwards (used_ == 0
  // still takes it): a caller leaves room for requests that must not wait.
  bool try_acquire(uint64_t n, uint64_t keep_free = 0);
  // Takes n bytes at once, even beyond the limit: only for a request whose waiting would
  // deadlock (the bytes the holders of the budget wait for). Counted in in_use() and peak().
  void acquire_over_limit(uint64_t n);
  // Takes n bytes now or as soon as releases make room (FIFO). `granted` runs on the thread
  // that calls release() (or here, if it fits now): callers post it to their own executor.
  void acquire(uint64_t n, std::function<void()> granted);
  void release(uint64_t n);

  uint64_t limit() const { return limit_; }
  uint64_t in_use() const;
  uint64_t peak() const;

 private:
  bool fits_locked(uint64_t n, uint64_t keep_free = 0) const {
    return used_ == 0 || (used_ <= limit_ && keep_free <= limit_ - used_ && n <= limit_ - used_ - keep_free);
  }
  const uint64_t limit_;
  mutable std::mutex mu_;
  uint64_t used_ = 0;
  uint64_t peak_ = 0;
  std::deque<std::pair<uint64_t, std::function<void()>>> waiters_;
};

}  // namespace ferry
