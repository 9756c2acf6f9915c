// SigV4: AWS's published test vectors (tests/s3/data/sigv4, see its README) and a comparison
// with the signatures Debian's python3-botocore computes for the same S3 requests.
#include "s3/sigv4.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "s3/s3_client.h"
#include "s3_test_support.h"

namespace ferry::s3::test {
namespace {

const std::string kDataDir = std::string(__FILE__).substr(0, std::string(__FILE__).rfind('/')) + "/data";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "missing " << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// "key": "value" in the flat context.json.
std::string json_field(const std::string& doc, const std::string& key) {
  size_t k = doc.find("\"" + key + "\"");
  if (k == std::string::npos) return "";
  size_t c = doc.find(':', k);
  size_t q1 = doc.find('"', c);
  size_t nl = doc.find('\n', c);
  if (q1 == std::string::npos || q1 > nl) {  // not a string: true/false/number
    std::string v = doc.substr(c + 1, nl - c - 1);
    while (!v.empty() && (v.back() == ',' || v.back() == ' ')) v.pop_back();
    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
    return v;
  }
  return doc.substr(q1 + 1, doc.find('"', q1 + 1) - q1 - 1);
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

class AwsVectorTest : public ::testing::TestWithParam<std::string> {};

TEST_P(AwsVectorTest, MatchesTheCanonicalRequestStringToSignAndSignature) {
  std::string dir = kDataDir + "/sigv4/" + GetParam();
  std::string request = slurp(dir + "/request.txt");
  std::string context = slurp(dir + "/context.json");
  ASSERT_FALSE(request.empty());
  // Request line, header lines (a line starting with blanks continues the previous value),
  // a blank line, then the body.
  std::istringstream in(request);
  std::string line;
  std::getline(in, line);
  SigningRequest req;
  req.method = line.substr(0, line.find(' '));
  std::string target = line.substr(line.find(' ') + 1, line.rfind(' ') - line.find(' ') - 1);
  std::string path = target.substr(0, target.find('?'));
  req.canonical_uri = path;
  if (target.find('?') != std::string::npos) {
    std::stringstream qs(target.substr(target.find('?') + 1));
    std::string pair;
    while (std::getline(qs, pair, '&')) {
      size_t eq = pair.find('=');
      req.query.emplace_back(percent_decode(pair.substr(0, eq)), eq == std::string::npos ? "" : percent_decode(pair.substr(eq + 1)));
    }
  }
  std::string body;
  bool in_body = false;
  while (std::getline(in, line)) {
    if (in_body) {
      body += line;
      continue;
    }
    if (line.empty()) {
      in_body = true;
      continue;
    }
    size_t colon = line.find(':');
    req.headers.emplace_back(line.substr(0, colon), line.substr(colon + 1));
  }
  Credentials creds;
  creds.access_key_id = json_field(context, "access_key_id");
  creds.secret_access_key = json_field(context, "secret_access_key");
  creds.session_token = json_field(context, "token");
  req.payload_hash = sha256_hex(body.data(), body.size());
  if (json_field(context, "sign_body") == "true") req.headers.emplace_back("X-Amz-Content-SHA256", req.payload_hash);
  std::string ts = json_field(context, "timestamp");  // 2015-08-30T12:36:00Z
  std::string amz_date = ts.substr(0, 4) + ts.substr(5, 2) + ts.substr(8, 2) + "T" + ts.substr(11, 2) + ts.substr(14, 2) + ts.substr(17, 2) + "Z";

  SigV4Signature sig = sign_v4(req, creds, json_field(context, "region"), json_field(context, "service"), amz_date);
  EXPECT_EQ(sig.canonical_request, slurp(dir + "/header-canonical-request.txt"));
  EXPECT_EQ(sig.string_to_sign, slurp(dir + "/header-string-to-sign.txt"));
  EXPECT_EQ(sig.signature, slurp(dir + "/header-signature.txt"));
}

INSTANTIATE_TEST_SUITE_P(SigV4TestSuite, AwsVectorTest,
                         ::testing::Values("get-vanilla", "get-vanilla-query-order-key-case", "get-unreserved",
                                           "get-vanilla-with-session-token", "get-header-value-trim",
                                           "post-header-key-sort", "post-vanilla-query", "get-vanilla-query-unreserved",
                                           "post-x-www-form-urlencoded"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

TEST(SigV4, UriEncodingKeepsUnreservedAndOptionallySlash) {
  EXPECT_EQ(uri_encode("a b/c~d_e.f-g", true), "a%20b/c~d_e.f-g");
  EXPECT_EQ(uri_encode("a b/c", false), "a%20b%2Fc");
  EXPECT_EQ(uri_encode("\xc3\xa9+=&", false), "%C3%A9%2B%3D%26");
}

TEST(SigV4, Md5IsBase64ForContentMd5AndHexForETags) {
  Md5Digest d = md5("", 0);
  EXPECT_EQ(d.hex(), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(d.base64(), "1B2M2Y8AsgTpgAmY7PhCfg==");
}

// --- botocore ---------------------------------------------------------------------------

std::string json_str(const std::string& s) { return "\"" + json_escape(s) + "\""; }

std::string json_pairs(const HeaderList& l) {
  std::string j = "[";
  for (size_t i = 0; i < l.size(); ++i) j += (i ? "," : "") + std::string("[") + json_str(l[i].first) + "," + json_str(l[i].second) + "]";
  return j + "]";
}

std::string to_hex(const uint8_t* p, size_t n) {
  static const char* k = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    s += k[p[i] >> 4];
    s += k[p[i] & 15];
  }
  return s;
}

struct BotoCase {
  std::string name;
  std::string endpoint;
  bool path_style;
  std::string region;
  Credentials creds;
  S3Client::Call call;
};

TEST(SigV4, SignaturesMatchBotocoreForS3Requests) {
  ASSERT_TRUE(file_exists("/usr/bin/python3")) << "python3 missing: run packaging/install-deps.sh";
  auto probe = run("/usr/bin/python3 -c 'import botocore'");
  ASSERT_EQ(probe.exit_code, 0) << "python3-botocore is missing (packaging/install-deps.sh installs it): " << probe.err;

  Credentials plain{"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "", "test", 0};
  Credentials temp = plain;
  temp.session_token = "FwoGZXIvYXdzEJr//////////wEaDOz+token/with=chars";
  static const std::string xml = "<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"abc\"</ETag></Part></CompleteMultipartUpload>";
  static std::vector<uint8_t> part(1000);
  for (size_t i = 0; i < part.size(); ++i) part[i] = static_cast<uint8_t>(i * 7);
  Md5Digest part_md5 = md5(part.data(), part.size());

  std::vector<BotoCase> cases;
  cases.push_back({"upload part, unsigned payload", "http://127.0.0.1:9000", true, "us-east-1", plain,
                   S3Client::Call("PUT", "plates/shot 010/frame.0001.exr", {{"partNumber", "3"}, {"uploadId", "abc+def/=="}},
                                  {{"Content-MD5", part_md5.base64()}}, part.data(), part.size(), false)});
  cases.push_back({"complete, signed XML body, unicode key", "http://127.0.0.1:9000", true, "eu-west-1", plain,
                   S3Client::Call("POST", "caf\xc3\xa9/\xc3\xbc ber+plus.exr", {{"uploadId", "id-1"}},
                                  {{"Content-Type", "application/xml"}}, reinterpret_cast<const uint8_t*>(xml.data()), xml.size(), true)});
  cases.push_back({"list objects v2 with an awkward prefix", "http://localhost:4568", true, "us-east-1", plain,
                   S3Client::Call("GET", "", {{"list-type", "2"}, {"prefix", "a b/\xc3\xa7*"}, {"continuation-token", "1/2+3="}})});
  cases.push_back({"metadata copy with a session token", "https://minio.example.com:9443", true, "us-west-2", temp,
                   S3Client::Call("PUT", "k/v", {},
                                  {{"x-amz-meta-ferry-xxh3", "0123456789abcdef0123456789abcdef"},
                                   {"x-amz-copy-source", "/bkt/k/v"}, {"x-amz-metadata-directive", "REPLACE"}})});
  cases.push_back({"virtual-hosted HEAD on AWS", "", false, "ap-southeast-2", plain, S3Client::Call("HEAD", "dir/obj~1")});

  std::string input;
  std::vector<SigV4Signature> ours;
  for (const auto& c : cases) {
    S3ClientOptions o;
    o.endpoint = c.endpoint;
    o.path_style = c.path_style;
    o.region = c.region;
    auto client = S3Client::create(o, std::make_shared<CredentialProvider>(c.creds), "bkt");
    ASSERT_TRUE(client) << client.status().message();
    SigV4Signature sig;
    HttpRequest req = (*client)->sign_request(c.call, c.creds, "20261129T073822Z", &sig);
    ours.push_back(sig);
    const Endpoint& ep = (*client)->endpoint();
    std::string base_path = c.path_style ? "/bkt/" : "/";
    input += "{\"method\":" + json_str(c.call.method) + ",\"endpoint\":" + json_str(ep.to_string()) +
             ",\"base_path\":" + json_str(base_path) + ",\"key\":" + json_str(c.call.key) +
             ",\"headers\":" + json_pairs(c.call.headers) + ",\"params\":" + json_pairs(c.call.query) +
             ",\"body_hex\":" + json_str(to_hex(c.call.body, c.call.body_size)) +
             ",\"unsigned\":" + (c.call.sign_body ? "false" : "true") + ",\"region\":" + json_str(c.region) +
             ",\"access\":" + json_str(c.creds.access_key_id) + ",\"secret\":" + json_str(c.creds.secret_access_key) +
             ",\"token\":" + json_str(c.creds.session_token) + ",\"timestamp\":\"20261129T073822Z\"}\n";
  }
  TempDir tmp("sigv4-boto");
  std::ofstream(tmp / "in.jsonl") << input;
  auto r = run("/usr/bin/python3 '" + kDataDir + "/botocore_sign.py' < '" + (tmp / "in.jsonl") + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(std::getline(lines, line)) << "botocore answered " << i << " of " << cases.size();
    // Pull the two strings out of botocore's JSON line (json.dumps escapes \n as \\n).
    auto field = [&](const std::string& key) {
      size_t k = line.find("\"" + key + "\": \"");
      std::string v;
      for (size_t p = k + key.size() + 5; p < line.size() && line[p] != '"'; ++p) {
        if (line[p] == '\\') {
          ++p;
          v += line[p] == 'n' ? '\n' : line[p];
        } else {
          v += line[p];
        }
      }
      return v;
    };
    EXPECT_EQ(ours[i].canonical_request, field("canonical_request")) << cases[i].name;
    EXPECT_EQ(ours[i].authorization, field("authorization")) << cases[i].name;
  }
}

}  // namespace
}  // namespace ferry::s3::test
