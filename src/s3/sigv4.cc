#include "s3/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdio>
#include <ctime>

namespace ferry::s3 {
namespace {

std::string hex(const uint8_t* p, size_t n) {
  static const char* kDigits = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 15];
  }
  return out;
}

std::string hmac(std::string_view key, std::string_view data) {
  uint8_t out[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const uint8_t*>(data.data()),
       data.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Canonical header value: leading/trailing blanks removed, inner runs of blanks squeezed to
// one space (SigV4 "trimall").
std::string trim_all(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string uri_encode(std::string_view s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3 / 2);
  for (unsigned char c : s) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (unreserved || (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string sha256_hex(const void* data, size_t len) {
  uint8_t out[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_Digest(data, len, out, &n, EVP_sha256(), nullptr);
  return hex(out, n);
}

std::string amz_date_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

Md5Digest md5(const void* data, size_t len) {
  Md5Digest d{};
  unsigned n = 0;
  EVP_Digest(data, len, d.bytes, &n, EVP_md5(), nullptr);
  return d;
}

std::string Md5Digest::hex() const { return s3::hex(bytes, sizeof bytes); }

std::string Md5Digest::base64() const {
  unsigned char out[32];
  int n = EVP_EncodeBlock(out, bytes, sizeof bytes);
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

SigV4Signature sign_v4(const SigningRequest& req, const Credentials& creds, std::string_view region,
                       std::string_view service, std::string_view amz_date) {
  SigV4Signature sig;
  sig.added_headers.emplace_back("X-Amz-Date", std::string(amz_date));
  if (!creds.session_token.empty()) sig.added_headers.emplace_back("X-Amz-Security-Token", creds.session_token);

  // Headers: lower-case names, sorted; repeated names joined with ',' in their order.
  std::vector<std::pair<std::string, std::string>> hs;
  for (const auto& [k, v] : req.headers) hs.emplace_back(lower(k), trim_all(v));
  for (const auto& [k, v] : sig.added_headers) hs.emplace_back(lower(k), trim_all(v));
  std::stable_sort(hs.begin(), hs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string canon_headers, signed_headers;
  for (size_t i = 0; i < hs.size(); ++i) {
    if (i > 0 && hs[i].first == hs[i - 1].first) {
      canon_headers.pop_back();  // the '\n'
      canon_headers += "," + hs[i].second + "\n";
      continue;
    }
    canon_headers += hs[i].first + ":" + hs[i].second + "\n";
    if (!signed_headers.empty()) signed_headers += ";";
    signed_headers += hs[i].first;
  }

  // Query: each name and value encoded, then sorted by name, then value.
  std::vector<std::pair<std::string, std::string>> qs;
  for (const auto& [k, v] : req.query) qs.emplace_back(uri_encode(k, false), uri_encode(v, false));
  std::sort(qs.begin(), qs.end());
  std::string canon_query;
  for (const auto& [k, v] : qs) {
    if (!canon_query.empty()) canon_query += "&";
    canon_query += k + "=" + v;
  }

  sig.canonical_request = req.method + "\n" + (req.canonical_uri.empty() ? "/" : req.canonical_uri) + "\n" +
                          canon_query + "\n" + canon_headers + "\n" + signed_headers + "\n" + req.payload_hash;
  std::string date(amz_date.substr(0, 8));
  std::string scope = date + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";
  sig.string_to_sign = "AWS4-HMAC-SHA256\n" + std::string(amz_date) + "\n" + scope + "\n" +
                       sha256_hex(sig.canonical_request.data(), sig.canonical_request.size());
  std::string k = hmac("AWS4" + creds.secret_access_key, date);
  k = hmac(k, region);
  k = hmac(k, service);
  k = hmac(k, "aws4_request");
  std::string raw = hmac(k, sig.string_to_sign);
  sig.signature = hex(reinterpret_cast<const uint8_t*>(raw.data()), raw.size());
  sig.authorization = "AWS4-HMAC-SHA256 Credential=" + creds.access_key_id + "/" + scope +
                      ", SignedHeaders=" + signed_headers + ", Signature=" + sig.signature;
  return sig;
}

}  // namespace ferry::s3
