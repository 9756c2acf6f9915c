// The S3 REST calls ferry makes, signed with SigV4 and retried.
//
// Retry policy (every call): transport failures (connect, reset, timeout), HTTP 500/502/503/
// 504, and the error codes SlowDown, RequestTimeout, InternalError are retried up to
// max_attempts times with exponential backoff and full jitter (a delay drawn uniformly from
// [0, min(cap, base * 2^attempt)]); a Retry-After header raises the delay to what the server
// asks (up to 60 s). Each attempt is signed afresh. Anything else is final and becomes a
// Status naming the method, the s3:// object and the server's code and message:
// 401/403 -> kRefused, NoSuchBucket -> kUsage, exhausted retries -> kNetwork.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "s3/credentials.h"
#include "s3/http_client.h"
#include "s3/s3_responses.h"
#include "s3/s3_url.h"

namespace ferry::s3 {

struct RetryOptions {
  int max_attempts = 8;
  std::chrono::milliseconds base{200};
  std::chrono::milliseconds cap{20'000};
};

struct S3ClientOptions {
  std::string endpoint;  // "" = AWS: https://s3.<region>.amazonaws.com
  bool path_style = false;  // forced on for IP/localhost endpoints and bucket names with dots
  std::string region = "us-east-1";
  HttpClientOptions http;
  RetryOptions retry;
};

struct HeadResult {
  bool found = false;
  uint64_t size = 0;
  std::string etag;
  HeaderList metadata;  // x-amz-meta-* headers, names lower-case without the prefix
  std::string meta(std::string_view name) const;
};

struct CompletedPart {
  uint32_t number = 0;
  std::string etag;
  std::string checksum_crc32c;  // base64, for uploads created with ChecksumAlgorithm::kCrc32c
};

// How a body's integrity is checked by the store: Content-MD5 (the default; every
// S3-compatible store honours it, and a plain-MD5 ETag lets ferry check it end to end), or
// x-amz-checksum-crc32c (AWS's flexible checksums: far cheaper to compute; stored with the
// object; not every S3-compatible store implements it).
enum class ChecksumAlgorithm : uint8_t { kMd5, kCrc32c };
const char* to_string(ChecksumAlgorithm a);  // "md5" | "crc32c"

struct BodyChecksum {
  ChecksumAlgorithm algorithm = ChecksumAlgorithm::kMd5;
  Md5Digest md5{};      // with kMd5
  uint32_t crc32c = 0;  // with kCrc32c
  static BodyChecksum compute(ChecksumAlgorithm a, const uint8_t* data, size_t len);
  std::string base64() const;  // the header value
  // The ETag a store returns for this body can be compared with it (MD5 only).
  bool comparable_with_etag() const { return algorithm == ChecksumAlgorithm::kMd5; }
};

class S3Client {
 public:
  static Result<std::unique_ptr<S3Client>> create(const S3ClientOptions& options,
                                                  std::shared_ptr<CredentialProvider> credentials,
                                                  const std::string& bucket);

  // Returns the ETag (without quotes). `md5` is sent as Content-MD5 so the store rejects a
  // body damaged on the way; the ETag a non-encrypting store returns is that MD5 in hex.
  Result<std::string> put_object(const std::string& key, const uint8_t* data, size_t len, const Md5Digest& md5,
                                 const HeaderList& metadata);
  Result<std::string> put_object(const std::string& key, const uint8_t* data, size_t len, const BodyChecksum& sum,
                                 const HeaderList& metadata);
  // With kCrc32c the upload is created with x-amz-checksum-algorithm: CRC32C, and each part
  // and the Complete request must then carry their CRC32C.
  Result<std::string> create_multipart(const std::string& key, const HeaderList& metadata,
                                       ChecksumAlgorithm algorithm = ChecksumAlgorithm::kMd5);
  Result<std::string> upload_part(const std::string& key, const std::string& upload_id, uint32_t number,
                                  const uint8_t* data, size_t len, const Md5Digest& md5);
  Result<std::string> upload_part(const std::string& key, const std::string& upload_id, uint32_t number,
                                  const uint8_t* data, size_t len, const BodyChecksum& sum);
  Result<std::string> complete_multipart(const std::string& key, const std::string& upload_id,
                                         const std::vector<CompletedPart>& parts);
  // *unsupported is set when the store does not implement the call (HTTP 405/501, as s3rver
  // for Abort, ListParts and ListMultipartUploads); the result is then ok and empty.
  Status abort_multipart(const std::string& key, const std::string& upload_id, bool* unsupported = nullptr);
  // *gone: NoSuchUpload (completed or aborted meanwhile).
  Result<std::vector<PartInfo>> list_parts(const std::string& key, const std::string& upload_id, bool* unsupported,
                                           bool* gone);
  Result<std::vector<UploadInfo>> list_uploads(const std::string& prefix, bool* unsupported);
  // Every object under `prefix`, fetched `page_size` keys a request (S3's maximum is 1,000).
  Result<std::vector<ObjectInfo>> list_objects(const std::string& prefix, int page_size = 1000);
  Result<HeadResult> head_object(const std::string& key);
  // CopyObject onto itself with REPLACE metadata (objects up to 5 GiB).
  Status replace_metadata(const std::string& key, const HeaderList& metadata);
  Status delete_object(const std::string& key);
  Result<std::string> get_object(const std::string& key, size_t max_size);

  const std::string& bucket() const { return bucket_; }
  std::string object_url(const std::string& key) const { return "s3://" + bucket_ + "/" + key; }
  const Endpoint& endpoint() const { return endpoint_; }

  // Counters for reports and tests.
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> retries{0};

  // The low-level call, public for tests: signs, sends, retries. Returns the final response
  // whatever its status (a non-retryable 4xx is a response, not an error).
  struct Call {
    Call(std::string m, std::string k, HeaderList q = {}, HeaderList h = {}, const uint8_t* b = nullptr, size_t n = 0,
         bool sign = true)
        : method(std::move(m)), key(std::move(k)), query(std::move(q)), headers(std::move(h)), body(b), body_size(n),
          sign_body(sign) {}
    std::string method;
    std::string key;     // "" for bucket-level calls
    HeaderList query;    // decoded name/value pairs
    HeaderList headers;
    const uint8_t* body = nullptr;
    size_t body_size = 0;
    bool sign_body = true;  // false: UNSIGNED-PAYLOAD (large bodies carry Content-MD5 instead)
    size_t max_response_body = 32u << 20;
  };
  Result<HttpResponse> call(const Call& c);
  // The signed HTTP request for one attempt of `c` at `amz_date` (pure; tests compare it
  // with botocore's signature for the same request). *sig receives the signing details.
  HttpRequest sign_request(const Call& c, const Credentials& creds, const std::string& amz_date,
                           SigV4Signature* sig = nullptr) const;

 private:
  S3Client(const S3ClientOptions& o, std::shared_ptr<CredentialProvider> creds, std::string bucket, Endpoint endpoint,
           bool path_style);
  Status error_status(const Call& c, const HttpResponse& r) const;

  S3ClientOptions options_;
  std::shared_ptr<CredentialProvider> creds_;
  std::string bucket_;
  Endpoint endpoint_;  // the host requests go to (bucket.host for virtual-hosted style)
  bool path_style_;
  std::unique_ptr<HttpClient> http_;
};

// The x-amz-meta-* headers for `name` = `value`.
inline std::pair<std::string, std::string> meta_header(const std::string& name, const std::string& value) {
  return {"x-amz-meta-" + name, value};
}

}  // namespace ferry::s3
