#include "session/compression_governor.h"

namespace ferry {

bool CompressionGovernor::should_compress() {
  if (decisions_++ % kSampleEvery == 0) return true;
  return compressing_;
}

void CompressionGovernor::record_compression(uint64_t raw_bytes, double seconds) {
  if (seconds <= 0) return;
  double speed = static_cast<double>(raw_bytes) / seconds;
  std::lock_guard lock(mu_);
  worker_speed_ = worker_speed_ == 0 ? speed : 0.8 * worker_speed_ + 0.2 * speed;
}

double CompressionGovernor::capacity() const {
  std::lock_guard lock(mu_);
  return worker_speed_ * static_cast<double>(workers_);
}

void CompressionGovernor::record_delivery(uint64_t wire_bytes, bool backlogged, Clock::time_point now) {
  if (window_start_ == Clock::time_point{}) window_start_ = now;
  window_bytes_ += wire_bytes;
  ++window_deliveries_;
  window_backlogged_ += backlogged;
  if (now - window_start_ >= kWindow) end_window(now);
}

void CompressionGovernor::end_window(Clock::time_point now) {
  double seconds = std::chrono::duration<double>(now - window_start_).count();
  if (2 * window_backlogged_ >= window_deliveries_) {
    // The socket could not take data as fast as it came: this is the link's rate.
    double rate = static_cast<double>(window_bytes_) / seconds;
    link_rate_ = link_rate_ == 0 ? rate : 0.5 * link_rate_ + 0.5 * rate;
    link_measured_at_ = now;
  }
  window_start_ = now;
  window_bytes_ = window_deliveries_ = window_backlogged_ = 0;

  double c = capacity();
  bool worth_it = link_rate_ > 0 && c > 1.1 * link_rate_;
  // Compressing hides the link's rate; send one window raw now and then to see it again.
  bool stale = compressing_ && now - link_measured_at_ > kRemeasureAfter;
  compressing_ = worth_it && !stale;
}

}  // namespace ferry
