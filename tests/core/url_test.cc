// Tests for include/ferry/url.h, src/core/url.cc: parse_ferry_url, parse_host_port,
// FerryUrl::to_string.
#include "ferry/url.h"

#include <gtest/gtest.h>

#include <string>

namespace ferry {
namespace {

FerryUrl url_of(const std::string& host, uint16_t port, const std::string& path) {
  FerryUrl u;
  u.host = host;
  u.port = port;
  u.path = path;
  return u;
}

FerryUrl url_or_fail(const std::string& text) {
  auto r = parse_ferry_url(text);
  EXPECT_TRUE(r.is_ok()) << "'" << text << "': " << r.status().to_string();
  return r ? *r : url_of("<failed>", 0, "<failed>");
}

void expect_bad_url(const std::string& text) {
  auto r = parse_ferry_url(text);
  EXPECT_FALSE(r.is_ok()) << "'" << text << "' accepted: host '" << (r ? r->host : "") << "' port "
                          << (r ? r->port : 0) << " path '" << (r ? r->path : "") << "'";
  if (!r) {
    EXPECT_EQ(r.status().code(), Error::kUsage) << text;
    EXPECT_NE(r.status().message().find(text), std::string::npos) << "message does not name the URL: "
                                                                   << r.status().message();
  }
}

// ---------------------------------------------------------------------------------------
// parse_ferry_url

TEST(ParseFerryUrl, HostPortAndPath) {
  FerryUrl u = url_or_fail("ferry://render01:7401/dest/dir");
  EXPECT_EQ(u.host, "render01");
  EXPECT_EQ(u.port, 7401);
  EXPECT_EQ(u.path, "dest/dir");
}

TEST(ParseFerryUrl, Ipv4Host) {
  FerryUrl u = url_or_fail("ferry://10.0.0.5:9000/x");
  EXPECT_EQ(u.host, "10.0.0.5");
  EXPECT_EQ(u.port, 9000);
  EXPECT_EQ(u.path, "x");
}

TEST(ParseFerryUrl, PortDefaultsTo7400) {
  FerryUrl u = url_or_fail("ferry://host/dest");
  EXPECT_EQ(u.host, "host");
  EXPECT_EQ(u.port, 7400);
  EXPECT_EQ(kDefaultPort, 7400);
  EXPECT_EQ(u.path, "dest");
}

TEST(ParseFerryUrl, NoPathMeansTheReceiverRoot) {
  for (const char* t : {"ferry://host", "ferry://host/", "ferry://host:7400", "ferry://host:7400/"}) {
    FerryUrl u = url_or_fail(t);
    EXPECT_EQ(u.host, "host") << t;
    EXPECT_EQ(u.port, 7400) << t;
    EXPECT_EQ(u.path, "") << t;
  }
}

TEST(ParseFerryUrl, Ipv6HostInBrackets) {
  FerryUrl u = url_or_fail("ferry://[::1]:7400/");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 7400);
  EXPECT_EQ(u.path, "");
  FerryUrl v = url_or_fail("ferry://[2001:db8::42]/in/box");
  EXPECT_EQ(v.host, "2001:db8::42");
  EXPECT_EQ(v.port, 7400);
  EXPECT_EQ(v.path, "in/box");
  FerryUrl w = url_or_fail("ferry://[fe80::1]:1/a");
  EXPECT_EQ(w.host, "fe80::1");
  EXPECT_EQ(w.port, 1);
}

TEST(ParseFerryUrl, PercentEscapesAreDecoded) {
  EXPECT_EQ(url_or_fail("ferry://h/my%20dir/a%20b.exr").path, "my dir/a b.exr");
  EXPECT_EQ(url_or_fail("ferry://h/%41%62%2a").path, "Ab*");
  EXPECT_EQ(url_or_fail("ferry://h/%c3%a9t%C3%A9").path, "été");
  EXPECT_EQ(url_or_fail("ferry://h/100%25").path, "100%");
  EXPECT_EQ(url_or_fail("ferry://h/end%20").path, "end ");  // escape as the last 3 characters
}

TEST(ParseFerryUrl, TrailingAndDoubledSlashesAreNormalised) {
  EXPECT_EQ(url_or_fail("ferry://h/dest/").path, "dest");
  EXPECT_EQ(url_or_fail("ferry://h/a//b").path, "a/b");
  EXPECT_EQ(url_or_fail("ferry://h//a///b//").path, "a/b");
  EXPECT_EQ(url_or_fail("ferry://h///").path, "");
  EXPECT_EQ(url_or_fail("ferry://h:7400//x/").path, "x");
}

TEST(ParseFerryUrl, UnicodeAndSpacesPassThrough) {
  EXPECT_EQ(url_or_fail("ferry://h/shots/プレート 010").path, "shots/プレート 010");
}

TEST(ParseFerryUrl, RejectsWrongScheme) {
  for (const char* t : {"http://h/x", "ferry:/h/x", "ferry:h/x", "ferr://h/x", "h:7400/x", "/local/path", "",
                        " ferry://h/x", "sftp://h/x"})
    expect_bad_url(t);
}

TEST(ParseFerryUrl, RejectsMissingHost) {
  for (const char* t : {"ferry://", "ferry:///dest", "ferry://:7400/dest", "ferry://[]:7400/x", "ferry://[]/x"})
    expect_bad_url(t);
}

TEST(ParseFerryUrl, RejectsBadPort) {
  for (const char* t : {"ferry://h:70000/", "ferry://h:65536/", "ferry://h:x/", "ferry://h:/x", "ferry://h:-1/",
                        "ferry://h:+80/", "ferry://h:80a/", "ferry://h:99999999999999999999/", "ferry://[::1]:/x",
                        "ferry://[::1]:x/"})
    expect_bad_url(t);
  EXPECT_EQ(url_or_fail("ferry://h:65535/").port, 65535);
}

TEST(ParseFerryUrl, RejectsMalformedBracketedHost) {
  for (const char* t : {"ferry://[::1/x", "ferry://[::1]x/y", "ferry://[::1]7400/"}) expect_bad_url(t);
}

TEST(ParseFerryUrl, RejectsTruncatedOrBadPercentEscape) {
  for (const char* t : {"ferry://h/%2", "ferry://h/a%", "ferry://h/%", "ferry://h/%zz", "ferry://h/%2g/x",
                        "ferry://h/%g2"})
    expect_bad_url(t);
}

// ---------------------------------------------------------------------------------------
// parse_host_port

TEST(ParseHostPort, Ipv4WithPort) {
  std::string host;
  uint16_t port = 1;
  Status st = parse_host_port("127.0.0.1:7400", &host, &port);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 7400);
}

TEST(ParseHostPort, BracketedIpv6WithPortZero) {
  std::string host;
  uint16_t port = 1;
  Status st = parse_host_port("[::1]:0", &host, &port);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 0);
}

TEST(ParseHostPort, WithoutPortLeavesThePortUnchanged) {
  for (const char* t : {"example.com", "[::1]"}) {
    std::string host;
    uint16_t port = 4242;
    Status st = parse_host_port(t, &host, &port);
    ASSERT_TRUE(st.is_ok()) << t << ": " << st.to_string();
    EXPECT_EQ(port, 4242) << t;
  }
  std::string host;
  uint16_t port = 4242;
  ASSERT_TRUE(parse_host_port("[::1]", &host, &port).is_ok());
  EXPECT_EQ(host, "::1");
}

TEST(ParseHostPort, Rejects) {
  for (const char* t : {"", ":80", "h:", "h:65536", "h:-1", "h:abc", "[::1", "[::1]80", "[]:80", "[::1]:",
                        "h:80:"}) {
    std::string host = "unchanged";
    uint16_t port = 4242;
    Status st = parse_host_port(t, &host, &port);
    EXPECT_FALSE(st.is_ok()) << "'" << t << "' accepted as '" << host << "' port " << port;
    EXPECT_EQ(st.code(), Error::kUsage) << t;
  }
}

// ---------------------------------------------------------------------------------------
// FerryUrl::to_string

TEST(FerryUrlToString, AlwaysSpellsOutThePort) {
  EXPECT_EQ((url_of("h", 7400, "a/b")).to_string(), "ferry://h:7400/a/b");
  EXPECT_EQ((url_of("10.0.0.1", 1, "")).to_string(), "ferry://10.0.0.1:1/");
}

TEST(FerryUrlToString, BracketsIpv6Hosts) {
  EXPECT_EQ((url_of("::1", 7400, "")).to_string(), "ferry://[::1]:7400/");
  EXPECT_EQ((url_of("2001:db8::42", 9, "x")).to_string(), "ferry://[2001:db8::42]:9/x");
}

TEST(FerryUrlToString, RoundTripsThroughParse) {
  for (const FerryUrl& in : std::initializer_list<FerryUrl>{url_of("h", 7400, "a/b"), url_of("::1", 0, ""), url_of("host.example", 65535, "x"),
                             url_of("h", 7401, "my dir/été")}) {
    FerryUrl out = url_or_fail(in.to_string());
    EXPECT_EQ(out.host, in.host) << in.to_string();
    EXPECT_EQ(out.port, in.port) << in.to_string();
    EXPECT_EQ(out.path, in.path) << in.to_string();
  }
}

TEST(FerryUrlToString, RoundTripsThroughParseForPathsWithPercentSign) {
  // parse_ferry_url decodes %-escapes, so to_string must encode '%' for the text to be a URL
  // that names the same path ("ferry://h:7400/100%" does not parse; "%41" would become "A").
  for (const char* path : {"100%", "a%41b", "50% off/x"}) {
    FerryUrl in = url_of("h", 7400, path);
    auto out = parse_ferry_url(in.to_string());
    EXPECT_TRUE(out.is_ok()) << in.to_string() << ": " << out.status().to_string();
    if (out) {
      EXPECT_EQ(out->path, in.path) << in.to_string();
    }
  }
}

// Token and certificate pin in the query (what `ferry recv` prints)

TEST(FerryUrlQuery, TokenAndFingerprintAreParsedAndThePathStaysClean) {
  std::string fp = "sha256:" + std::string(64, 'a');
  FerryUrl u = url_or_fail("ferry://127.0.0.1:7400/inbox/shots?token=AbC-_9&fp=" + fp);
  EXPECT_EQ(u.path, "inbox/shots");
  EXPECT_EQ(u.token, "AbC-_9");
  EXPECT_EQ(u.fingerprint, fp);
  FerryUrl root = url_or_fail("ferry://h:1/?token=t");
  EXPECT_EQ(root.path, "");
  EXPECT_EQ(root.token, "t");
  EXPECT_EQ(url_or_fail("ferry://h:1?fp=x").fingerprint, "x");
  EXPECT_EQ(url_or_fail("ferry://h/a%3Fb").path, "a?b");  // a literal '?' in a path is escaped
}

TEST(FerryUrlQuery, UnknownOrMalformedParametersAreRejected) {
  expect_bad_url("ferry://h/x?tokn=abc");  // a typo must not silently drop the token
  expect_bad_url("ferry://h/x?token");
  expect_bad_url("ferry://h/x?fp=%zz");
}

TEST(FerryUrlQuery, ToStringRoundTripsTokenAndFingerprint) {
  FerryUrl in = url_of("h", 7400, "a?b");
  in.token = "tok&en";
  in.fingerprint = "sha256:00";
  FerryUrl out = url_or_fail(in.to_string());
  EXPECT_EQ(out.path, "a?b") << in.to_string();
  EXPECT_EQ(out.token, "tok&en") << in.to_string();
  EXPECT_EQ(out.fingerprint, "sha256:00") << in.to_string();
}

TEST(FerryUrlQuery, UrlWithPathPutsThePathBeforeTheQuery) {
  EXPECT_EQ(url_with_path("ferry://h:1/?token=x&fp=y", "inbox"), "ferry://h:1/inbox?token=x&fp=y");
  EXPECT_EQ(url_with_path("ferry://h:1/", "a/b/"), "ferry://h:1/a/b/");
  EXPECT_EQ(url_with_path("ferry://h:1", "a"), "ferry://h:1/a");
}

}  // namespace
}  // namespace ferry
