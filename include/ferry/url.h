// ferry://HOST[:PORT]/PATH[?token=TOKEN&fp=sha256:HEX] URLs.
#pragma once

#include <cstdint>
#include <string>

#include "ferry/status.h"

namespace ferry {

inline constexpr uint16_t kDefaultPort = 7400;

struct FerryUrl {
  std::string host;   // name, IPv4, or IPv6 without brackets
  uint16_t port = kDefaultPort;
  std::string path;   // destination below the receiver's root, no leading '/', may be ""
  std::string token;        // ?token=: bearer token for AUTH ("" = none in the URL)
  std::string fingerprint;  // ?fp=: pinned certificate fingerprint, "sha256:<hex>" as given

  std::string to_string() const;
};

// Parses "ferry://host:7400/dest/dir", "ferry://[::1]:7400/", "ferry://host/dest",
// "ferry://host:7400/dest?token=abc&fp=sha256:0123...". Percent-escapes in the path and the
// query values are decoded (%20 -> space; a literal '?' in a path is %3F). Unknown query keys
// are an error (a typo must not silently drop the pin). kUsage error naming the URL (the
// token itself is never echoed).
Result<FerryUrl> parse_ferry_url(const std::string& text);

// "127.0.0.1:7400", "[::1]:0" -> host, port. kUsage error on bad input.
// `url` with `path` put before its query: ("ferry://h:1/?token=x", "in") -> "ferry://h:1/in?token=x".
// For scripts and tests that append a destination to the URL `ferry recv` prints.
std::string url_with_path(const std::string& url, const std::string& path);

Status parse_host_port(const std::string& text, std::string* host, uint16_t* port);

}  // namespace ferry
