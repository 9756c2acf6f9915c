// s3:// URLs, endpoints and part sizing.
#include "s3/s3_url.h"

#include <gtest/gtest.h>

#include "s3/multipart_uploader.h"

namespace ferry::s3 {
namespace {

TEST(S3Url, BucketAndPrefixBecomeADirectory) {
  auto t = parse_s3_url("s3://my-bucket/plates/shot010");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->bucket, "my-bucket");
  EXPECT_EQ(t->prefix, "plates/shot010/");
  EXPECT_EQ(t->key_for("a/b.exr"), "plates/shot010/a/b.exr");
  EXPECT_EQ(parse_s3_url("s3://my-bucket")->prefix, "");
  EXPECT_EQ(parse_s3_url("s3://my-bucket/")->prefix, "");
  EXPECT_EQ(parse_s3_url("s3://my.bucket.name/x/")->prefix, "x/");
}

TEST(S3Url, BadUrlsAreUsageErrors) {
  for (const char* bad : {"s3://", "s3://ab", "s3://-bucket/", "s3://bu*cket/", "http://bucket/", "s3://bucket/a//b"}) {
    auto t = parse_s3_url(bad);
    EXPECT_FALSE(t) << bad;
    if (!t) {
      EXPECT_EQ(t.status().code(), Error::kUsage);
    }
  }
  EXPECT_TRUE(is_s3_url("s3://x"));
  EXPECT_FALSE(is_s3_url("ferry://x"));
}

TEST(S3Url, Endpoints) {
  auto e = parse_endpoint("http://127.0.0.1:9000/");
  ASSERT_TRUE(e);
  EXPECT_FALSE(e->https);
  EXPECT_EQ(e->port, 9000);
  EXPECT_EQ(e->host_header(), "127.0.0.1:9000");
  auto h = parse_endpoint("https://minio.example.com");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->port, 443);
  EXPECT_EQ(h->host_header(), "minio.example.com");
  auto v6 = parse_endpoint("http://[::1]:4568");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->host_header(), "[::1]:4568");
  for (const char* bad : {"127.0.0.1:9000", "ftp://x", "http://", "http://h:0", "http://h:99999", "http://h/path"})
    EXPECT_FALSE(parse_endpoint(bad)) << bad;
  EXPECT_TRUE(is_ip_or_localhost("127.0.0.1"));
  EXPECT_TRUE(is_ip_or_localhost("::1"));
  EXPECT_FALSE(is_ip_or_localhost("s3.amazonaws.com"));
}

TEST(PartSize, AutomaticStaysWithinTenThousandParts) {
  EXPECT_EQ(*choose_part_size(1ull << 30, 0), 16ull << 20);
  uint64_t five_tib = 5ull << 40;
  uint64_t p = *choose_part_size(five_tib, 0);
  EXPECT_LE((five_tib + p - 1) / p, kMaxParts);
  EXPECT_GE(p, kMinPartSize);
  EXPECT_LE(p, kMaxPartSize);
}

TEST(PartSize, RequestedIsCheckedAgainstS3Limits) {
  EXPECT_EQ(*choose_part_size(100ull << 20, 8ull << 20), 8ull << 20);
  EXPECT_FALSE(choose_part_size(100, 4ull << 20));       // below 5 MiB
  EXPECT_FALSE(choose_part_size(100, 6ull << 30));       // above the buffered maximum
  EXPECT_FALSE(choose_part_size(100ull << 30, 5ull << 20));  // 20,480 parts
}

}  // namespace
}  // namespace ferry::s3
