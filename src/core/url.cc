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

// Decodes %XX escapes; false on a bad or truncated escape.
bool percent_decode(std::string_view in, std::string* out) {
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '%') {
      out->push_back(c);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = hex_value(in[i + 1]);
    int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

}  // namespace

std::string url_with_path(const std::string& url, const std::string& path) {
  auto q = url.find('?');
  std::string base = url.substr(0, q), query = q == std::string::npos ? "" : url.substr(q);
  if (!base.empty() && base.back() != '/' && !path.empty() && path.front() != '/') base.push_back('/');
  return base + path + query;
}

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
  std::string_view query;
  if (slash == std::string_view::npos) {
    // "ferry://host:7400?token=..." (no path at all)
    if (auto q = authority.find('?'); q != std::string::npos) {
      query = rest.substr(q + 1);
      authority.resize(q);
    }
  } else if (auto q = raw_path.find('?'); q != std::string_view::npos) {
    query = raw_path.substr(q + 1);
    raw_path = raw_path.substr(0, q);
  }
  if (authority.empty()) return bad_url(text, "no host");
  FerryUrl url;
  if (Status st = parse_host_port(authority, &url.host, &url.port); !st) return bad_url(text, st.message());
  if (!percent_decode(raw_path, &url.path)) return bad_url(text, "bad or truncated %-escape");
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (kv.empty()) continue;
    auto eq = kv.find('=');
    std::string_view key = kv.substr(0, eq);
    std::string value;
    if (eq == std::string_view::npos || !percent_decode(kv.substr(eq + 1), &value))
      return bad_url(text, "malformed query parameter '" + std::string(key) + "'");
    if (key == "token") url.token = value;
    else if (key == "fp") url.fingerprint = value;
    else return bad_url(text, "unknown query parameter '" + std::string(key) + "' (known: token, fp)");
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
    if (c == '%' || c == '?' || c <= 0x20 || c == 0x7F) {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      p += buf;
    } else {
      p.push_back(static_cast<char>(c));
    }
  }
  std::string q;
  // Tokens are base64url and fingerprints hex: neither needs escaping, but a hand-made one might.
  auto add = [&q](const char* key, const std::string& v) {
    if (v.empty()) return;
    q += q.empty() ? "?" : "&";
    q += key;
    q += '=';
    for (unsigned char c : v) {
      if (c == '%' || c == '&' || c == '#' || c <= 0x20 || c >= 0x7F) {
        char buf[4];
        std::snprintf(buf, sizeof buf, "%%%02X", c);
        q += buf;
      } else {
        q.push_back(static_cast<char>(c));
      }
    }
  };
  add("token", token);
  add("fp", fingerprint);
  return "ferry://" + h + ":" + std::to_string(port) + "/" + p + q;
}

}  // namespace ferry
