// HTTPS to a real server: s3rver with a self-signed certificate made for the test. The peer
// is verified: trusted through --ca/AWS_CA_BUNDLE it works; untrusted or for another name it
// is refused at once (exit 6), not retried.
#include "s3_test_support.h"

namespace ferry::s3::test {
namespace {

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    use_s3rver_credentials();
    server_.start({"bkt"}, /*tls=*/true);
    src_ = tmp_ / "frame.exr";
    write_random_file(src_, 20ull << 20, 1);  // multipart: several requests on pooled TLS connections
  }
  S3rver server_;
  TempDir tmp_{"s3-tls"};
  std::string src_;
};

TEST_F(TlsTest, UploadOverHttpsWithTheTrustedCertificate) {
  S3Options o = server_.options();
  o.part_size = 5ull << 20;
  TransferReport r = send_files({src_}, {"bkt", "tls/"}, o, SendOptions{});
  ASSERT_TRUE(r.status.is_ok()) << r.status.message();
  auto back = get_object({"bkt", ""}, "tls/frame.exr", o);
  ASSERT_TRUE(back) << back.status().message();
  EXPECT_TRUE(*back == read_file(src_));
}

TEST_F(TlsTest, AwsCaBundleIsHonouredByTheCli) {
  auto r = run(kFerry + " send --no-progress --state-dir '" + (tmp_ / "state") + "' --endpoint " + server_.endpoint() +
                   " '" + src_ + "' s3://bkt/cli/",
               "AWS_CA_BUNDLE='" + server_.ca_file() + "'");
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(TlsTest, UntrustedCertificateIsRefusedWithoutRetries) {
  auto r = run(kFerry + " send --no-progress --state-dir '" + (tmp_ / "state") + "' --endpoint " + server_.endpoint() +
                   " '" + src_ + "' s3://bkt/x/",
               "-u AWS_CA_BUNDLE");
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("certificate verify failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("self-signed certificate"), std::string::npos) << r.err;
}

TEST_F(TlsTest, CertificateForAnotherNameIsRefused) {
  // The certificate names 127.0.0.1; "localhost" reaches the same server under another name.
  S3Options o = server_.options();
  o.endpoint = "https://localhost:" + std::to_string(server_.port());
  TransferReport r = send_files({src_}, {"bkt", "y/"}, o, SendOptions{});
  EXPECT_EQ(r.status.code(), Error::kRefused) << r.status.message();
  EXPECT_NE(r.status.message().find("certificate verify failed"), std::string::npos) << r.status.message();
}

}  // namespace
}  // namespace ferry::s3::test
