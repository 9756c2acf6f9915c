// Bearer tokens: generation (ferry recv's per-run token) and comparison without timing leaks.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "ferry/status.h"

namespace ferry {

using TokenDigest = std::array<uint8_t, 32>;  // SHA-256

// `bytes` random bytes from the OpenSSL CSPRNG, as unpadded base64url (16 bytes -> 22 chars).
Result<std::string> generate_token(size_t bytes = 16);

// Unpadded base64url of `data` (RFC 4648 section 5).
std::string base64url(const uint8_t* data, size_t len);

TokenDigest token_digest(std::string_view token);

// Constant-time in the contents: compares digests (fixed length) with CRYPTO_memcmp, so
// neither the length nor any prefix of the expected token shows in the timing.
bool tokens_equal(std::string_view presented, const TokenDigest& expected);
bool digests_equal(const TokenDigest& a, const TokenDigest& b);

}  // namespace ferry
