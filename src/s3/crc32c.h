// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as S3's x-amz-checksum-crc32c
// carries it: the big-endian 4 bytes of the final CRC, base64-encoded.
//
// Runtime-dispatched: the SSE4.2 CRC32 instruction (8 bytes per instruction) where the CPU
// has it, else a slicing-by-8 table (8 bytes per 8 table lookups). Both give the same value;
// tests check them against RFC 3720 (iSCSI) B.4 vectors.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ferry::s3 {

// Extends `crc` (the CRC of the bytes before, 0 at the start) over data[0..len).
uint32_t crc32c(const void* data, size_t len, uint32_t crc = 0);
// The two implementations, for tests and benchmarks (crc32c() picks one once).
uint32_t crc32c_table(const void* data, size_t len, uint32_t crc = 0);
uint32_t crc32c_sse42(const void* data, size_t len, uint32_t crc = 0);  // only where crc32c_has_sse42()
bool crc32c_has_sse42();

// base64 of the big-endian 4 bytes: the x-amz-checksum-crc32c header value.
std::string crc32c_base64(uint32_t crc);

}  // namespace ferry::s3
