// Decides, chunk by chunk, whether `--compress auto` spends CPU on zstd.
//
// Compression pays only when the link is the bottleneck and the workers can compress faster
// than the link drains: sending raw then moves W raw bytes/s (W = the link's rate), while
// compressing moves min(C, W x ratio) with C = compression capacity. So auto compresses
// exactly when C > W (with 10% margin).
//  - W is measured only in windows where the transport had a backlog (chunks waiting for
//    the socket), because only then is the delivery rate the link's rate. Until W is known,
//    auto sends raw: on a link that never backs up (loopback, 10 GbE with slow cores),
//    compression could only slow the transfer down.
//  - C is measured on the chunks that are compressed; 1 chunk in kSampleEvery is always
//    compressed so C stays current (and a compressible file always shrinks a little);
//    1 in 128 keeps that cost near 2% on a link where compressing does not pay (measured:
//    1 in 32 made auto 8% slower than none on loopback).
//  - While compressing, the link may stop being the bottleneck and W goes stale; every
//    kRemeasureAfter one window is sent raw to measure W again.
// Incompressible chunks are still caught by ChunkCodec's probe whatever this decides.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>

namespace ferry {

class CompressionGovernor {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr uint64_t kSampleEvery = 128;
  static constexpr auto kWindow = std::chrono::milliseconds(250);
  static constexpr auto kRemeasureAfter = std::chrono::seconds(4);

  explicit CompressionGovernor(size_t workers) : workers_(workers) {}

  // Network thread: compress the next chunk?
  bool should_compress();
  // Pool threads: compressing `raw_bytes` took `seconds` of one worker.
  void record_compression(uint64_t raw_bytes, double seconds);
  // Network thread: a chunk of `wire_bytes` was handed to the kernel; `backlogged` tells
  // whether other chunks were still waiting behind the socket at that moment.
  void record_delivery(uint64_t wire_bytes, bool backlogged, Clock::time_point now);

  double capacity() const;                       // C, raw bytes/s; 0 until measured
  double link_rate() const { return link_rate_; }  // W, wire bytes/s; 0 until measured
  bool compressing() const { return compressing_; }

 private:
  void end_window(Clock::time_point now);

  const size_t workers_;
  mutable std::mutex mu_;    // guards worker_speed_ (written by pool threads)
  double worker_speed_ = 0;  // EWMA of raw bytes/s one worker compresses
  // Network thread only:
  uint64_t decisions_ = 0;
  bool compressing_ = false;
  double link_rate_ = 0;
  Clock::time_point link_measured_at_{};
  Clock::time_point window_start_{};
  uint64_t window_bytes_ = 0;
  uint64_t window_deliveries_ = 0;
  uint64_t window_backlogged_ = 0;
};

}  // namespace ferry
