// s3://BUCKET/PREFIX/ destinations and the S3 endpoint they are reached at.
#pragma once

#include <cstdint>
#include <string>

#include "ferry/status.h"

namespace ferry::s3 {

// Where objects go: key = prefix + relative path. The prefix is a "directory": empty, or
// ending in '/' (s3://b/plates and s3://b/plates/ both give "plates/").
struct S3Target {
  std::string bucket;
  std::string prefix;

  std::string key_for(const std::string& relative_path) const { return prefix + relative_path; }
  std::string to_string() const { return "s3://" + bucket + "/" + prefix; }
};

bool is_s3_url(const std::string& text);

// Parses "s3://bucket", "s3://bucket/", "s3://bucket/a/b/". The bucket name must follow
// S3's rules (3..63 of a-z 0-9 . -, starting and ending with a letter or digit; upper case
// and '_' are accepted for older S3-compatible stores). kUsage error naming the URL.
Result<S3Target> parse_s3_url(const std::string& text);

struct Endpoint {
  bool https = true;
  std::string host;  // name or IP (IPv6 without brackets)
  uint16_t port = 443;

  // "host" or "host:port" (the port only when not the scheme's default), for Host headers.
  std::string host_header() const;
  std::string to_string() const;
};

// Parses "http://127.0.0.1:9000", "https://minio.example.com", "https://[::1]:9000/".
Result<Endpoint> parse_endpoint(const std::string& text);

// True for IPv4/IPv6 literals and "localhost": such endpoints cannot do virtual-hosted
// bucket names, so requests use path style there.
bool is_ip_or_localhost(const std::string& host);

}  // namespace ferry::s3
