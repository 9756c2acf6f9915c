// The credential chain: environment, shared files with profiles, and IMDSv2.
//
// FakeInstanceMetadata is a FAKE, named as such: EC2's metadata service exists only on EC2
// (and tests never leave loopback), so a small HTTP server on 127.0.0.1 plays it, reached
// through AWS_EC2_METADATA_SERVICE_ENDPOINT. It insists on the IMDSv2 session token.
#include "s3/credentials.h"

#include <atomic>
#include <boost/asio.hpp>

#include "s3_test_support.h"

namespace ferry::s3::test {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

class FakeInstanceMetadata {
 public:
  FakeInstanceMetadata() : acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeInstanceMetadata() {
    stop_ = true;
    asio::io_context io;
    tcp::socket s(io);
    boost::system::error_code ec;
    s.connect(acceptor_.local_endpoint(), ec);  // wakes accept()
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()); }
  int token_requests() const { return token_requests_; }
  int unauthorised() const { return unauthorised_; }

 private:
  void loop() {
    while (!stop_) {
      tcp::socket s(io_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stop_) continue;
      asio::streambuf buf;
      asio::read_until(s, buf, "\r\n\r\n", ec);
      if (ec) continue;
      std::string head(asio::buffers_begin(buf.data()), asio::buffers_end(buf.data()));
      std::string body;
      int status = 200;
      if (head.rfind("PUT /latest/api/token ", 0) == 0 && head.find("X-aws-ec2-metadata-token-ttl-seconds: 21600") != std::string::npos) {
        ++token_requests_;
        body = "TOKEN-123";
      } else if (head.find("X-aws-ec2-metadata-token: TOKEN-123") == std::string::npos) {
        ++unauthorised_;
        status = 401;
      } else if (head.rfind("GET /latest/meta-data/iam/security-credentials/ ", 0) == 0) {
        body = "render-node-role\n";
      } else if (head.rfind("GET /latest/meta-data/iam/security-credentials/render-node-role ", 0) == 0) {
        body = "{\n  \"Code\" : \"Success\",\n  \"Type\" : \"AWS-HMAC\",\n  \"AccessKeyId\" : \"ASIAEXAMPLE\",\n"
               "  \"SecretAccessKey\" : \"secret/EXAMPLE\",\n  \"Token\" : \"session-token-EXAMPLE\",\n"
               "  \"Expiration\" : \"2099-01-01T00:00:00Z\"\n}";
      } else {
        status = 404;
      }
      std::string resp = "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " + std::to_string(body.size()) +
                         "\r\nConnection: close\r\n\r\n" + body;
      asio::write(s, asio::buffer(resp), ec);
    }
  }
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<int> token_requests_{0}, unauthorised_{0};
};

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION",
                          "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_SERVICE_ENDPOINT"})
      ::unsetenv(v);
    ::setenv("AWS_SHARED_CREDENTIALS_FILE", (dir_ / "credentials").c_str(), 1);
    ::setenv("AWS_CONFIG_FILE", (dir_ / "config").c_str(), 1);
    ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  }
  TempDir dir_{"s3-creds"};
};

TEST_F(CredentialsTest, EnvironmentComesFirst) {
  std::ofstream(dir_ / "credentials") << "[default]\naws_access_key_id = FILE\naws_secret_access_key = F\n";
  ::setenv("AWS_ACCESS_KEY_ID", "ENV", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "E", 1);
  ::setenv("AWS_SESSION_TOKEN", "T", 1);
  auto c = resolve_credentials({});
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->access_key_id, "ENV");
  EXPECT_EQ(c->session_token, "T");
  EXPECT_EQ(c->source, "environment");
}

TEST_F(CredentialsTest, ProfilesFromTheCredentialsAndConfigFiles) {
  std::ofstream(dir_ / "credentials") << "# comment\n[default]\naws_access_key_id=D\naws_secret_access_key=DS\n\n"
                                          "[studio]\naws_access_key_id = S \naws_secret_access_key = SS\naws_session_token = ST\n";
  std::ofstream(dir_ / "config") << "[default]\nregion = eu-west-1\n[profile farm]\naws_access_key_id = CFG\n"
                                     "aws_secret_access_key = CS\nregion = ap-south-1\ns3 =\n  max_concurrent_requests = 20\n";
  auto d = resolve_credentials({});
  ASSERT_TRUE(d);
  EXPECT_EQ(d->access_key_id, "D");
  ::setenv("AWS_PROFILE", "studio", 1);
  auto s = resolve_credentials({});
  ASSERT_TRUE(s);
  EXPECT_EQ(s->access_key_id, "S");
  EXPECT_EQ(s->session_token, "ST");
  EXPECT_NE(s->source.find("profile 'studio'"), std::string::npos);
  CredentialOptions farm;
  farm.profile = "farm";  // only in the config file, as "[profile farm]"
  auto f = resolve_credentials(farm);
  ASSERT_TRUE(f) << f.status().message();
  EXPECT_EQ(f->access_key_id, "CFG");
  EXPECT_EQ(resolve_region("", farm), "ap-south-1");
  EXPECT_EQ(resolve_region("", {}), "us-east-1");  // AWS_PROFILE=studio has no region
  ::unsetenv("AWS_PROFILE");
  EXPECT_EQ(resolve_region("", {}), "eu-west-1");
  ::setenv("AWS_REGION", "us-west-2", 1);
  EXPECT_EQ(resolve_region("", {}), "us-west-2");
  EXPECT_EQ(resolve_region("ca-central-1", {}), "ca-central-1");
}

TEST_F(CredentialsTest, NothingFoundNamesEverySourceTried) {
  std::ofstream(dir_ / "credentials") << "[other]\naws_access_key_id = X\n";
  ::setenv("AWS_ACCESS_KEY_ID", "ONLY-THE-ID", 1);
  ::setenv("AWS_PROFILE", "other", 1);
  auto c = resolve_credentials({});
  ASSERT_FALSE(c);
  EXPECT_EQ(c.status().code(), Error::kUsage);
  std::string m = c.status().message();
  EXPECT_NE(m.find("no AWS credentials found (tried: environment (AWS_SECRET_ACCESS_KEY is not set)"), std::string::npos) << m;
  EXPECT_NE(m.find("profile 'other' (no aws_secret_access_key)"), std::string::npos) << m;
  EXPECT_NE(m.find("EC2 instance metadata (disabled"), std::string::npos) << m;
}

TEST_F(CredentialsTest, InstanceMetadataWithAnImdsV2Token) {
  FakeInstanceMetadata imds;
  ::unsetenv("AWS_EC2_METADATA_DISABLED");
  ::setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint().c_str(), 1);
  auto c = resolve_credentials({});
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->access_key_id, "ASIAEXAMPLE");
  EXPECT_EQ(c->secret_access_key, "secret/EXAMPLE");
  EXPECT_EQ(c->session_token, "session-token-EXAMPLE");
  EXPECT_EQ(c->expires_unix, 4070908800);
  EXPECT_NE(c->source.find("render-node-role"), std::string::npos);
  EXPECT_EQ(imds.token_requests(), 1);
  EXPECT_EQ(imds.unauthorised(), 0);
}

TEST_F(CredentialsTest, UnreachableInstanceMetadataFailsQuickly) {
  ::unsetenv("AWS_EC2_METADATA_DISABLED");
  // A loopback port nobody listens on: refused at once.
  ::setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ("http://127.0.0.1:" + std::to_string(free_port())).c_str(), 1);
  auto c = resolve_credentials({});
  ASSERT_FALSE(c);
  EXPECT_NE(c.status().message().find("EC2 instance metadata: cannot connect"), std::string::npos) << c.status().message();
}

}  // namespace
}  // namespace ferry::s3::test
