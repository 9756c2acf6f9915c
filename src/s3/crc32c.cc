#include "s3/crc32c.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace ferry::s3 {
namespace {

constexpr uint32_t kPoly = 0x82F63B78u;  // 0x1EDC6F41 bit-reversed

// kTable[0] is the classic byte table; kTable[k][b] is the CRC of byte b followed by k zero
// bytes, so eight bytes are folded with eight independent lookups (slicing-by-8).
constexpr std::array<std::array<uint32_t, 256>, 8> make_tables() {
  std::array<std::array<uint32_t, 256>, 8> t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int i = 0; i < 8; ++i) c = (c >> 1) ^ ((c & 1) ? kPoly : 0);
    t[0][b] = c;
  }
  for (int k = 1; k < 8; ++k)
    for (uint32_t b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
  return t;
}
constexpr auto kTable = make_tables();

uint64_t load_le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  v = __builtin_bswap64(v);
#endif
  return v;
}

}  // namespace

uint32_t crc32c_table(const void* data, size_t len, uint32_t crc) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t c = ~crc;
  while (len >= 8) {
    uint64_t v = load_le64(p) ^ c;
    c = kTable[7][v & 0xff] ^ kTable[6][(v >> 8) & 0xff] ^ kTable[5][(v >> 16) & 0xff] ^ kTable[4][(v >> 24) & 0xff] ^
        kTable[3][(v >> 32) & 0xff] ^ kTable[2][(v >> 40) & 0xff] ^ kTable[1][(v >> 48) & 0xff] ^ kTable[0][v >> 56];
    p += 8;
    len -= 8;
  }
  while (len--) c = (c >> 8) ^ kTable[0][(c ^ *p++) & 0xff];
  return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(const void* data, size_t len, uint32_t crc) {
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint64_t c = ~crc;
  while (len >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = _mm_crc32_u64(c, v);
    p += 8;
    len -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (len--) c32 = _mm_crc32_u8(c32, *p++);
  return ~c32;
}
bool crc32c_has_sse42() { return __builtin_cpu_supports("sse4.2"); }
#else
uint32_t crc32c_sse42(const void* data, size_t len, uint32_t crc) { return crc32c_table(data, len, crc); }
bool crc32c_has_sse42() { return false; }
#endif

uint32_t crc32c(const void* data, size_t len, uint32_t crc) {
  static const bool hw = crc32c_has_sse42();
  return hw ? crc32c_sse42(data, len, crc) : crc32c_table(data, len, crc);
}

std::string crc32c_base64(uint32_t crc) {
  static const char* kB64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  const uint8_t b[4] = {static_cast<uint8_t>(crc >> 24), static_cast<uint8_t>(crc >> 16), static_cast<uint8_t>(crc >> 8),
                        static_cast<uint8_t>(crc)};
  std::string out;
  out += kB64[b[0] >> 2];
  out += kB64[((b[0] & 3) << 4) | (b[1] >> 4)];
  out += kB64[((b[1] & 15) << 2) | (b[2] >> 6)];
  out += kB64[b[2] & 63];
  out += kB64[b[3] >> 2];
  out += kB64[(b[3] & 3) << 4];
  out += "==";
  return out;
}

}  // namespace ferry::s3
