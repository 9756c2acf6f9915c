// Authentication and TLS of the real ferryd against the real `ferry send`: tokens made and
// revoked with `ferryd token`, the daemon's own certificate and key (made by openssl),
// refusals that are clear at the client, write nothing and are counted in /metrics, and a
// loopback relay that shows what crosses the wire.
#include <gtest/gtest.h>

#include <cctype>

#include "../e2e/capturing_relay.h"
#include "daemon_util.h"

namespace ferry::test {
namespace {

// Nothing in the export, not even ferry's state folder (which only a session creates).
bool export_is_empty(const std::string& dir) {
  std::map<std::string, TreeItem> t;
  list_tree(dir, "", &t);
  struct stat st {};
  return t.empty() && lstat((dir + "/.ferry").c_str(), &st) != 0;
}

class DaemonAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    write_text(src_ / "secret.txt", "the plate of shot 010");
    good_ = layout_.new_token("artist");
    ASSERT_EQ(good_.rfind("ferry_", 0), 0u) << good_;
    ferryd_ = std::make_unique<Ferryd>(layout_.config_path);
    ASSERT_TRUE(ferryd_->ready()) << ferryd_->process().stderr_text();
  }
  void TearDown() override {
    if (!ferryd_) return;
    ferryd_->process().signal(SIGTERM);
    EXPECT_EQ(ferryd_->process().wait_exit(std::chrono::seconds(30)), 0) << ferryd_->process().stderr_text();
  }
  CommandResult send(const std::string& token, const std::string& dest) {
    return run_command(layout_.send_args(token, {"-q", src_ / "secret.txt", ferryd_->url(dest)}));
  }
  // A refused send: exit 6, the client's message names the cause, nothing written anywhere,
  // and the daemon counted one more authentication failure.
  void expect_refused(const CommandResult& r, const std::string& message, int64_t failures_before) {
    EXPECT_EQ(r.exit_code, 6) << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_TRUE(export_is_empty(layout_.export_path("plates")));
    EXPECT_TRUE(export_is_empty(layout_.outside()));
    EXPECT_EQ(ferryd_->wait_metric("ferryd_auth_failures_total", failures_before + 1), failures_before + 1)
        << ferryd_->process().stderr_text();
    EXPECT_EQ(metric_value(ferryd_->metrics(), "ferryd_sessions_total"), 0);
  }

  DaemonLayout layout_;
  TempDir src_{"auth-src"};
  std::string good_;
  std::unique_ptr<Ferryd> ferryd_;
};

TEST_F(DaemonAuthTest, WrongAndMissingTokensAreRefusedLoggedAndCounted) {
  expect_refused(send("ferry_" + std::string(64, '0'), "plates/x"), "authentication failed: unknown or revoked token", 0);
  EXPECT_NE(ferryd_->process().stderr_text().find("auth failure from sender 127.0.0.1:"), std::string::npos)
      << ferryd_->process().stderr_text();

  // No token at all (none in the URL, no --token, no $FERRY_TOKEN): the hint says where
  // tokens come from.
  auto r = run_command({FERRY_BINARY, "send", "-q", "--ca-file", layout_.cert(), src_ / "secret.txt",
                        ferryd_->url("plates/x")});
  expect_refused(r, "no token given", 1);
}

TEST_F(DaemonAuthTest, TokenRevokedWhileRunningIsRefusedOnTheNextConnection) {
  // A token made after the daemon started works at once (the store is re-read on change).
  std::string later = layout_.new_token("nightly");
  auto ok = send(later, "plates/a");
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(read_text(layout_.export_path("plates") + "/a/secret.txt"), "the plate of shot 010");

  auto revoke = run_command({FERRYD_BINARY, "token", "revoke", "--config", layout_.config_path, "nightly"});
  ASSERT_EQ(revoke.exit_code, 0) << revoke.err;
  auto r = send(later, "plates/b");
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("authentication failed: unknown or revoked token"), std::string::npos) << r.err;
  struct stat st {};
  EXPECT_NE(lstat((layout_.export_path("plates") + "/b").c_str(), &st), 0) << "a refused sender created a directory";
  EXPECT_EQ(ferryd_->wait_metric("ferryd_auth_failures_total", 1), 1);
  // Other tokens are unaffected.
  EXPECT_EQ(send(good_, "plates/c").exit_code, 0);
}

TEST_F(DaemonAuthTest, ExpiredTokenIsRefused) {
  std::string brief = layout_.new_token("brief", {"plates:rw"}, "1s");
  sleep(2);  // expiry has a one-second resolution: two seconds later it is certainly past
  expect_refused(send(brief, "plates/x"), "authentication failed: unknown or revoked token", 0);
}

TEST_F(DaemonAuthTest, TokenWithoutWriteAccessToTheExportIsRefused) {
  std::string reader = layout_.new_token("reader", {"plates:r"});
  expect_refused(send(reader, "plates/x"), "token has no write access to export 'plates'", 0);
  // An export the token was not granted gets the same answer whether it exists or not, so
  // a token cannot probe for export names.
  auto unknown = send(good_, "nosuch/x");
  EXPECT_EQ(unknown.exit_code, 6) << unknown.err;
  EXPECT_NE(unknown.err.find("token has no write access to export 'nosuch'"), std::string::npos) << unknown.err;
}

TEST_F(DaemonAuthTest, MismatchedFingerprintIsRefusedBeforeAnyFrame) {
  auto r = run_command({FERRY_BINARY, "send", "-q", "--token", good_, "--fingerprint", "sha256:" + std::string(64, '0'),
                        src_ / "secret.txt", ferryd_->url("plates/x")});
  expect_refused(r, "certificate fingerprint mismatch", 0);
  EXPECT_NE(r.err.find(ferryd_->fingerprint()), std::string::npos) << "the error names what the daemon presented: " << r.err;
}

TEST_F(DaemonAuthTest, ACertificateFromAnotherCaIsRefused) {
  TempDir other("other-ca");
  auto made = run_command({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                           "-keyout", other / "k.pem", "-out", other / "c.pem", "-days", "2", "-subj", "/CN=other",
                           "-addext", "subjectAltName=IP:127.0.0.1"});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  auto r = run_command({FERRY_BINARY, "send", "-q", "--token", good_, "--ca-file", other / "c.pem", src_ / "secret.txt",
                        ferryd_->url("plates/x")});
  expect_refused(r, "certificate was not accepted", 0);
}

// The daemon serves its own certificate: a client verifies it by the certificate file as CA
// or by its pinned fingerprint, and what crosses the wire is ciphertext.
TEST_F(DaemonAuthTest, TlsIsReallyOnWithTheDaemonsOwnCertificate) {
  std::string fp = ferryd_->fingerprint();
  auto openssl_fp = run_command({"openssl", "x509", "-in", layout_.cert(), "-noout", "-fingerprint", "-sha256"});
  ASSERT_EQ(openssl_fp.exit_code, 0);
  std::string hex;
  for (char c : openssl_fp.out.substr(openssl_fp.out.find('=') + 1))
    if (std::isxdigit(static_cast<unsigned char>(c))) hex.push_back(static_cast<char>(std::tolower(c)));
  EXPECT_EQ(fp, "sha256:" + hex) << "ferryd presents the certificate file it was configured with";

  auto pinned = run_command({FERRY_BINARY, "send", "--json", "--token", good_, "--fingerprint", fp, src_ / "secret.txt",
                             ferryd_->url("plates/pinned")});
  ASSERT_EQ(pinned.exit_code, 0) << pinned.err;
  EXPECT_NE(pinned.out.find("\"encrypted\":true"), std::string::npos) << pinned.out;
  EXPECT_EQ(read_text(layout_.export_path("plates") + "/pinned/secret.txt"), "the plate of shot 010");

  const std::string marker = "FERRYD-PLAINTEXT-MARKER-41c7";
  std::string body;
  for (int i = 0; i < 2000; ++i) body += marker + std::to_string(i) + "\n";
  write_text(src_ / "marked.txt", body);
  CapturingRelay relay(ferryd_->port());
  std::string via_relay = "ferry://127.0.0.1:" + std::to_string(relay.port()) + "/plates/relayed";
  auto r = run_command(layout_.send_args(good_, {"-q", "--compress", "none", src_ / "marked.txt", via_relay}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(layout_.export_path("plates") + "/relayed/marked.txt"), body);
  std::string wire = relay.captured();
  EXPECT_GT(wire.size(), body.size()) << "the relay carried the transfer";
  EXPECT_EQ(wire.find(marker), std::string::npos) << "file contents crossed the wire in the clear";
  EXPECT_EQ(wire.find(good_), std::string::npos) << "the token crossed the wire in the clear";
  EXPECT_EQ(wire.find("marked.txt"), std::string::npos) << "file names crossed the wire in the clear";
}

// The same capture against a plaintext ferryd sees the marker: the capture above would have
// noticed plaintext.
TEST(DaemonPlaintextTest, PlaintextOnBothSidesWorksAndTheCaptureSeesIt) {
  DaemonLayout layout({"plates"}, "", /*metrics=*/false, "127.0.0.1:0", /*plain=*/true);
  std::string token = layout.new_token("plain");
  Ferryd ferryd(layout.config_path);
  ASSERT_TRUE(ferryd.ready()) << ferryd.process().stderr_text();
  EXPECT_NE(ferryd.process().stderr_text().find("TLS is OFF"), std::string::npos);
  EXPECT_EQ(ferryd.fingerprint(), "");
  TempDir src("plain-src");
  const std::string marker = "FERRYD-PLAINTEXT-MARKER-41c7";
  write_text(src / "marked.txt", marker);
  CapturingRelay relay(ferryd.port());
  std::string via_relay = "ferry://127.0.0.1:" + std::to_string(relay.port()) + "/plates";
  auto r = run_command(layout.send_args(token, {"--json", "--compress", "none", src / "marked.txt", via_relay}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("\"encrypted\":false"), std::string::npos) << r.out;
  EXPECT_NE(relay.captured().find(marker), std::string::npos);
  // A TLS client against it fails with a hint instead of sending in the clear.
  auto tls = run_command({FERRY_BINARY, "send", "-q", "--token", token, "--insecure", src / "marked.txt", ferryd.url("plates/tls")});
  EXPECT_NE(tls.exit_code, 0);
  struct stat st {};
  EXPECT_NE(lstat((layout.export_path("plates") + "/tls").c_str(), &st), 0);
  ferryd.process().signal(SIGTERM);
  EXPECT_EQ(ferryd.process().wait_exit(std::chrono::seconds(30)), 0);
}

}  // namespace
}  // namespace ferry::test
