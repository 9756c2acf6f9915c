// Retries against faults a real S3 server cannot be made to produce on demand.
//
// FaultRelay is a FAKE, named as such: an HTTP/1.1 relay between ferry and s3rver that
// forwards requests unchanged except those its plan picks, which it answers itself with
// 503 SlowDown, 500 InternalError, 503 + Retry-After, or 403 AccessDenied, kills with a
// TCP reset, or forwards with a flipped byte in the body. Everything else (signing, storage, the bytes read back) is the real s3rver.
#include <netinet/tcp.h>
#include <poll.h>

#include <atomic>
#include <functional>
#include <mutex>

#include "s3/crc32c.h"
#include "s3_test_support.h"

namespace ferry::s3::test {
namespace {

// kCorruptBody forwards the request with one byte of its body flipped, as a corrupting
// link would (s3rver does not check Content-MD5, so it stores the damage and says so in the
// ETag it returns).
enum class Fault { kNone, kSlowDown503, kInternal500, kRetryAfter503, kForbidden403, kReset, kCorruptBody };

class FaultRelay {
 public:
  // plan(n, request head) decides the fate of the n-th request (1-based) the relay reads.
  FaultRelay(uint16_t upstream_port, std::function<Fault(int, const std::string&)> plan)
      : upstream_port_(upstream_port), plan_(std::move(plan)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(listen_fd_, 64);
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~FaultRelay() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    std::lock_guard lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : workers_) t.join();
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int requests() const { return requests_; }
  int faults() const { return faults_; }

 private:
  void accept_loop() {
    while (!stopping_) {
      int c = ::accept(listen_fd_, nullptr, nullptr);
      if (c < 0) {
        if (stopping_) return;
        continue;
      }
      std::lock_guard lock(mu_);
      open_fds_.push_back(c);
      workers_.emplace_back([this, c] { serve(c); });
    }
  }

  static bool read_exact(int fd, std::string* buf, size_t n) {
    char tmp[65536];
    while (buf->size() < n) {
      ssize_t r = ::read(fd, tmp, std::min(sizeof tmp, n - buf->size()));
      if (r <= 0) return false;
      buf->append(tmp, static_cast<size_t>(r));
    }
    return true;
  }

  // Reads up to and including "\r\n\r\n"; extra bytes stay in *rest.
  static bool read_head(int fd, std::string* rest, std::string* head) {
    for (;;) {
      size_t end = rest->find("\r\n\r\n");
      if (end != std::string::npos) {
        *head = rest->substr(0, end + 4);
        rest->erase(0, end + 4);
        return true;
      }
      if (rest->size() > (1 << 20)) return false;
      char tmp[8192];
      ssize_t r = ::read(fd, tmp, sizeof tmp);
      if (r <= 0) return false;
      rest->append(tmp, static_cast<size_t>(r));
    }
  }

  static std::string header_value(const std::string& head, std::string name) {
    std::string lower = head;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    size_t p = lower.find("\r\n" + name + ":");
    if (p == std::string::npos) return "";
    size_t s = p + name.size() + 3;
    std::string v = head.substr(s, head.find("\r\n", s) - s);
    while (!v.empty() && v.front() == ' ') v.erase(0, 1);
    return v;
  }

  // Reads a message body that follows `head` (Content-Length or chunked) into *body.
  static bool read_body(int fd, std::string* rest, const std::string& head, bool no_body, std::string* body) {
    if (no_body) return true;
    std::string te = header_value(head, "transfer-encoding");
    if (te.find("chunked") != std::string::npos) {
      for (;;) {  // raw chunked bytes are forwarded as they are
        std::string line;
        size_t nl;
        while ((nl = rest->find("\r\n")) == std::string::npos)
          if (!read_exact(fd, rest, rest->size() + 1)) return false;
        line = rest->substr(0, nl);
        size_t size = std::stoul(line, nullptr, 16);
        size_t need = nl + 2 + size + 2;
        if (rest->size() < need && !read_exact(fd, rest, need)) return false;
        body->append(*rest, 0, need);
        rest->erase(0, need);
        if (size == 0) return true;
      }
    }
    size_t len = std::strtoull(header_value(head, "content-length").c_str(), nullptr, 10);
    if (rest->size() < len && !read_exact(fd, rest, len)) return false;
    body->append(*rest, 0, len);
    rest->erase(0, len);
    return true;
  }

  static bool write_all(int fd, const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t w = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (w <= 0) return false;
      off += static_cast<size_t>(w);
    }
    return true;
  }

  static std::string error_response(int status, const char* reason, const char* code, const char* extra) {
    std::string body = std::string("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>") + code +
                       "</Code><Message>injected by the test relay</Message></Error>";
    return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: application/xml\r\n" + extra +
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }

  void serve(int client) {
    int upstream = -1;
    std::string crest, urest;
    for (;;) {
      std::string head, body;
      if (!read_head(client, &crest, &head)) break;
      if (!read_body(client, &crest, head, false, &body)) break;
      int n = ++requests_;
      Fault f = plan_(n, head);
      if (f != Fault::kNone) ++faults_;
      if (f == Fault::kReset) {
        linger l{1, 0};  // close with RST
        ::setsockopt(client, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        break;
      }
      std::string canned;
      if (f == Fault::kSlowDown503) canned = error_response(503, "Slow Down", "SlowDown", "");
      if (f == Fault::kInternal500) canned = error_response(500, "Internal Server Error", "InternalError", "");
      if (f == Fault::kRetryAfter503) canned = error_response(503, "Service Unavailable", "ServiceUnavailable", "Retry-After: 1\r\n");
      if (f == Fault::kForbidden403) canned = error_response(403, "Forbidden", "AccessDenied", "");
      if (!canned.empty()) {
        if (!write_all(client, canned)) break;
        continue;
      }
      if (f == Fault::kCorruptBody && !body.empty()) body[body.size() / 2] ^= 0x20;
      if (upstream < 0) {
        upstream = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        a.sin_port = htons(upstream_port_);
        if (::connect(upstream, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) break;
      }
      if (!write_all(upstream, head + body)) break;
      std::string rhead, rbody;
      if (!read_head(upstream, &urest, &rhead)) break;
      bool no_body = head.rfind("HEAD ", 0) == 0 || rhead.rfind("HTTP/1.1 204", 0) == 0 || rhead.rfind("HTTP/1.1 304", 0) == 0;
      if (!read_body(upstream, &urest, rhead, no_body, &rbody)) break;
      if (!write_all(client, rhead + rbody)) break;
    }
    if (upstream >= 0) ::close(upstream);
    ::close(client);
  }

  uint16_t upstream_port_;
  std::function<Fault(int, const std::string&)> plan_;
  int listen_fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> requests_{0}, faults_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
  std::vector<int> open_fds_;
};

class FaultRelayTest : public ::testing::Test {
 protected:
  void SetUp() override {
    use_s3rver_credentials();
    server_.start({"bkt"});
  }
  S3Options via(const FaultRelay& relay) {
    S3Options o = server_.options();
    o.endpoint = relay.endpoint();
    o.state_dir = state_.path();
    o.part_size = 5ull << 20;
    o.concurrency = 3;
    return o;
  }
  S3rver server_;
  TempDir tmp_{"s3-relay"};
  TempDir state_{"s3-relay-state"};
};

TEST_F(FaultRelayTest, UploadRetriesThroughSlowDownServerErrorsAndResets) {
  // Every third request fails, cycling through the kinds of failure.
  const Fault cycle[] = {Fault::kSlowDown503, Fault::kReset, Fault::kInternal500, Fault::kRetryAfter503};
  FaultRelay relay(server_.port(), [&](int n, const std::string&) { return n % 3 == 0 ? cycle[(n / 3) % 4] : Fault::kNone; });
  std::string dir = tmp_ / "src";
  ::mkdir(dir.c_str(), 0755);
  write_random_file(dir + "/big.exr", 32ull << 20, 1);  // 7 parts
  for (int i = 0; i < 5; ++i) write_random_file(dir + "/s" + std::to_string(i), 1000 + i, 10 + i);
  SendOptions so;
  TransferReport r = send_files({dir + "/"}, {"bkt", "in/"}, via(relay), so);
  ASSERT_TRUE(r.status.is_ok()) << r.status.message();
  EXPECT_EQ(r.files_sent, 6u);
  EXPECT_GE(relay.faults(), 5) << "the plan must actually have injected faults";
  auto direct = make_client({"bkt", ""}, server_.options());
  ASSERT_TRUE(direct);
  auto big = (*direct)->get_object("in/big.exr", 1 << 30);
  ASSERT_TRUE(big) << big.status().message();
  EXPECT_TRUE(*big == read_file(dir + "/big.exr"));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(*(*direct)->get_object("in/s" + std::to_string(i), 1 << 20), read_file(dir + "/s" + std::to_string(i)));
}

TEST_F(FaultRelayTest, BodyDamagedOnTheWayIsDetectedByItsMd5AndSentAgain) {
  // The first single PUT and the first two part uploads arrive damaged.
  std::atomic<int> puts{0}, parts{0};
  FaultRelay relay(server_.port(), [&](int, const std::string& head) {
    if (head.rfind("PUT ", 0) != 0 || head.find("x-amz-copy-source") != std::string::npos) return Fault::kNone;
    bool part = head.find("partNumber=") != std::string::npos;
    return (part ? ++parts <= 2 : ++puts <= 1) ? Fault::kCorruptBody : Fault::kNone;
  });
  std::string dir = tmp_ / "src";
  ::mkdir(dir.c_str(), 0755);
  write_random_file(dir + "/big.exr", 17ull << 20, 1);  // above the single-PUT cutoff: 4 parts of 5 MiB
  write_random_file(dir + "/small.exr", 5000, 2);
  S3Options o = via(relay);
  o.concurrency = 1;
  TransferReport r = send_files({dir + "/"}, {"bkt", "c/"}, o, SendOptions{});
  ASSERT_TRUE(r.status.is_ok()) << r.status.message();
  EXPECT_EQ(r.chunks_resent, 3u);
  EXPECT_EQ(relay.faults(), 3);
  auto direct = make_client({"bkt", ""}, server_.options());
  ASSERT_TRUE(direct);
  EXPECT_TRUE(*(*direct)->get_object("c/big.exr", 1 << 30) == read_file(dir + "/big.exr"));
  EXPECT_EQ(*(*direct)->get_object("c/small.exr", 1 << 20), read_file(dir + "/small.exr"));
}

TEST_F(FaultRelayTest, BodyDamagedEveryTimeFailsTheFileWithAnIntegrityError) {
  FaultRelay relay(server_.port(), [](int, const std::string& head) {
    return head.rfind("PUT ", 0) == 0 ? Fault::kCorruptBody : Fault::kNone;
  });
  std::string src = tmp_ / "a.exr";
  write_random_file(src, 5000, 3);
  TransferReport r = send_files({src}, {"bkt", "d/"}, via(relay), SendOptions{});
  EXPECT_EQ(r.status.code(), Error::kIntegrity) << r.status.message();
  EXPECT_NE(r.status.message().find("never stored intact"), std::string::npos) << r.status.message();
  EXPECT_EQ(relay.faults(), 3);
}

TEST_F(FaultRelayTest, PersistentSlowDownGivesUpWithANetworkError) {
  FaultRelay relay(server_.port(), [](int, const std::string& head) {
    return head.rfind("PUT ", 0) == 0 ? Fault::kSlowDown503 : Fault::kNone;
  });
  std::string src = tmp_ / "a";
  write_random_file(src, 100, 2);
  S3Options o = via(relay);
  o.retry.max_attempts = 4;
  o.retry.base = std::chrono::milliseconds(1);
  TransferReport r = send_files({src}, {"bkt", "x/"}, o, SendOptions{});
  EXPECT_EQ(r.status.code(), Error::kNetwork);
  EXPECT_NE(r.status.message().find("SlowDown"), std::string::npos) << r.status.message();
  EXPECT_NE(r.status.message().find("gave up after 4 attempts"), std::string::npos) << r.status.message();
  EXPECT_EQ(relay.faults(), 4);
}

TEST_F(FaultRelayTest, ForbiddenIsReportedClearlyWithExitCode6) {
  FaultRelay relay(server_.port(), [](int, const std::string& head) {
    return head.rfind("PUT ", 0) == 0 ? Fault::kForbidden403 : Fault::kNone;
  });
  std::string src = tmp_ / "frame.exr";
  write_random_file(src, 100, 3);
  auto r = run(kFerry + " send --no-progress --endpoint " + relay.endpoint() + " --state-dir " + state_.path() + " '" + src +
               "' s3://bkt/plates/");
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_NE(r.err.find("PUT s3://bkt/plates/frame.exr"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("HTTP 403 AccessDenied"), std::string::npos) << r.err;
  EXPECT_EQ(relay.faults(), 1) << "a 403 is final: never retried";
}

}  // namespace
}  // namespace ferry::s3::test

namespace ferry::s3::test {
namespace {

// --checksum-algorithm crc32c: s3rver accepts and ignores the flexible-checksum headers, so
// what ferry sends is checked on the wire (the relay sees every request head, passing them
// on unchanged), and the objects must still arrive intact. That the store verifies them is
// only testable against real S3.
TEST_F(FaultRelayTest, Crc32cHeadersAreSentOnCreatePartsAndPuts) {
  std::mutex mu;
  std::vector<std::string> heads;
  FaultRelay relay(server_.port(), [&](int, const std::string& head) {
    std::lock_guard lock(mu);
    heads.push_back(head);
    return Fault::kNone;
  });
  std::string dir = tmp_ / "src";
  ::mkdir(dir.c_str(), 0755);
  write_random_file(dir + "/big.exr", 12ull << 20, 1);  // 3 parts of 5 MiB (last 2 MiB)
  write_random_file(dir + "/small.exr", 5000, 2);
  S3Options o = via(relay);
  o.single_put_cutoff = 6ull << 20;
  o.checksum = ChecksumAlgorithm::kCrc32c;
  TransferReport r = send_files({dir + "/"}, {"bkt", "c/"}, o, SendOptions{});
  ASSERT_TRUE(r.status.is_ok()) << r.status.message();

  std::string big = read_file(dir + "/big.exr"), small = read_file(dir + "/small.exr");
  auto crc_of = [](const std::string& s, size_t off, size_t len) {
    return crc32c_base64(crc32c(reinterpret_cast<const uint8_t*>(s.data()) + off, len));
  };
  // Header names are case-insensitive: look them up lower-cased (values as sent).
  auto value = [](const std::string& head, const std::string& name) {
    std::string lower = head;
    for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    size_t p = lower.find("\r\n" + name + ":");
    if (p == std::string::npos) return std::string("(absent)");
    size_t s = p + name.size() + 3;
    while (s < head.size() && head[s] == ' ') ++s;
    return head.substr(s, head.find("\r\n", s) - s);
  };
  int creates = 0, parts = 0, puts = 0, md5s = 0;
  for (const auto& h : heads) {
    bool part = h.find("partNumber=") != std::string::npos;
    if (value(h, "content-md5") != "(absent)") ++md5s;
    if (h.rfind("POST /bkt/c/big.exr?uploads", 0) == 0) {
      ++creates;
      EXPECT_EQ(value(h, "x-amz-checksum-algorithm"), "CRC32C") << h;
    } else if (h.rfind("PUT /bkt/c/big.exr?", 0) == 0 && part) {
      size_t n = std::stoul(h.substr(h.find("partNumber=") + 11));
      size_t off = (n - 1) * (5ull << 20), len = std::min<size_t>(5ull << 20, big.size() - off);
      ++parts;
      EXPECT_EQ(value(h, "x-amz-checksum-crc32c"), crc_of(big, off, len)) << h;
      EXPECT_EQ(value(h, "x-amz-sdk-checksum-algorithm"), "CRC32C") << h;
    } else if (h.rfind("PUT /bkt/c/small.exr ", 0) == 0) {
      ++puts;
      EXPECT_EQ(value(h, "x-amz-checksum-crc32c"), crc_of(small, 0, small.size())) << h;
    }
  }
  EXPECT_EQ(md5s, 0) << "no Content-MD5 with --checksum-algorithm crc32c";
  EXPECT_EQ(creates, 1);
  EXPECT_EQ(parts, 3);
  EXPECT_EQ(puts, 1);
  auto direct = make_client({"bkt", ""}, server_.options());
  ASSERT_TRUE(direct);
  EXPECT_TRUE(*(*direct)->get_object("c/big.exr", 1 << 30) == big);
  EXPECT_TRUE(*(*direct)->get_object("c/small.exr", 1 << 20) == small);
}

}  // namespace
}  // namespace ferry::s3::test
