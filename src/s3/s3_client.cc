#include "s3/s3_client.h"

#include <algorithm>
#include <charconv>
#include <random>
#include <thread>

#include "core/log.h"
#include "s3/crc32c.h"
#include "s3/xml.h"

namespace ferry::s3 {
namespace {

bool retryable_code(const std::string& code) {
  return code == "SlowDown" || code == "RequestTimeout" || code == "InternalError" || code == "ServiceUnavailable" ||
         code == "RequestTimeTooSkewed";
}

std::chrono::milliseconds retry_after(const HttpResponse& r) {
  std::string v = r.header("retry-after");
  unsigned secs = 0;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), secs);
  if (v.empty() || ec != std::errc()) return std::chrono::milliseconds(0);
  return std::chrono::milliseconds(std::min(secs, 60u) * 1000ull);
}

std::chrono::milliseconds backoff(const RetryOptions& o, int attempt) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t ceiling = static_cast<uint64_t>(o.base.count()) << std::min(attempt, 20);
  ceiling = std::min<uint64_t>(ceiling, static_cast<uint64_t>(o.cap.count()));
  std::uniform_int_distribution<uint64_t> d(0, ceiling);
  return std::chrono::milliseconds(d(rng));
}

std::string encode_query(const HeaderList& q) {
  std::vector<std::pair<std::string, std::string>> e;
  for (const auto& [k, v] : q) e.emplace_back(uri_encode(k, false), uri_encode(v, false));
  std::sort(e.begin(), e.end());
  std::string out;
  for (const auto& [k, v] : e) out += (out.empty() ? "" : "&") + k + "=" + v;
  return out;
}

}  // namespace

std::string HeadResult::meta(std::string_view name) const {
  for (const auto& [k, v] : metadata)
    if (k == name) return v;
  return {};
}

S3Client::S3Client(const S3ClientOptions& o, std::shared_ptr<CredentialProvider> creds, std::string bucket,
                   Endpoint endpoint, bool path_style)
    : options_(o), creds_(std::move(creds)), bucket_(std::move(bucket)), endpoint_(std::move(endpoint)),
      path_style_(path_style) {}

Result<std::unique_ptr<S3Client>> S3Client::create(const S3ClientOptions& o, std::shared_ptr<CredentialProvider> creds,
                                                   const std::string& bucket) {
  Endpoint ep;
  if (o.endpoint.empty()) {
    ep.https = true;
    ep.host = "s3." + o.region + ".amazonaws.com";
    ep.port = 443;
  } else {
    auto p = parse_endpoint(o.endpoint);
    if (!p) return p.status();
    ep = *p;
  }
  // Virtual-hosted style needs a DNS name per bucket; an IP, localhost or a dotted bucket
  // (which breaks the TLS wildcard) cannot have one.
  bool path_style = o.path_style || is_ip_or_localhost(ep.host) || bucket.find('.') != std::string::npos;
  if (!path_style) ep.host = bucket + "." + ep.host;
  auto http = HttpClient::create(ep, o.http);
  if (!http) return http.status();
  std::unique_ptr<S3Client> c(new S3Client(o, std::move(creds), bucket, ep, path_style));
  c->http_ = std::move(*http);
  return c;
}

HttpRequest S3Client::sign_request(const Call& c, const Credentials& creds, const std::string& amz_date,
                                   SigV4Signature* sig_out) const {
  std::string uri = path_style_ ? "/" + uri_encode(bucket_, false) : "";
  uri += "/" + uri_encode(c.key, true);
  std::string query = encode_query(c.query);
  SigningRequest sr;
  sr.method = c.method;
  sr.canonical_uri = uri;
  sr.query = c.query;
  sr.headers = c.headers;
  sr.headers.emplace_back("Host", endpoint_.host_header());
  sr.payload_hash = c.sign_body ? sha256_hex(c.body, c.body_size) : std::string(kUnsignedPayload);
  sr.headers.emplace_back("x-amz-content-sha256", sr.payload_hash);
  SigV4Signature sig = sign_v4(sr, creds, options_.region, "s3", amz_date);
  HttpRequest req;
  req.method = c.method;
  req.target = uri + (query.empty() ? "" : "?" + query);
  req.headers = std::move(sr.headers);
  for (const auto& h : sig.added_headers) req.headers.push_back(h);
  req.headers.emplace_back("Authorization", sig.authorization);
  req.body = c.body;
  req.body_size = c.body_size;
  req.max_response_body = c.max_response_body;
  if (sig_out) *sig_out = std::move(sig);
  return req;
}

Result<HttpResponse> S3Client::call(const Call& c) {
  Status last;
  for (int attempt = 0; attempt < options_.retry.max_attempts; ++attempt) {
    auto creds = creds_->get();
    if (!creds) return creds.status();
    HttpRequest req = sign_request(c, *creds, amz_date_now());
    ++requests;
    auto res = http_->execute(req);
    std::chrono::milliseconds wait = backoff(options_.retry, attempt);
    if (!res) {
      if (res.status().code() != Error::kNetwork) return res.status();
      last = res.status();
    } else {
      S3ErrorBody err;
      bool is_error = res->status >= 300 && parse_error_body(res->body, &err);
      bool retry = res->status == 500 || res->status == 502 || res->status == 503 || res->status == 504 ||
                   (is_error && retryable_code(err.code));
      if (!retry) return res;
      last = Status(Error::kNetwork, c.method + " " + object_url(c.key) + ": HTTP " + std::to_string(res->status) +
                                         (err.code.empty() ? "" : " " + err.code) +
                                         (err.message.empty() ? "" : ": " + err.message));
      wait = std::max(wait, retry_after(*res));
    }
    if (attempt + 1 < options_.retry.max_attempts) {
      ++retries;
      log::debug("retrying " + c.method + " " + object_url(c.key) + " in " + std::to_string(wait.count()) +
                 " ms: " + last.message());
      std::this_thread::sleep_for(wait);
    }
  }
  return Status(Error::kNetwork, last.message() + " (gave up after " + std::to_string(options_.retry.max_attempts) +
                                     " attempts)");
}

Status S3Client::error_status(const Call& c, const HttpResponse& r) const {
  S3ErrorBody err;
  parse_error_body(r.body, &err);
  std::string what = c.method + " " + object_url(c.key) + " at " + endpoint_.to_string();
  std::string detail = "HTTP " + std::to_string(r.status) + (err.code.empty() ? "" : " " + err.code) +
                       (err.message.empty() ? "" : ": " + err.message);
  if (r.status == 401 || r.status == 403) {
    std::string source;
    if (auto cr = creds_->get()) source = " (credentials from " + cr->source + ")";
    return Status(Error::kRefused, what + " refused: " + detail + source);
  }
  if (err.code == "NoSuchBucket") return Status(Error::kUsage, what + ": bucket '" + bucket_ + "' does not exist");
  return Status(Error::kRefused, what + " failed: " + detail);
}

const char* to_string(ChecksumAlgorithm a) { return a == ChecksumAlgorithm::kCrc32c ? "crc32c" : "md5"; }

BodyChecksum BodyChecksum::compute(ChecksumAlgorithm a, const uint8_t* data, size_t len) {
  BodyChecksum s;
  s.algorithm = a;
  if (a == ChecksumAlgorithm::kCrc32c) s.crc32c = ferry::s3::crc32c(data, len);
  else s.md5 = ferry::s3::md5(data, len);
  return s;
}

std::string BodyChecksum::base64() const {
  return algorithm == ChecksumAlgorithm::kCrc32c ? crc32c_base64(crc32c) : md5.base64();
}

namespace {
void add_checksum_headers(HeaderList* h, const BodyChecksum& sum) {
  if (sum.algorithm == ChecksumAlgorithm::kCrc32c) {
    h->emplace_back("x-amz-checksum-crc32c", sum.base64());
    h->emplace_back("x-amz-sdk-checksum-algorithm", "CRC32C");
  } else {
    h->emplace_back("Content-MD5", sum.base64());
  }
}
}  // namespace

Result<std::string> S3Client::put_object(const std::string& key, const uint8_t* data, size_t len, const Md5Digest& md5,
                                         const HeaderList& metadata) {
  BodyChecksum sum;
  sum.md5 = md5;
  return put_object(key, data, len, sum, metadata);
}

Result<std::string> S3Client::put_object(const std::string& key, const uint8_t* data, size_t len,
                                         const BodyChecksum& sum, const HeaderList& metadata) {
  Call c{"PUT", key, {}, metadata, data, len, false};
  add_checksum_headers(&c.headers, sum);
  c.headers.emplace_back("Content-Type", "application/octet-stream");
  auto r = call(c);
  if (!r) return r.status();
  if (r->status != 200) return error_status(c, *r);
  return strip_quotes(r->header("etag"));
}

Result<std::string> S3Client::create_multipart(const std::string& key, const HeaderList& metadata,
                                               ChecksumAlgorithm algorithm) {
  Call c{"POST", key, {{"uploads", ""}}, metadata};
  if (algorithm == ChecksumAlgorithm::kCrc32c) c.headers.emplace_back("x-amz-checksum-algorithm", "CRC32C");
  c.headers.emplace_back("Content-Type", "application/octet-stream");
  auto r = call(c);
  if (!r) return r.status();
  if (r->status != 200) return error_status(c, *r);
  return parse_initiate_multipart(r->body, "CreateMultipartUpload response for " + object_url(key));
}

Result<std::string> S3Client::upload_part(const std::string& key, const std::string& upload_id, uint32_t number,
                                          const uint8_t* data, size_t len, const Md5Digest& md5) {
  BodyChecksum sum;
  sum.md5 = md5;
  return upload_part(key, upload_id, number, data, len, sum);
}

Result<std::string> S3Client::upload_part(const std::string& key, const std::string& upload_id, uint32_t number,
                                          const uint8_t* data, size_t len, const BodyChecksum& sum) {
  Call c{"PUT", key, {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}}, {}, data, len, false};
  add_checksum_headers(&c.headers, sum);
  auto r = call(c);
  if (!r) return r.status();
  if (r->status != 200) return error_status(c, *r);
  return strip_quotes(r->header("etag"));
}

Result<std::string> S3Client::complete_multipart(const std::string& key, const std::string& upload_id,
                                                 const std::vector<CompletedPart>& parts) {
  std::string body = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (const auto& p : parts)
    body += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>\"" + xml_escape(p.etag) +
            "\"</ETag>" +
            (p.checksum_crc32c.empty() ? "" : "<ChecksumCRC32C>" + xml_escape(p.checksum_crc32c) + "</ChecksumCRC32C>") +
            "</Part>";
  body += "</CompleteMultipartUpload>";
  Call c{"POST", key, {{"uploadId", upload_id}}, {{"Content-Type", "application/xml"}},
         reinterpret_cast<const uint8_t*>(body.data()), body.size(), true};
  // The store may answer 200 and report an error in the body (after it started sending
  // whitespace to keep the connection alive): such an InternalError is retried like a 500.
  for (int round = 0; round < options_.retry.max_attempts; ++round) {
    auto r = call(c);
    if (!r) return r.status();
    if (r->status != 200) return error_status(c, *r);
    auto done = parse_complete_multipart(r->body, "CompleteMultipartUpload response for " + object_url(key));
    if (!done) return done.status();
    if (!done->is_error) return done->etag;
    if (!retryable_code(done->error.code))
      return Status(Error::kRefused, "POST " + object_url(key) + " (complete) failed: " + done->error.code + ": " +
                                         done->error.message);
    std::this_thread::sleep_for(backoff(options_.retry, round));
  }
  return Status(Error::kNetwork, "POST " + object_url(key) + " (complete): the store kept failing");
}

Status S3Client::abort_multipart(const std::string& key, const std::string& upload_id, bool* unsupported) {
  Call c{"DELETE", key, {{"uploadId", upload_id}}};
  auto r = call(c);
  if (!r) return r.status();
  if (unsupported) *unsupported = false;
  if (r->status == 204 || r->status == 200) return Status::ok();
  S3ErrorBody err;
  parse_error_body(r->body, &err);
  if (r->status == 404 && err.code == "NoSuchUpload") return Status::ok();  // already gone
  if (r->status == 405 || r->status == 501) {
    if (unsupported) *unsupported = true;
    return Status::ok();
  }
  return error_status(c, *r);
}

Result<std::vector<PartInfo>> S3Client::list_parts(const std::string& key, const std::string& upload_id,
                                                   bool* unsupported, bool* gone) {
  *unsupported = *gone = false;
  std::vector<PartInfo> all;
  uint32_t marker = 0;
  for (int page = 0; page < 20; ++page) {  // 10,000 parts at 1,000 a page, with margin
    Call c{"GET", key, {{"uploadId", upload_id}, {"max-parts", "1000"}}};
    if (marker) c.query.emplace_back("part-number-marker", std::to_string(marker));
    auto r = call(c);
    if (!r) return r.status();
    if (r->status == 405 || r->status == 501) {
      *unsupported = true;
      return all;
    }
    if (r->status == 404) {
      S3ErrorBody err;
      if (parse_error_body(r->body, &err) && err.code == "NoSuchUpload") {
        *gone = true;
        return all;
      }
    }
    if (r->status != 200) return error_status(c, *r);
    auto p = parse_list_parts(r->body, "ListParts response for " + object_url(key));
    if (!p) return p.status();
    for (auto& part : p->parts) all.push_back(std::move(part));
    if (!p->truncated) return all;
    if (p->next_marker <= marker) return Status(Error::kProtocol, "ListParts for " + object_url(key) + " did not advance");
    marker = p->next_marker;
  }
  return Status(Error::kProtocol, "ListParts for " + object_url(key) + ": too many pages");
}

Result<std::vector<UploadInfo>> S3Client::list_uploads(const std::string& prefix, bool* unsupported) {
  *unsupported = false;
  std::vector<UploadInfo> all;
  std::string key_marker, id_marker;
  for (int page = 0; page < 10'000; ++page) {
    Call c{"GET", "", {{"uploads", ""}, {"prefix", prefix}}};
    if (!key_marker.empty()) c.query.emplace_back("key-marker", key_marker);
    if (!id_marker.empty()) c.query.emplace_back("upload-id-marker", id_marker);
    auto r = call(c);
    if (!r) return r.status();
    if (r->status == 405 || r->status == 501) {
      *unsupported = true;
      return all;
    }
    if (r->status != 200) return error_status(c, *r);
    auto p = parse_list_uploads(r->body, "ListMultipartUploads response for " + object_url(prefix));
    if (!p) return p.status();
    for (auto& u : p->uploads) all.push_back(std::move(u));
    if (!p->truncated) return all;
    if (p->next_key_marker == key_marker && p->next_upload_id_marker == id_marker)
      return Status(Error::kProtocol, "ListMultipartUploads did not advance");
    key_marker = p->next_key_marker;
    id_marker = p->next_upload_id_marker;
  }
  return Status(Error::kProtocol, "ListMultipartUploads: too many pages");
}

Result<std::vector<ObjectInfo>> S3Client::list_objects(const std::string& prefix, int page_size) {
  std::vector<ObjectInfo> all;
  std::string token;
  for (int page = 0; page < 1'000'000; ++page) {
    Call c{"GET", "", {{"list-type", "2"}, {"prefix", prefix}, {"max-keys", std::to_string(page_size)}}};
    if (!token.empty()) c.query.emplace_back("continuation-token", token);
    auto r = call(c);
    if (!r) return r.status();
    if (r->status != 200) return error_status(c, *r);
    auto p = parse_list_objects_v2(r->body, "ListObjectsV2 response for " + object_url(prefix));
    if (!p) return p.status();
    for (auto& o : p->objects) all.push_back(std::move(o));
    if (!p->truncated) return all;
    if (p->next_token == token) return Status(Error::kProtocol, "ListObjectsV2 did not advance");
    token = p->next_token;
  }
  return Status(Error::kProtocol, "ListObjectsV2: too many pages");
}

Result<HeadResult> S3Client::head_object(const std::string& key) {
  Call c{"HEAD", key};
  auto r = call(c);
  if (!r) return r.status();
  HeadResult h;
  if (r->status == 404) return h;
  if (r->status != 200) return error_status(c, *r);
  h.found = true;
  std::string len = r->header("content-length");
  std::from_chars(len.data(), len.data() + len.size(), h.size);
  h.etag = strip_quotes(r->header("etag"));
  for (const auto& [k, v] : r->headers)
    if (k.rfind("x-amz-meta-", 0) == 0) h.metadata.emplace_back(k.substr(11), v);
  return h;
}

Status S3Client::replace_metadata(const std::string& key, const HeaderList& metadata) {
  Call c{"PUT", key, {}, metadata};
  c.headers.emplace_back("x-amz-copy-source", "/" + bucket_ + "/" + uri_encode(key, true));
  c.headers.emplace_back("x-amz-metadata-directive", "REPLACE");
  c.headers.emplace_back("Content-Type", "application/octet-stream");
  auto r = call(c);
  if (!r) return r.status();
  if (r->status != 200) return error_status(c, *r);
  // Like Complete, a copy can fail after the 200: the body is then an <Error>.
  S3ErrorBody err;
  if (parse_error_body(r->body, &err))
    return Status(Error::kRefused, "copy of " + object_url(key) + " onto itself failed: " + err.code + ": " + err.message);
  return Status::ok();
}

Status S3Client::delete_object(const std::string& key) {
  Call c{"DELETE", key};
  auto r = call(c);
  if (!r) return r.status();
  if (r->status == 204 || r->status == 200 || r->status == 404) return Status::ok();
  return error_status(c, *r);
}

Result<std::string> S3Client::get_object(const std::string& key, size_t max_size) {
  Call c{"GET", key};
  c.max_response_body = max_size;
  auto r = call(c);
  if (!r) return r.status();
  if (r->status != 200) return error_status(c, *r);
  return std::move(r->body);
}

}  // namespace ferry::s3
