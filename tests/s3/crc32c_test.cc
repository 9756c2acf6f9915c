// CRC-32C against published vectors: RFC 3720 (iSCSI) appendix B.4, and the "123456789"
// check value of the CRC catalogue; both implementations, every split point, and the
// base64 form S3's x-amz-checksum-crc32c header uses.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "s3/crc32c.h"

namespace ferry::s3 {
namespace {

struct Vector {
  const char* name;
  std::vector<uint8_t> data;
  uint32_t crc;
};

std::vector<Vector> rfc3720_vectors() {
  std::vector<Vector> v;
  v.push_back({"32 bytes of zeros", std::vector<uint8_t>(32, 0x00), 0x8A9136AAu});
  v.push_back({"32 bytes of ones", std::vector<uint8_t>(32, 0xFF), 0x62A8AB43u});
  std::vector<uint8_t> inc(32);
  std::iota(inc.begin(), inc.end(), 0);
  v.push_back({"32 incrementing bytes", inc, 0x46DD794Eu});
  std::vector<uint8_t> dec(inc.rbegin(), inc.rend());
  v.push_back({"32 decrementing bytes", dec, 0x113FDB5Cu});
  // An iSCSI SCSI Read (10) command PDU.
  std::vector<uint8_t> pdu = {0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                              0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00,
                              0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00,
                              0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  v.push_back({"iSCSI read PDU", pdu, 0xD9963A56u});
  std::string check = "123456789";
  v.push_back({"123456789", std::vector<uint8_t>(check.begin(), check.end()), 0xE3069283u});
  return v;
}

TEST(Crc32cTest, Rfc3720VectorsWithBothImplementations) {
  for (const auto& v : rfc3720_vectors()) {
    EXPECT_EQ(crc32c_table(v.data.data(), v.data.size()), v.crc) << v.name;
    EXPECT_EQ(crc32c(v.data.data(), v.data.size()), v.crc) << v.name;
    if (crc32c_has_sse42()) {
      EXPECT_EQ(crc32c_sse42(v.data.data(), v.data.size()), v.crc) << v.name;
    }
  }
}

TEST(Crc32cTest, EmptyInputIsZero) {
  EXPECT_EQ(crc32c(nullptr, 0), 0u);
  EXPECT_EQ(crc32c_table(nullptr, 0), 0u);
}

TEST(Crc32cTest, IncrementalEqualsOneShotAtEverySplitAndAlignment) {
  std::mt19937 rng(7);
  std::vector<uint8_t> data(1000 + 13);
  for (auto& b : data) b = static_cast<uint8_t>(rng());
  for (size_t start = 0; start < 8; ++start) {
    const uint8_t* p = data.data() + start;
    size_t n = 1000;
    uint32_t whole = crc32c_table(p, n);
    EXPECT_EQ(crc32c(p, n), whole);
    for (size_t split = 0; split <= n; split += 37) {
      EXPECT_EQ(crc32c(p + split, n - split, crc32c(p, split)), whole) << "start " << start << " split " << split;
      EXPECT_EQ(crc32c_table(p + split, n - split, crc32c_table(p, split)), whole);
    }
  }
}

TEST(Crc32cTest, HeaderValueIsBase64OfTheBigEndianBytes) {
  // 0xE3069283 -> bytes e3 06 92 83 -> "4waSgw==" (what botocore sends for "123456789").
  EXPECT_EQ(crc32c_base64(0xE3069283u), "4waSgw==");
  EXPECT_EQ(crc32c_base64(0), "AAAAAA==");
  EXPECT_EQ(crc32c_base64(0xFFFFFFFFu), "/////w==");
}

}  // namespace
}  // namespace ferry::s3
