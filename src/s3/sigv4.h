// AWS Signature Version 4 (header form) with OpenSSL's HMAC-SHA256.
//
// Pure functions, no I/O: the S3 client builds a SigningRequest, signs it, and copies the
// returned headers onto the HTTP request. Checked against AWS's published SigV4 test suite
// and against botocore (tests/s3/sigv4_test.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::s3 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless temporary credentials (STS, instance metadata)
  std::string source;         // where they came from, for messages: "environment", "profile 'x'", ...
  int64_t expires_unix = 0;   // 0: never (static keys)
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct SigningRequest {
  std::string method;         // "GET", "PUT", ...
  std::string canonical_uri;  // the request path, already URI-encoded ("/bucket/a%20b")
  HeaderList query;           // decoded name/value pairs; encoded and sorted when signing
  HeaderList headers;         // every header to sign, Host included (names any case)
  std::string payload_hash;   // hex SHA-256 of the body, or "UNSIGNED-PAYLOAD"
};

struct SigV4Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // hex
  std::string authorization;  // value of the Authorization header
  HeaderList added_headers;   // X-Amz-Date (and X-Amz-Security-Token) to send with the request
};

// Signs `req` at `amz_date` ("20150830T123600Z"). The date and, when credentials carry one,
// the session token are added to the signed headers (and returned in added_headers), so the
// caller must not put them in req.headers itself.
SigV4Signature sign_v4(const SigningRequest& req, const Credentials& creds, std::string_view region,
                       std::string_view service, std::string_view amz_date);

// RFC 3986 percent-encoding as SigV4 wants it: unreserved bytes (A-Z a-z 0-9 - . _ ~) stay,
// everything else becomes %XX (upper-case hex); '/' stays when keep_slash.
std::string uri_encode(std::string_view s, bool keep_slash);

// Current UTC time as "YYYYMMDDTHHMMSSZ".
std::string amz_date_now();

std::string sha256_hex(const void* data, size_t len);
inline constexpr std::string_view kEmptySha256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
inline constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

// Base64 of the MD5 of data (the Content-MD5 header) and the same digest in hex (an ETag).
struct Md5Digest {
  uint8_t bytes[16];
  std::string base64() const;
  std::string hex() const;
};
Md5Digest md5(const void* data, size_t len);

}  // namespace ferry::s3
