// The timing model of one direction of the emulated link, without any I/O, so the
// GoogleTest can replay it: Bernoulli loss at enqueue, a drop-tail FIFO in front of
// a fixed-rate serializer, then a fixed one-way delay (like netem's loss + rate +
// delay + limit, with loss decided before the queue, as netem does).
//
// Invariants:
//  - every packet offered to LinkModel::offer() consumes exactly one loss draw, in
//    arrival order, whatever the outcome; so the n-th packet in a direction is lost
//    iff the n-th draw of BernoulliLoss(seed_for(direction)) is below the loss rate;
//  - a lost packet never occupies the bottleneck; a packet dropped by the full queue
//    does not either;
//  - departure times are non-decreasing, so the forwarder can keep a plain FIFO.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstdint>

namespace linkemu {

// splitmix64: a tiny, fully specified generator, so a seed gives the same loss
// pattern with any compiler or standard library (std::uniform_real_distribution is
// not specified bit for bit).
class BernoulliLoss {
 public:
  BernoulliLoss(double rate, uint64_t seed) : rate_(rate), state_(seed) {}

  // One draw per packet; true = the packet is lost.
  bool next_is_lost() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    const double u = static_cast<double>(z >> 11) * 0x1.0p-53;  // uniform in [0, 1)
    return u < rate_;
  }

 private:
  double rate_;
  uint64_t state_;
};

// The two directions draw from different streams of the same --seed.
inline uint64_t seed_for(uint64_t seed, int direction /* 0 = A->B, 1 = B->A */) {
  return seed * 2 + static_cast<uint64_t>(direction) + 1;
}

struct DirectionConfig {
  double delay_s = 0;        // one-way propagation delay
  double rate_bps = 0;       // bottleneck rate in bits/s; 0 = no bottleneck
  double loss = 0;           // Bernoulli loss probability at enqueue
  uint64_t queue_bytes = 0;  // drop-tail limit of the bottleneck queue (bytes waiting)
};

enum class Verdict { kForward, kLost, kQueueFull };

struct Decision {
  Verdict verdict;
  int64_t depart_ns;      // when the packet leaves the link (kForward only)
  int64_t queue_wait_ns;  // time waiting for the serializer (kForward only)
};

class LinkModel {
 public:
  LinkModel(const DirectionConfig& cfg, uint64_t seed)
      : cfg_(cfg), loss_(cfg.loss, seed),
        delay_ns_(static_cast<int64_t>(cfg.delay_s * 1e9 + 0.5)),
        ns_per_byte_(cfg.rate_bps > 0 ? 8e9 / cfg.rate_bps : 0) {}

  // A packet of `bytes` (the IP packet) arrives at `now_ns` (monotonic clock).
  Decision offer(int64_t now_ns, uint32_t bytes) {
    if (loss_.next_is_lost()) return {Verdict::kLost, 0, 0};
    if (ns_per_byte_ == 0) return {Verdict::kForward, now_ns + delay_ns_, 0};
    // The serializer is busy until busy_until_ns_; what it still has to send is the
    // queue (the packet in service counts as well, as in a byte-limited qdisc).
    const int64_t wait_ns = std::max<int64_t>(0, busy_until_ns_ - now_ns);
    const double backlog_bytes = static_cast<double>(wait_ns) / ns_per_byte_;
    if (backlog_bytes + bytes > static_cast<double>(cfg_.queue_bytes)) {
      return {Verdict::kQueueFull, 0, 0};
    }
    // Accumulate in double so rounding does not drift over millions of packets.
    const double start = std::max(busy_until_exact_, static_cast<double>(now_ns));
    busy_until_exact_ = start + bytes * ns_per_byte_;
    busy_until_ns_ = static_cast<int64_t>(busy_until_exact_);
    return {Verdict::kForward, busy_until_ns_ + delay_ns_, wait_ns};
  }

 private:
  DirectionConfig cfg_;
  BernoulliLoss loss_;
  int64_t delay_ns_;
  double ns_per_byte_;
  double busy_until_exact_ = 0;
  int64_t busy_until_ns_ = 0;
};

// Log-linear histogram of microseconds (64 sub-buckets per power of two, so a
// reported percentile is within ~1.6% of the true value). One writer thread
// (the forwarder), any number of readers (the stats printer): counts are relaxed
// atomics the writer updates with load + store.
class LatencyHistogram {
 public:
  static constexpr int kSub = 64;
  static constexpr int kBuckets = kSub + kSub * 40;

  void record_us(uint64_t us) {
    auto& b = buckets_[index(us)];
    b.store(b.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (us > max_us_.load(std::memory_order_relaxed)) max_us_.store(us, std::memory_order_relaxed);
  }

  uint64_t max_us() const { return max_us_.load(std::memory_order_relaxed); }

  // The q-quantile (0..1) in microseconds (middle of its bucket); 0 if empty.
  double quantile_us(double q) const {
    std::array<uint64_t, kBuckets> c;
    uint64_t total = 0;
    for (int i = 0; i < kBuckets; ++i) total += c[i] = buckets_[i].load(std::memory_order_relaxed);
    if (total == 0) return 0;
    const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(q * static_cast<double>(total) + 0.5));
    uint64_t seen = 0;
    for (int i = 0; i < kBuckets; ++i) {
      seen += c[i];
      if (seen >= rank) {
        const double lo = lower_bound(i), width = lower_bound(i + 1) - lo;
        return std::min(lo + width / 2, static_cast<double>(max_us()));
      }
    }
    return static_cast<double>(max_us());
  }

 private:
  static int index(uint64_t us) {
    if (us < kSub) return static_cast<int>(us);
    const int shift = std::bit_width(us) - 7;  // us >> shift is in [64, 128)
    const int i = kSub + shift * kSub + static_cast<int>((us >> shift) - kSub);
    return std::min(i, kBuckets - 1);
  }
  static double lower_bound(int i) {
    if (i < kSub) return i;
    const int shift = (i - kSub) / kSub;
    return static_cast<double>((static_cast<uint64_t>(kSub + (i - kSub) % kSub)) << shift);
  }

  std::array<std::atomic<uint64_t>, kBuckets> buckets_{};
  std::atomic<uint64_t> max_us_{0};
};

}  // namespace linkemu
