#include "s3/s3_url.h"

#include <arpa/inet.h>

#include <cctype>
#include <charconv>

namespace ferry::s3 {

bool is_s3_url(const std::string& text) { return text.rfind("s3://", 0) == 0; }

Result<S3Target> parse_s3_url(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status(Error::kUsage, "invalid S3 URL '" + text + "': " + why + " (expected s3://BUCKET/PREFIX/)");
  };
  if (!is_s3_url(text)) return bad("it does not start with s3://");
  std::string rest = text.substr(5);
  size_t slash = rest.find('/');
  S3Target t;
  t.bucket = rest.substr(0, slash);
  if (slash != std::string::npos) t.prefix = rest.substr(slash + 1);
  if (t.bucket.size() < 3 || t.bucket.size() > 63) return bad("the bucket name must be 3 to 63 characters");
  for (char c : t.bucket) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
    if (!ok) return bad("the bucket name has a character S3 does not allow");
  }
  auto alnum = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; };
  if (!alnum(t.bucket.front()) || !alnum(t.bucket.back())) return bad("the bucket name must start and end with a letter or digit");
  // Keys never start with '/', and "a//b" would make keys no tool can name back to a path.
  while (!t.prefix.empty() && t.prefix.front() == '/') t.prefix.erase(0, 1);
  if (t.prefix.find("//") != std::string::npos) return bad("empty path component in the prefix");
  if (t.prefix.find('\0') != std::string::npos) return bad("NUL in the prefix");
  if (t.prefix.size() > 900) return bad("prefix longer than 900 bytes (keys are at most 1024)");
  if (!t.prefix.empty() && t.prefix.back() != '/') t.prefix += '/';
  return t;
}

std::string Endpoint::host_header() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  if ((https && port == 443) || (!https && port == 80)) return h;
  return h + ":" + std::to_string(port);
}

std::string Endpoint::to_string() const { return (https ? "https://" : "http://") + host_header(); }

Result<Endpoint> parse_endpoint(const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Status(Error::kUsage, "invalid --endpoint '" + text + "': " + why + " (expected http[s]://HOST[:PORT])");
  };
  Endpoint e;
  std::string rest;
  if (text.rfind("https://", 0) == 0) {
    e.https = true;
    rest = text.substr(8);
  } else if (text.rfind("http://", 0) == 0) {
    e.https = false;
    rest = text.substr(7);
  } else {
    return bad("no http:// or https://");
  }
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find('/') != std::string::npos) return bad("a path after the host is not supported");
  e.port = e.https ? 443 : 80;
  std::string port_text;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos) return bad("missing ']'");
    e.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return bad("junk after ']'");
      port_text = rest.substr(close + 2);
    }
  } else {
    size_t colon = rest.rfind(':');
    e.host = rest.substr(0, colon);
    if (colon != std::string::npos) port_text = rest.substr(colon + 1);
  }
  if (e.host.empty()) return bad("empty host");
  if (!port_text.empty() || rest.back() == ':') {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || v == 0 || v > 65535) return bad("bad port");
    e.port = static_cast<uint16_t>(v);
  }
  return e;
}

bool is_ip_or_localhost(const std::string& host) {
  if (host == "localhost") return true;
  unsigned char buf[16];
  return inet_pton(AF_INET, host.c_str(), buf) == 1 || inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace ferry::s3
