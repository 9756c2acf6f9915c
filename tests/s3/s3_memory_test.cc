// Peak memory of an S3 upload stays within --memory plus a small fixed overhead, even with
// more parts in flight than the budget holds. Its own test binary: getrusage(CHILDREN)
// reports the largest child reaped so far, and only ferry is reaped before the check.
#include <sys/resource.h>

#include "s3_test_support.h"

namespace ferry::s3::test {
namespace {

TEST(S3Memory, PeakRssStaysWithinTheMemoryBudget) {
  use_s3rver_credentials();
  S3rver server;
  server.start({"bkt"});
  TempDir tmp("s3-mem");
  std::string src = tmp / "cache.bin";
  write_random_file(src, 96ull << 20, 1);
  // 8 workers x 8 MiB parts would want 64 MiB of buffers; the budget allows 24 MiB.
  auto r = run(kFerry + " send --json --no-progress --memory 24M --part-size 8M --s3-concurrency 8 --state-dir '" +
               (tmp / "state") + "' --endpoint " + server.endpoint() + " '" + src + "' s3://bkt/m/");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rusage ru{};
  ASSERT_EQ(::getrusage(RUSAGE_CHILDREN, &ru), 0);
  long peak_mib = ru.ru_maxrss / 1024;
  std::printf("ferry peak RSS %ld MiB with --memory 24M\n", peak_mib);
#ifndef __SANITIZE_ADDRESS__
  // Under AddressSanitizer (packaging/run-sanitizers.sh) the peak RSS measures ASan's
  // quarantine, shadow and redzones rather than ferry's budget: checked by the normal build.
  EXPECT_LE(peak_mib, 24 + 28) << "buffers escaped the budget (fixed overhead is about 17 MiB)";
#endif
  auto back = get_object({"bkt", ""}, "m/cache.bin", server.options());
  ASSERT_TRUE(back);
  EXPECT_TRUE(*back == read_file(src));
}

}  // namespace
}  // namespace ferry::s3::test
