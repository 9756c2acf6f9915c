#include "ferry/url.h"

#include <cctype>
#include <charconv>
#include <cstdio>

namespace ferry {
namespace {

Status bad_url(const std::string& text, const std::string& why) {
  return Status(Error::kUsage, "invalid URL '" + text + "': " + why + " (expected ferry://HOST[:PORT]/PATH)");
}

bool parse_port(std::string_view s, uint16_t* port) {
  if (s.empty()) return false;
  unsigned v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v > 65535) return false;
  *port = static_cast<uint16_t>(v);
  return true;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

Status parse_host_port(const std::string& text, std::string* host, uint16_t* port) {
  std::string_view s = text;
  std::string_view h, p;
  if (!s.empty() && s[0] == '[') {
    auto close = s.find(']');
    if (close == std::string_view::npos) return Status(Error::kUsage, "invalid address '" + text + "': missing ']'");
    h = s.substr(1, close - 1);
    std::string_view rest = s.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return Status(Error::kUsage, "invalid address '" + text + "'");
      p = rest.substr(1);
    }
  } else {
    auto colon = s.rfind(':');
    if (colon == std::string_view::npos) {
      h = s;
    } else {
      h = s.substr(0, colon);
      p = s.substr(colon + 1);
    }
  }
  if (h.empty()) return Status(Error::kUsage, "invalid address '" + text + "': empty host");
  *host = std::string(h);
  if (!p.empty() || (text.size() && text.back() == ':')) {
    if (!parse_port(p, port)) return Status(Error::kUsage, "invalid address '" + text + "': bad port");
  }
  return Status::ok();
}

Result<FerryUrl> parse_ferry_url(const std::string& text) {
  static constexpr std::string_view kScheme = "ferry://";
  if (text.compare(0, kScheme.size(), kScheme) != 0) return bad_url(text, "must start with ferry://");
  std::string_view rest = std::string_view(text).substr(kScheme.size());
  auto slash = rest.find('/');
  std::string authority(rest.substr(0, slash));
  std::string_view raw_path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
  if (authority.empty()) return bad_url(text, "no host");
  FerryUrl url;
  if (Status st = parse_host_port(authority, &url.host, &url.port); !st) return bad_url(text, st.message());
  for (size_t i = 0; i < raw_path.size(); ++i) {
    char c = raw_path[i];
    if (c == '%') {
      if (i + 2 >= raw_path.size()) return bad_url(text, "truncated %-escape");
      int hi = hex_value(raw_path[i + 1]);
      int lo = hex_value(raw_path[i + 2]);
      if (hi < 0 || lo < 0) return bad_url(text, "bad %-escape");
      url.path.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      url.path.push_back(c);
    }
  }
  // Tolerate "dest/" and "a//b" the way a shell user types them; the receiver validates the rest.
  std::string clean;
  size_t start = 0;
  while (start <= url.path.size()) {
    size_t end = url.path.find('/', start);
    if (end == std::string::npos) end = url.path.size();
    if (end > start) {
      if (!clean.empty()) clean.push_back('/');
      clean.append(url.path, start, end - start);
    }
    start = end + 1;
  }
  url.path = clean;
  return url;
}

std::string FerryUrl::to_string() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  // The inverse of parse_ferry_url's decoding: '%', controls, space and DEL are escaped.
  std::string p;
  for (unsigned char c : path) {
    if (c == '%' || c <= 0x20 || c == 0x7F) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      p += buf;
    } else {
      p.push_back(static_cast<char>(c));
    }
  }
  return "ferry://" + h + ":" + std::to_string(port) + "/" + p;
}

}  // namespace ferry
