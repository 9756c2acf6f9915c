#include "s3/s3_responses.h"

#include <charconv>
#include <ctime>

#include "s3/xml.h"

namespace ferry::s3 {
namespace {

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string text_of(const XmlNode& n, std::string_view child) { return trim(n.child_text(child)); }

template <class T>
bool to_number(const std::string& s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

Status unexpected(std::string_view what, const std::string& why) {
  return Status(Error::kProtocol, "unexpected " + std::string(what) + ": " + why);
}

}  // namespace

std::string strip_quotes(std::string s) {
  s = trim(std::move(s));
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  // Some stores send &quot; already decoded; others wrap twice.
  while (!s.empty() && s.front() == '"') s.erase(0, 1);
  while (!s.empty() && s.back() == '"') s.pop_back();
  return s;
}

int64_t parse_iso8601_utc(const std::string& text) {
  std::tm tm{};
  if (!strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

bool parse_error_body(std::string_view body, S3ErrorBody* out) {
  auto doc = parse_xml(body, "error response");
  if (!doc || doc->name != "Error") return false;
  out->code = text_of(*doc, "Code");
  out->message = text_of(*doc, "Message");
  return !out->code.empty();
}

Result<std::string> parse_initiate_multipart(std::string_view body, std::string_view what) {
  auto doc = parse_xml(body, what);
  if (!doc) return doc.status();
  if (doc->name != "InitiateMultipartUploadResult") return unexpected(what, "root element <" + doc->name + ">");
  std::string id = text_of(*doc, "UploadId");
  if (id.empty() || id.size() > 1024) return unexpected(what, "missing or oversized UploadId");
  return id;
}

Result<ListPartsPage> parse_list_parts(std::string_view body, std::string_view what) {
  auto doc = parse_xml(body, what);
  if (!doc) return doc.status();
  if (doc->name != "ListPartsResult") return unexpected(what, "root element <" + doc->name + ">");
  ListPartsPage page;
  page.truncated = text_of(*doc, "IsTruncated") == "true";
  std::string marker = text_of(*doc, "NextPartNumberMarker");
  if (!marker.empty() && !to_number(marker, &page.next_marker)) return unexpected(what, "bad NextPartNumberMarker");
  for (const auto& c : doc->children) {
    if (c.name != "Part") continue;
    PartInfo p;
    if (!to_number(text_of(c, "PartNumber"), &p.number) || p.number < 1 || p.number > 10000)
      return unexpected(what, "bad PartNumber");
    std::string size = text_of(c, "Size");
    if (!size.empty() && !to_number(size, &p.size)) return unexpected(what, "bad part Size");
    p.etag = strip_quotes(c.child_text("ETag"));
    page.parts.push_back(std::move(p));
  }
  if (page.truncated && page.next_marker == 0) return unexpected(what, "truncated without NextPartNumberMarker");
  return page;
}

Result<ListUploadsPage> parse_list_uploads(std::string_view body, std::string_view what) {
  auto doc = parse_xml(body, what);
  if (!doc) return doc.status();
  if (doc->name != "ListMultipartUploadsResult") return unexpected(what, "root element <" + doc->name + ">");
  ListUploadsPage page;
  page.truncated = text_of(*doc, "IsTruncated") == "true";
  page.next_key_marker = doc->child_text("NextKeyMarker");
  page.next_upload_id_marker = text_of(*doc, "NextUploadIdMarker");
  for (const auto& c : doc->children) {
    if (c.name != "Upload") continue;
    UploadInfo u;
    u.key = c.child_text("Key");
    u.upload_id = text_of(c, "UploadId");
    u.initiated = text_of(c, "Initiated");
    u.initiated_unix = parse_iso8601_utc(u.initiated);
    if (u.key.empty() || u.upload_id.empty()) return unexpected(what, "an Upload without Key or UploadId");
    page.uploads.push_back(std::move(u));
  }
  if (page.truncated && page.next_key_marker.empty()) return unexpected(what, "truncated without NextKeyMarker");
  return page;
}

Result<ListObjectsPage> parse_list_objects_v2(std::string_view body, std::string_view what) {
  auto doc = parse_xml(body, what);
  if (!doc) return doc.status();
  if (doc->name != "ListBucketResult") return unexpected(what, "root element <" + doc->name + ">");
  ListObjectsPage page;
  page.truncated = text_of(*doc, "IsTruncated") == "true";
  page.next_token = text_of(*doc, "NextContinuationToken");
  for (const auto& c : doc->children) {
    if (c.name != "Contents") continue;
    ObjectInfo o;
    o.key = c.child_text("Key");  // keys are not trimmed: blanks are legal in them
    if (!to_number(text_of(c, "Size"), &o.size)) return unexpected(what, "bad Size for key '" + o.key + "'");
    o.etag = strip_quotes(c.child_text("ETag"));
    if (o.key.empty()) return unexpected(what, "an object without a Key");
    page.objects.push_back(std::move(o));
  }
  if (page.truncated && page.next_token.empty()) return unexpected(what, "truncated without NextContinuationToken");
  return page;
}

Result<CompleteResult> parse_complete_multipart(std::string_view body, std::string_view what) {
  auto doc = parse_xml(body, what);
  if (!doc) return doc.status();
  CompleteResult r;
  if (doc->name == "Error") {
    r.is_error = true;
    r.error.code = text_of(*doc, "Code");
    r.error.message = text_of(*doc, "Message");
    return r;
  }
  if (doc->name != "CompleteMultipartUploadResult") return unexpected(what, "root element <" + doc->name + ">");
  r.etag = strip_quotes(doc->child_text("ETag"));
  return r;
}

}  // namespace ferry::s3
