// Typed views of the S3 XML responses ferry reads. Each parser takes the body and a name for
// messages, and fails with kProtocol on malformed or unexpected documents.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry::s3 {

struct S3ErrorBody {
  std::string code;     // "SlowDown", "AccessDenied", "NoSuchUpload", ...
  std::string message;
};
// <Error><Code>..</Code><Message>..</Message></Error>. Returns false if the body is not one.
bool parse_error_body(std::string_view body, S3ErrorBody* out);

Result<std::string> parse_initiate_multipart(std::string_view body, std::string_view what);  // UploadId

struct PartInfo {
  uint32_t number = 0;
  std::string etag;  // without quotes
  uint64_t size = 0;
};
struct ListPartsPage {
  std::vector<PartInfo> parts;
  bool truncated = false;
  uint32_t next_marker = 0;
};
Result<ListPartsPage> parse_list_parts(std::string_view body, std::string_view what);

struct UploadInfo {
  std::string key;
  std::string upload_id;
  std::string initiated;  // ISO 8601 as the server sent it
  int64_t initiated_unix = 0;
};
struct ListUploadsPage {
  std::vector<UploadInfo> uploads;
  bool truncated = false;
  std::string next_key_marker, next_upload_id_marker;
};
Result<ListUploadsPage> parse_list_uploads(std::string_view body, std::string_view what);

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;  // without quotes
};
struct ListObjectsPage {
  std::vector<ObjectInfo> objects;
  bool truncated = false;
  std::string next_token;
};
Result<ListObjectsPage> parse_list_objects_v2(std::string_view body, std::string_view what);

// The CompleteMultipartUpload response can be 200 with an <Error> body; this returns the
// final ETag or that error (kNetwork for InternalError/SlowDown, which may be retried).
struct CompleteResult {
  bool is_error = false;
  S3ErrorBody error;
  std::string etag;
};
Result<CompleteResult> parse_complete_multipart(std::string_view body, std::string_view what);

// "2026-11-29T07:38:22.000Z" -> seconds since the epoch; 0 if unparsable.
int64_t parse_iso8601_utc(const std::string& text);
std::string strip_quotes(std::string s);

}  // namespace ferry::s3
