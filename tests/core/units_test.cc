// Tests for src/core/units.{h,cc}: parse_size, parse_bit_rate, format_bytes.
#include "core/units.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace ferry {
namespace {

constexpr uint64_t KiB = 1024;
constexpr uint64_t MiB = 1024 * KiB;
constexpr uint64_t GiB = 1024 * MiB;
constexpr uint64_t TiB = 1024 * GiB;

uint64_t size_or_fail(const std::string& text) {
  auto r = parse_size(text);
  EXPECT_TRUE(r.is_ok()) << "'" << text << "': " << r.status().to_string();
  return r ? *r : UINT64_MAX;
}

uint64_t rate_or_fail(const std::string& text) {
  auto r = parse_bit_rate(text);
  EXPECT_TRUE(r.is_ok()) << "'" << text << "': " << r.status().to_string();
  return r ? *r : UINT64_MAX;
}

void expect_usage_error(const Result<uint64_t>& r, const std::string& text) {
  EXPECT_FALSE(r.is_ok()) << "'" << text << "' accepted as " << (r ? r.value() : 0);
  if (!r) {
    EXPECT_EQ(r.status().code(), Error::kUsage) << text;
    EXPECT_NE(r.status().message().find("'" + text + "'"), std::string::npos)
        << "message does not quote the input: " << r.status().message();
  }
}

// ---------------------------------------------------------------------------------------
// parse_size

TEST(ParseSize, PlainNumberIsBytes) {
  EXPECT_EQ(size_or_fail("100"), 100u);
  EXPECT_EQ(size_or_fail("0"), 0u);
  EXPECT_EQ(size_or_fail("65536"), 65536u);
  EXPECT_EQ(size_or_fail("100B"), 100u);
}

TEST(ParseSize, SuffixesAreBinaryMultiples) {
  EXPECT_EQ(size_or_fail("512K"), 512 * KiB);
  EXPECT_EQ(size_or_fail("4M"), 4 * MiB);
  EXPECT_EQ(size_or_fail("2G"), 2 * GiB);
  EXPECT_EQ(size_or_fail("1T"), TiB);
}

TEST(ParseSize, TrailingBAndIBAreAccepted) {
  EXPECT_EQ(size_or_fail("4MiB"), 4 * MiB);
  EXPECT_EQ(size_or_fail("4MB"), 4 * MiB);
  EXPECT_EQ(size_or_fail("4M"), 4 * MiB);
  EXPECT_EQ(size_or_fail("64KiB"), 64 * KiB);
  EXPECT_EQ(size_or_fail("1GB"), GiB);
  EXPECT_EQ(size_or_fail("1TiB"), TiB);
}

TEST(ParseSize, SuffixIsCaseInsensitive) {
  EXPECT_EQ(size_or_fail("4m"), 4 * MiB);
  EXPECT_EQ(size_or_fail("4mib"), 4 * MiB);
  EXPECT_EQ(size_or_fail("1g"), GiB);
}

TEST(ParseSize, FractionsAreAllowed) {
  EXPECT_EQ(size_or_fail("1.5G"), GiB + GiB / 2);
  EXPECT_EQ(size_or_fail("0.5M"), MiB / 2);
  EXPECT_EQ(size_or_fail("2.25K"), 2304u);
}

TEST(ParseSize, RejectsEmptyString) { expect_usage_error(parse_size(""), ""); }

TEST(ParseSize, RejectsNegative) {
  expect_usage_error(parse_size("-1"), "-1");
  expect_usage_error(parse_size("-4M"), "-4M");
}

TEST(ParseSize, RejectsUnknownSuffix) {
  for (const char* t : {"4X", "4KK", "4MiBB", "4P", "4E", "1e3", "4 bytes"}) expect_usage_error(parse_size(t), t);
}

TEST(ParseSize, RejectsMalformedNumbers) {
  for (const char* t : {"1.2.3", "M", ".", "..5", "1..5K", "abc", "nan", "inf", "+4M"})
    expect_usage_error(parse_size(t), t);
}

TEST(ParseSize, RejectsHugeValues) {
  for (const char* t : {"4194304T" /* 2^62 */, "99999999T", "18446744073709551616", "1e300",
                        "9999999999999999999999999999999999999999"})
    expect_usage_error(parse_size(t), t);
  // Just under the 2^62 bound is fine.
  EXPECT_EQ(size_or_fail("4194303T"), 4194303 * TiB);
}

// ---------------------------------------------------------------------------------------
// parse_bit_rate

TEST(ParseBitRate, SuffixesAreDecimalMultiples) {
  EXPECT_EQ(rate_or_fail("800M"), 800'000'000u);
  EXPECT_EQ(rate_or_fail("1G"), 1'000'000'000u);
  EXPECT_EQ(rate_or_fail("100K"), 100'000u);
  EXPECT_EQ(rate_or_fail("1.5G"), 1'500'000'000u);
  EXPECT_EQ(rate_or_fail("2500"), 2500u);
}

TEST(ParseBitRate, TrailingBpsOrBitIsAccepted) {
  EXPECT_EQ(rate_or_fail("100Kbps"), 100'000u);
  EXPECT_EQ(rate_or_fail("800Mbps"), 800'000'000u);
  EXPECT_EQ(rate_or_fail("10Gbit"), 10'000'000'000u);
  EXPECT_EQ(rate_or_fail("10Gbit/s"), 10'000'000'000u);
  EXPECT_EQ(rate_or_fail("64bps"), 64u);
  EXPECT_EQ(rate_or_fail("1 Gbps"), 1'000'000'000u);
}

TEST(ParseBitRate, Rejects) {
  for (const char* t : {"", "-1", "-800M", "800X", "800T", "M", "bps", "1.2.3M", "800MiB", "abc"})
    expect_usage_error(parse_bit_rate(t), t);
}

TEST(ParseBitRate, RejectsHugeValues) {
  for (const char* t : {"99999999999G", "9999999999999999999999"}) expect_usage_error(parse_bit_rate(t), t);
}

TEST(ParseBitRate, ByteRateSuffixesAreNotSilentlyReadAsBits) {
  // "MB/s" and "MBps" conventionally mean megaBYTES per second (ferry's own JSON report
  // prints throughput_MBps in megabytes). Reading them as megabits is an 8x error; either
  // reject them or convert them (x8).
  for (const char* t : {"100MB/s", "100MBps"}) {
    auto r = parse_bit_rate(t);
    EXPECT_TRUE(!r.is_ok() || *r == 800'000'000u)
        << "'" << t << "' parsed as " << *r << " bit/s (100 Mbit/s, not 100 MB/s)";
  }
}

// ---------------------------------------------------------------------------------------
// format_bytes

TEST(FormatBytes, BelowOneKiBPrintsExactBytes) {
  EXPECT_EQ(format_bytes(0), "0 B");
  EXPECT_EQ(format_bytes(1), "1 B");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(1023), "1023 B");
}

TEST(FormatBytes, LargerValuesUseBinaryUnitsWithOneDecimal) {
  EXPECT_EQ(format_bytes(KiB), "1.0 KiB");
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(12 * MiB), "12.0 MiB");
  EXPECT_EQ(format_bytes(GiB + GiB / 2), "1.5 GiB");
  EXPECT_EQ(format_bytes(2 * TiB), "2.0 TiB");
}

TEST(FormatBytes, TebibytesIsTheLargestUnit) {
  EXPECT_EQ(format_bytes(1024 * TiB), "1024.0 TiB");
  EXPECT_EQ(format_bytes(UINT64_MAX), "16777216.0 TiB");
}

TEST(FormatBytes, RoundTripsThroughParseSize) {
  for (uint64_t v : {KiB, 3 * MiB / 2, 12 * MiB, 5 * GiB / 2, 7 * TiB}) {
    std::string text = format_bytes(v);
    EXPECT_EQ(size_or_fail(text), v) << text;
  }
}

}  // namespace
}  // namespace ferry
