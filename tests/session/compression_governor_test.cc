#include "session/compression_governor.h"

#include <gtest/gtest.h>

namespace ferry {
namespace {

using Clock = CompressionGovernor::Clock;

// Simulates `seconds` of sending 4 MiB chunks: raw chunks cross at `raw_rate` (bytes/s),
// compressed ones cost `chunk / compressed_rate` seconds and shrink 3x on the wire. The
// socket has a backlog when the link is what limits the pace: always for raw chunks when
// `backlogged`, and for compressed chunks only if their wire rate reaches the link's.
// Returns the share of chunks compressed.
double run(CompressionGovernor& g, double raw_rate, double compressed_rate, bool backlogged, double seconds,
           Clock::time_point* now) {
  const double chunk = 4 << 20;
  int n = 0, yes = 0;
  for (double t = 0; t < seconds; ++n) {
    bool c = g.should_compress();
    double dt = c ? chunk / compressed_rate : chunk / raw_rate;
    t += dt;
    *now += std::chrono::nanoseconds(static_cast<int64_t>(dt * 1e9));
    yes += c;
    bool link_bound = backlogged && (!c || compressed_rate / 3 >= raw_rate);
    g.record_delivery(static_cast<uint64_t>(c ? chunk / 3 : chunk), link_bound, *now);
  }
  return n ? static_cast<double>(yes) / n : 0;
}

TEST(CompressionGovernorTest, SlowLinkWithFasterCompressionCompressesNearlyEverything) {
  CompressionGovernor g(2);
  g.record_compression(100 << 20, 1.0);  // C = 200 MiB/s
  Clock::time_point now{};
  run(g, 50e6, 150e6, true, 1.0, &now);  // W = 50 MB/s, backlogged; compressing is CPU-bound
  EXPECT_GT(run(g, 50e6, 150e6, true, 10.0, &now), 0.85);  // minus the periodic raw re-measure
  EXPECT_NEAR(g.link_rate(), 50e6, 10e6);
}

TEST(CompressionGovernorTest, LinkFasterThanCompressionSendsRawExceptSamples) {
  CompressionGovernor g(2);
  g.record_compression(100 << 20, 1.0);  // C = 200 MiB/s
  Clock::time_point now{};
  run(g, 400e6, 200e6, true, 1.0, &now);  // W = 400 MB/s: compression cannot keep up
  double share = run(g, 400e6, 200e6, true, 5.0, &now);
  EXPECT_LT(share, 0.06);
  EXPECT_GT(share, 0.0) << "1 chunk in 128 is still compressed to keep measuring";
}

TEST(CompressionGovernorTest, NoBacklogMeansTheLinkIsNeverMeasuredAndAutoSendsRaw) {
  CompressionGovernor g(2);
  g.record_compression(1000 << 20, 1.0);  // a very fast compressor
  Clock::time_point now{};
  EXPECT_LT(run(g, 50e6, 150e6, false, 4.0, &now), 0.06);
  EXPECT_EQ(g.link_rate(), 0);
}

TEST(CompressionGovernorTest, WhileCompressingTheLinkIsRemeasuredPeriodically) {
  CompressionGovernor g(2);
  g.record_compression(100 << 20, 1.0);
  Clock::time_point now{};
  run(g, 50e6, 150e6, true, 1.0, &now);
  ASSERT_TRUE(g.compressing());
  // The link got fast (200 MB/s) while compressing: a raw window must notice and stop.
  run(g, 400e6, 150e6, true, 6.0, &now);
  EXPECT_FALSE(g.compressing());
  EXPECT_GT(g.link_rate(), 200e6);
}

}  // namespace
}  // namespace ferry
