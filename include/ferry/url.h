// ferry://HOST[:PORT]/PATH URLs.
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

  std::string to_string() const;
};

// Parses "ferry://host:7400/dest/dir", "ferry://[::1]:7400/", "ferry://host/dest".
// Percent-escapes in the path are decoded (%20 -> space). kUsage error naming the URL.
Result<FerryUrl> parse_ferry_url(const std::string& text);

// "127.0.0.1:7400", "[::1]:0" -> host, port. kUsage error on bad input.
Status parse_host_port(const std::string& text, std::string* host, uint16_t* port);

}  // namespace ferry
