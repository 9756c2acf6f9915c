// TLS and authentication, end to end on real loopback sockets: refused tokens and
// certificates (clear error at the client, nothing written, counted at the receiver), proof
// that the bytes on the wire are encrypted, exports and their write permission, limits.
#include <poll.h>

#include <atomic>
#include <cstdlib>
#include <mutex>

#include "e2e_util.h"
#include "ferry/url.h"
#include "capturing_relay.h"
#include "raw_client.h"

namespace ferry::test {
namespace {

// Empty apart from ferry's own state folder (which only a session creates)?
bool dir_is_empty(const std::string& dir) {
  std::map<std::string, TreeItem> t;
  list_tree(dir, "", &t);
  struct stat st {};
  return t.empty() && lstat((dir + "/.ferry").c_str(), &st) != 0;
}

// The receiver counts a refusal on its network thread, possibly just after the client saw it.
uint64_t wait_for_auth_failures(Receiver* r, uint64_t at_least) {
  for (int i = 0; i < 100 && r->metrics().auth_failures < at_least; ++i) usleep(20'000);
  return r->metrics().auth_failures;
}

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

// A CA and a server certificate for 127.0.0.1 signed by it, made with the openssl tool.
struct TestPki {
  explicit TestPki(const std::string& dir, const std::string& name) : dir_(dir), name_(name) {
    std::string p = dir + "/" + name;
    ok = sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + p +
            "-ca.key -out " + p + "-ca.pem -days 2 -subj /CN=" + name + "-ca") == 0;
    write_text(p + "-san.ext", "subjectAltName=IP:127.0.0.1\n");
    ok = ok && issue("server", "127.0.0.1") && issue("client", "artist");
  }
  bool issue(const std::string& who, const std::string& cn) {
    std::string p = dir_ + "/" + name_;
    return sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + p + "-" + who +
              ".key -out " + p + "-" + who + ".csr -subj /CN=" + cn) == 0 &&
           sh("openssl x509 -req -in " + p + "-" + who + ".csr -CA " + p + "-ca.pem -CAkey " + p +
              "-ca.key -CAcreateserial -days 2 -extfile " + p + "-san.ext -out " + p + "-" + who + ".pem") == 0;
  }
  std::string ca() const { return dir_ + "/" + name_ + "-ca.pem"; }
  std::string cert(const std::string& who) const { return dir_ + "/" + name_ + "-" + who + ".pem"; }
  std::string key(const std::string& who) const { return dir_ + "/" + name_ + "-" + who + ".key"; }
  bool ok = false;

 private:
  std::string dir_, name_;
};

class SecurityTest : public ::testing::Test {
 protected:
  TempDir src_{"sec-src"};
  TempDir dst_{"sec-dst"};
  void SetUp() override { write_text(src_ / "secret.txt", "the plate of shot 010"); }
};

TEST_F(SecurityTest, WrongTokenIsRefusedWithAClearErrorCountedAndNothingIsWritten) {
  ReceiverThread rx(dst_.path());
  FerryUrl url = rx.url("inbox");
  url.token = "not-the-token";
  TransferReport r = send_files({src_ / "secret.txt"}, url, quiet_options());
  EXPECT_EQ(r.status.code(), Error::kRefused) << r.status.to_string();
  EXPECT_NE(r.status.message().find("authentication failed: unknown or revoked token"), std::string::npos)
      << r.status.message();
  EXPECT_TRUE(dir_is_empty(dst_.path()));
  EXPECT_EQ(wait_for_auth_failures(rx.receiver(), 1), 1u);
  EXPECT_EQ(rx.receiver()->metrics().sessions_total, 0u);
}

TEST_F(SecurityTest, MissingTokenIsRefusedAndTheErrorSaysWhereTokensComeFrom) {
  ReceiverThread rx(dst_.path());
  FerryUrl url = rx.url();
  url.token.clear();
  TransferReport r = send_files({src_ / "secret.txt"}, url, quiet_options());
  EXPECT_EQ(r.status.code(), Error::kRefused);
  EXPECT_NE(r.status.message().find("no token given"), std::string::npos) << r.status.message();
  EXPECT_TRUE(dir_is_empty(dst_.path()));
  EXPECT_EQ(wait_for_auth_failures(rx.receiver(), 1), 1u);
}

TEST_F(SecurityTest, TheRightTokenInTheUrlTransfers) {
  ReceiverThread rx(dst_.path());
  TransferReport r = send_files({src_ / "secret.txt"}, rx.url("inbox"), quiet_options());
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_TRUE(r.encrypted);
  EXPECT_EQ(read_text(dst_ / "inbox/secret.txt"), "the plate of shot 010");
  ReceiverMetrics m = rx.receiver()->metrics();
  EXPECT_EQ(m.auth_failures, 0u);
  EXPECT_EQ(m.sessions_total, 1u);
  EXPECT_EQ(m.files_committed, 1u);
  EXPECT_EQ(m.bytes_received, 21u);
}

TEST_F(SecurityTest, MismatchedFingerprintIsRefusedBeforeAnyFrameIsSent) {
  ReceiverThread rx(dst_.path());
  FerryUrl url = rx.url();
  url.fingerprint = "sha256:" + std::string(64, '0');
  TransferReport r = send_files({src_ / "secret.txt"}, url, quiet_options());
  EXPECT_EQ(r.status.code(), Error::kRefused) << r.status.to_string();
  EXPECT_NE(r.status.message().find("certificate fingerprint mismatch"), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find(rx.receiver()->fingerprint()), std::string::npos)
      << "the error names what the receiver presented: " << r.status.message();
  EXPECT_TRUE(dir_is_empty(dst_.path()));
  EXPECT_GE(wait_for_auth_failures(rx.receiver(), 1), 1u) << "the aborted handshake is counted";
}

TEST_F(SecurityTest, CaFileVerifiesTheReceiverAndAWrongCaIsRefused) {
  TempDir pki_dir("pki");
  TestPki good(pki_dir.path(), "good"), other(pki_dir.path(), "other");
  ASSERT_TRUE(good.ok && other.ok) << "openssl could not make the test certificates";
  ReceiveOptions o;
  o.root = dst_.path();
  o.tls.cert_file = good.cert("server");
  o.tls.key_file = good.key("server");
  ReceiverThread rx(o);
  FerryUrl url = rx.url();
  url.fingerprint.clear();  // verify by CA, not by pin

  SendOptions wrong = quiet_options();
  wrong.tls.ca_file = other.ca();
  TransferReport refused = send_files({src_ / "secret.txt"}, url, wrong);
  EXPECT_EQ(refused.status.code(), Error::kRefused) << refused.status.to_string();
  EXPECT_NE(refused.status.message().find("certificate was not accepted"), std::string::npos)
      << refused.status.message();
  EXPECT_TRUE(dir_is_empty(dst_.path()));
  EXPECT_GE(wait_for_auth_failures(rx.receiver(), 1), 1u);

  SendOptions right = quiet_options();
  right.tls.ca_file = good.ca();
  TransferReport r = send_files({src_ / "secret.txt"}, url, right);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(read_text(dst_ / "secret.txt"), "the plate of shot 010");
}

TEST_F(SecurityTest, MutualTlsRequiresAClientCertificateFromTheGivenCa) {
  TempDir pki_dir("pki");
  TestPki pki(pki_dir.path(), "studio"), other(pki_dir.path(), "other");
  ASSERT_TRUE(pki.ok && other.ok);
  ReceiveOptions o;
  o.root = dst_.path();
  o.tls.client_ca_file = pki.ca();
  ReceiverThread rx(o);

  TransferReport none = send_files({src_ / "secret.txt"}, rx.url(), quiet_options());
  EXPECT_EQ(none.status.code(), Error::kRefused) << none.status.to_string();
  EXPECT_NE(none.status.message().find("requires a client certificate"), std::string::npos) << none.status.message();
  SendOptions stranger = quiet_options();
  stranger.tls.cert_file = other.cert("client");
  stranger.tls.key_file = other.key("client");
  TransferReport foreign = send_files({src_ / "secret.txt"}, rx.url(), stranger);
  EXPECT_EQ(foreign.status.code(), Error::kRefused) << foreign.status.to_string();
  EXPECT_TRUE(dir_is_empty(dst_.path()));
  EXPECT_GE(wait_for_auth_failures(rx.receiver(), 2), 2u);

  SendOptions member = quiet_options();
  member.tls.cert_file = pki.cert("client");
  member.tls.key_file = pki.key("client");
  TransferReport r = send_files({src_ / "secret.txt"}, rx.url(), member);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
}

// The marker is in the file (and compression is off, so it would travel verbatim); with TLS it
// must not appear in what the relay saw, and with --plaintext on both sides it must.
TEST_F(SecurityTest, BytesOnTheWireAreEncryptedAndPlaintextModeProvesTheCaptureWorks) {
  const std::string marker = "FERRY-PLAINTEXT-MARKER-7f3a9c";
  std::string body;
  for (int i = 0; i < 2000; ++i) body += marker + std::to_string(i) + "\n";
  write_text(src_ / "marked.txt", body);
  SendOptions so = quiet_options();
  so.compress = "none";

  {
    TempDir dst("sec-tls");
    ReceiverThread rx(dst.path());
    CapturingRelay relay(rx.url().port);
    FerryUrl url = rx.url();
    url.port = relay.port();
    TransferReport r = send_files({src_ / "marked.txt"}, url, so);
    ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
    EXPECT_EQ(read_text(dst / "marked.txt"), body);
    std::string wire = relay.captured();
    EXPECT_GT(wire.size(), body.size()) << "the relay carried the transfer";
    EXPECT_EQ(wire.find(marker), std::string::npos) << "file contents crossed the wire in the clear";
    EXPECT_EQ(wire.find(rx.token()), std::string::npos) << "the token crossed the wire in the clear";
    EXPECT_EQ(wire.find("marked.txt"), std::string::npos) << "file names crossed the wire in the clear";
  }
  {
    TempDir dst("sec-plain");
    ReceiveOptions o;
    o.root = dst.path();
    o.tls.plaintext = true;
    ReceiverThread rx(o);
    EXPECT_EQ(rx.token(), "");
    EXPECT_EQ(rx.receiver()->url().find('?'), std::string::npos) << rx.receiver()->url();
    CapturingRelay relay(rx.url().port);
    FerryUrl url = rx.url();
    url.port = relay.port();
    SendOptions plain = so;
    plain.tls.plaintext = true;
    TransferReport r = send_files({src_ / "marked.txt"}, url, plain);
    ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
    EXPECT_FALSE(r.encrypted);
    EXPECT_NE(r.to_json().find("\"encrypted\":false"), std::string::npos);
    EXPECT_NE(relay.captured().find(marker), std::string::npos) << "the capture would have seen plaintext";
  }
}

TEST_F(SecurityTest, PlaintextSenderAgainstATlsReceiverFailsWithAHint) {
  ReceiverThread rx(dst_.path());
  SendOptions plain = quiet_options();
  plain.tls.plaintext = true;
  TransferReport r = send_files({src_ / "secret.txt"}, rx.url(), plain);
  EXPECT_NE(r.status.code(), Error::kOk);
  EXPECT_NE(r.status.message().find("--plaintext"), std::string::npos) << r.status.message();
  EXPECT_TRUE(dir_is_empty(dst_.path()));
}

// A daemon-style receiver: exports and a token verifier that reload() can change.
class ExportTest : public SecurityTest {
 protected:
  TempDir rw_{"exp-rw"};
  TempDir ro_{"exp-ro"};
  std::vector<ExportSpec> exports() const { return {{"plates", rw_.path(), nullptr}, {"archive", ro_.path(), nullptr}}; }
  static TokenVerifier verifier(bool revoked) {
    return [revoked](std::string_view token) -> Result<std::vector<ExportAccess>> {
      if (token == "artist-token" && !revoked)
        return std::vector<ExportAccess>{{"plates", true, true}, {"archive", true, false}};
      return Status(Error::kRefused, "unknown or revoked token");
    };
  }
  ReceiveOptions options() const {
    ReceiveOptions o;
    o.exports = exports();
    o.verify_token = verifier(false);
    return o;
  }
  FerryUrl url(ReceiverThread& rx, const std::string& path) const {
    FerryUrl u = rx.url(path);
    u.token = "artist-token";
    return u;
  }
};

TEST_F(ExportTest, PathsResolveBeneathTheExportRoot) {
  ReceiverThread rx(options());
  EXPECT_EQ(rx.token(), "") << "with a verifier the receiver has no token of its own";
  TransferReport r = send_files({src_ / "secret.txt"}, url(rx, "plates/shot010/v1"), quiet_options());
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(read_text(rw_ / "shot010/v1/secret.txt"), "the plate of shot 010");
  TransferReport top = send_files({src_ / "secret.txt"}, url(rx, "plates"), quiet_options());
  ASSERT_TRUE(top.status.is_ok()) << top.status.to_string();
  EXPECT_EQ(read_text(rw_ / "secret.txt"), "the plate of shot 010");
  EXPECT_TRUE(dir_is_empty(ro_.path()));
}

TEST_F(ExportTest, WriteToAnExportWithoutWriteAccessIsRefusedBeforeAnythingIsWritten) {
  ReceiverThread rx(options());
  TransferReport r = send_files({src_ / "secret.txt"}, url(rx, "archive/x"), quiet_options());
  EXPECT_EQ(r.status.code(), Error::kRefused);
  EXPECT_NE(r.status.message().find("token has no write access to export 'archive'"), std::string::npos)
      << r.status.message();
  EXPECT_TRUE(dir_is_empty(ro_.path()));
  EXPECT_EQ(wait_for_auth_failures(rx.receiver(), 1), 1u);
  TransferReport unknown = send_files({src_ / "secret.txt"}, url(rx, "nosuch/x"), quiet_options());
  EXPECT_EQ(unknown.status.code(), Error::kRefused) << unknown.status.to_string();
  TransferReport bare = send_files({src_ / "secret.txt"}, url(rx, ""), quiet_options());
  EXPECT_EQ(bare.status.code(), Error::kRefused) << bare.status.to_string();
  EXPECT_TRUE(dir_is_empty(rw_.path()));
  EXPECT_TRUE(dir_is_empty(ro_.path()));
}

TEST_F(ExportTest, TokenRevokedByReloadIsRefusedAndNothingIsWritten) {
  ReceiverThread rx(options());
  ASSERT_TRUE(send_files({src_ / "secret.txt"}, url(rx, "plates/a"), quiet_options()).status.is_ok());
  ASSERT_TRUE(rx.receiver()->reload(exports(), verifier(true)).is_ok());
  TransferReport r = send_files({src_ / "secret.txt"}, url(rx, "plates/b"), quiet_options());
  EXPECT_EQ(r.status.code(), Error::kRefused);
  EXPECT_NE(r.status.message().find("authentication failed: unknown or revoked token"), std::string::npos)
      << r.status.message();
  struct stat st {};
  EXPECT_NE(lstat((rw_ / "b").c_str(), &st), 0);
  EXPECT_EQ(wait_for_auth_failures(rx.receiver(), 1), 1u);
  // A reload that names a missing directory changes nothing.
  EXPECT_FALSE(rx.receiver()->reload({{"gone", dst_ / "missing", nullptr}}, verifier(false)).is_ok());
  EXPECT_FALSE(send_files({src_ / "secret.txt"}, url(rx, "plates/c"), quiet_options()).status.is_ok());
}

TEST_F(SecurityTest, OverTheSessionLimitTheReceiverAnswersBusyAndCountsIt) {
  ReceiveOptions o;
  o.root = dst_.path();
  o.max_sessions = 1;
  ReceiverThread rx(o);
  RawClient holder(rx.url().port);
  std::vector<uint8_t> p;
  ASSERT_EQ(holder.open_session(rx.token(), "held", &p), protocol::FrameType::kSessionOpened);
  TransferReport r = send_files({src_ / "secret.txt"}, rx.url(), quiet_options());
  EXPECT_EQ(r.status.code(), Error::kRefused);
  EXPECT_NE(r.status.message().find("busy"), std::string::npos) << r.status.message();
  ReceiverMetrics m = rx.receiver()->metrics();
  EXPECT_EQ(m.sessions_active, 1u);
  EXPECT_GE(m.errors, 1u);
}

TEST_F(SecurityTest, DataStreamWithAnotherTokenCannotJoinASession) {
  ReceiveOptions o;
  o.exports = {{"x", dst_.path(), nullptr}};
  o.verify_token = [](std::string_view t) -> Result<std::vector<ExportAccess>> {
    if (t == "a" || t == "b") return std::vector<ExportAccess>{{"x", true, true}};
    return Status(Error::kRefused, "unknown");
  };
  ReceiverThread rx(o);
  RawClient control(rx.url().port);
  std::vector<uint8_t> p;
  ASSERT_EQ(control.open_session("a", "x", &p), protocol::FrameType::kSessionOpened);
  auto opened = protocol::decode_session_opened(p);
  ASSERT_TRUE(opened);
  RawClient data(rx.url().port);
  ASSERT_EQ(data.handshake("b", &p), protocol::FrameType::kAuthOk);
  data.send_bytes(protocol::encode(protocol::JoinStream{opened->session_id, 0}));
  protocol::FrameType t{};
  ASSERT_TRUE(data.read_frame(&t, &p));
  EXPECT_EQ(t, protocol::FrameType::kError);
}

TEST_F(SecurityTest, ShutdownEndsARunningSessionAfterTheGraceAndRunReturns) {
  ReceiveOptions o;
  o.root = dst_.path();
  o.listen = "127.0.0.1:0";
  auto created = Receiver::create(o);
  ASSERT_TRUE(created);
  std::unique_ptr<Receiver> rx = std::move(*created);
  std::thread runner([&] { (void)rx->run(); });
  RawClient holder(rx->port());
  std::vector<uint8_t> p;
  ASSERT_EQ(holder.open_session(rx->token(), "", &p), protocol::FrameType::kSessionOpened);
  for (int i = 0; i < 100 && rx->metrics().sessions_active == 0; ++i) usleep(10'000);
  EXPECT_EQ(rx->metrics().sessions_active, 1u);
  EXPECT_TRUE(rx->shutdown(std::chrono::milliseconds(100)).is_ok());
  runner.join();
  EXPECT_TRUE(holder.closed_by_peer());
  EXPECT_EQ(rx->metrics().sessions_active, 0u);
}

TEST_F(SecurityTest, SkippingAuthIsRefusedAndNothingIsWritten) {
  ReceiverThread rx(dst_.path());
  RawClient c(rx.url().port);
  ASSERT_TRUE(c.start_tls());
  c.send_bytes(protocol::encode(protocol::Hello{}));
  protocol::FrameType t{};
  std::vector<uint8_t> p;
  ASSERT_TRUE(c.read_frame(&t, &p));
  ASSERT_EQ(t, protocol::FrameType::kWelcome);
  protocol::OpenSession o{protocol::kDefaultChunkSize, 1, protocol::OverwriteMode::kAlways,
                          protocol::ResumeMode::kOff, {}, "sneaky"};
  c.send_bytes(protocol::encode(o));
  ASSERT_TRUE(c.read_frame(&t, &p));
  ASSERT_EQ(t, protocol::FrameType::kError);
  auto e = protocol::decode_error(p);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->code, static_cast<uint16_t>(Error::kRefused));
  EXPECT_TRUE(c.closed_by_peer());
  EXPECT_TRUE(dir_is_empty(dst_.path()));
  EXPECT_EQ(wait_for_auth_failures(rx.receiver(), 1), 1u);
}

// The server-side rate cap paces reads; the transfer still completes intact. (How fast it
// goes is a benchmark question, not asserted here.)
TEST_F(SecurityTest, RateCappedSessionStillDeliversEveryByte) {
  ReceiveOptions o;
  o.root = dst_.path();
  o.max_session_rate = 64ull << 20;
  ReceiverThread rx(o);
  write_random_file(src_ / "capped.bin", 12ull << 20, 9);
  SendOptions so = quiet_options();
  so.chunk_size = 1u << 20;
  TransferReport r = send_files({src_ / "capped.bin"}, rx.url(), so);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(hash_file(dst_ / "capped.bin"), hash_file(src_ / "capped.bin"));
}

}  // namespace
}  // namespace ferry::test
