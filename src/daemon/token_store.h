// ferryd's bearer tokens, stored HASHED in their own file (format in man/ferryd.toml.5).
//
// A token is "ferry_" + 64 hex digits (256 random bits). Only its SHA-256 is stored, with an
// id, a name, grants per export, the creation time, an optional expiry and a revoked flag;
// the token itself is shown once by `ferryd token new` and never written anywhere.
// The file is a TOML subset (one [[token]] table each), replaced atomically (temp file,
// fsync, rename, fsync of the directory) with mode 0600.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/receiver.h"
#include "ferry/status.h"

namespace ferry::daemon {

inline constexpr std::string_view kTokenPrefix = "ferry_";

struct TokenGrant {
  std::string export_name;
  bool read = false;
  bool write = false;
  bool operator==(const TokenGrant&) const = default;
};

// "plates:rw", "cache:r", "drop:w". kUsage on anything else.
Result<TokenGrant> parse_grant(std::string_view text);
std::string to_string(const TokenGrant& grant);
// Seconds since the epoch as "2026-11-29T09:53:10Z" (UTC).
std::string format_time(int64_t t);

struct TokenRecord {
  std::string id;    // 8 hex digits, random; how `token list` and logs name a token
  std::string name;  // chosen by the operator
  std::array<uint8_t, 32> sha256{};
  std::vector<TokenGrant> grants;
  int64_t created = 0;  // unix seconds
  int64_t expires = 0;  // unix seconds; 0 = never
  bool revoked = false;
};

class TokenStore {
 public:
  // A missing file is an empty store; a malformed one is a kUsage "FILE:LINE: cause".
  static Result<TokenStore> load(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<TokenRecord>& tokens() const { return tokens_; }

  // Adds a token and returns its secret (the only time it exists outside the client).
  // ttl_seconds 0 = no expiry. Names are unique among tokens that are not revoked.
  Result<std::string> add(const std::string& name, std::vector<TokenGrant> grants, int64_t ttl_seconds, int64_t now);
  // Revokes the token with this id, or the one unrevoked token with this name.
  Result<TokenRecord> revoke(const std::string& id_or_name);
  // Writes the store atomically, mode 0600. When the directory belongs to another user
  // (ferryd's, while `ferryd token` runs as root), the file is given to that owner too, so
  // the daemon can read it.
  Status save() const;

  // Grants of the token, or kRefused: unknown, revoked or expired. Compares the hash with
  // every stored hash in constant time (CRYPTO_memcmp), whatever matches.
  Result<std::vector<ExportAccess>> verify(std::string_view token, int64_t now) const;

 private:
  std::string path_;
  std::vector<TokenRecord> tokens_;
};

// A verifier over the store file that re-reads it whenever it changes (so a `ferryd token
// revoke` takes effect on the next connection, with no reload). If a changed file cannot be
// read, every token is refused until it can be (fail closed) and the cause is logged.
TokenVerifier make_token_verifier(const std::string& path);

// Exclusive lock for a read-modify-write of the store by `ferryd token` (a lock file beside
// it, "<path>.lock"). Released when the returned descriptor is closed.
Result<int> lock_token_store(const std::string& path);

}  // namespace ferry::daemon
