// A crafted client for the receiver: blocking TCP, then TLS 1.3 (OpenSSL directly, no
// verification: these tests attack the receiver, they do not check its identity), speaking
// the protocol through the encoder directly so it can send what a ferry sender never would.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "protocol/frames.h"

namespace ferry::test {

class RawClient {
 public:
  // Connects over TCP only; call start_tls() (or handshake()) before speaking frames to a TLS
  // receiver.
  explicit RawClient(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    timeval tv{10, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawClient() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    ::close(fd_);
  }
  bool connected() const { return connected_; }

  bool start_tls() {
    ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx_, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx_, SSL_VERIFY_NONE, nullptr);
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    return SSL_connect(ssl_) == 1;
  }

  void send_bytes(const std::vector<uint8_t>& b) {
    ssize_t n = ssl_ ? SSL_write(ssl_, b.data(), static_cast<int>(b.size()))
                     : ::send(fd_, b.data(), b.size(), MSG_NOSIGNAL);
    ASSERT_EQ(n, static_cast<ssize_t>(b.size()));
  }

  // Returns false on EOF/error/timeout.
  bool read_frame(protocol::FrameType* type, std::vector<uint8_t>* payload) {
    uint8_t h[8];
    if (!read_exact(h, 8)) return false;
    *type = static_cast<protocol::FrameType>(h[0]);
    uint32_t len = (uint32_t(h[4]) << 24) | (uint32_t(h[5]) << 16) | (uint32_t(h[6]) << 8) | h[7];
    payload->resize(len);
    return len == 0 || read_exact(payload->data(), len);
  }

  // TLS, HELLO/WELCOME, AUTH/AUTH_OK. Returns the frame type answering AUTH (kAuthOk or kError).
  protocol::FrameType handshake(const std::string& token, std::vector<uint8_t>* payload) {
    if (!start_tls()) return protocol::FrameType::kFinish;  // "no answer"
    send_bytes(protocol::encode(protocol::Hello{}));
    protocol::FrameType t{};
    if (!read_frame(&t, payload) || t != protocol::FrameType::kWelcome) return t;
    send_bytes(protocol::encode(protocol::Auth{token}));
    if (!read_frame(&t, payload)) return protocol::FrameType::kFinish;
    return t;
  }

  // handshake() then OPEN_SESSION; returns the frame type answering OPEN_SESSION.
  protocol::FrameType open_session(const std::string& token, const std::string& dest, std::vector<uint8_t>* payload) {
    protocol::FrameType t = handshake(token, payload);
    if (t != protocol::FrameType::kAuthOk) return t;
    protocol::OpenSession o{protocol::kDefaultChunkSize, 1, protocol::OverwriteMode::kAlways,
                            protocol::ResumeMode::kOff, {}, dest};
    send_bytes(protocol::encode(o));
    if (!read_frame(&t, payload)) return protocol::FrameType::kFinish;
    return t;
  }

  bool closed_by_peer() {
    uint8_t b;
    return (ssl_ ? SSL_read(ssl_, &b, 1) : ::recv(fd_, &b, 1, 0)) <= 0;
  }

 private:
  bool read_exact(uint8_t* p, size_t n) {
    while (n > 0) {
      ssize_t r = ssl_ ? SSL_read(ssl_, p, static_cast<int>(n)) : ::recv(fd_, p, n, 0);
      if (r <= 0) return false;
      p += r;
      n -= static_cast<size_t>(r);
    }
    return true;
  }
  int fd_ = -1;
  bool connected_ = false;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
};

// A regular-file FILE_LIST entry, for hand-built file lists.
inline protocol::FileListEntry regular(uint32_t id, const std::string& path, uint64_t size) {
  protocol::FileListEntry e;
  e.file_id = id;
  e.entry.path = path;
  e.entry.type = FileType::kRegular;
  e.entry.mode = 0644;
  e.entry.size = size;
  return e;
}

// Collects plan entries until every file id in [0, n) has one (or the peer stops answering).
inline std::map<uint32_t, protocol::PlanEntry> read_plans(RawClient& c, size_t n) {
  std::map<uint32_t, protocol::PlanEntry> plans;
  protocol::FrameType t{};
  std::vector<uint8_t> p;
  while (plans.size() < n && c.read_frame(&t, &p)) {
    if (t != protocol::FrameType::kFilePlan) break;
    auto plan = protocol::decode_file_plan(p);
    if (!plan) break;
    for (auto& e : plan->entries) plans[e.file_id] = e;
  }
  return plans;
}

// Nine entries a receiver must refuse but one, with a symlink `evil` in the root pointing
// outside it: ids 0-5 escaping, absolute, through-symlink, 300-byte-component and
// non-canonical file paths, 6 "ok.txt" (fine), 7 a directory and 8 a symlink through `evil`.
inline protocol::FileList escaping_file_list() {
  protocol::FileList list;
  list.entries = {regular(0, "../x", 5),    regular(1, "/etc/x", 5), regular(2, "a/../../x", 5),
                  regular(3, "evil/x", 5),  regular(4, std::string(300, 'n'), 5),
                  regular(5, "a//b", 5),    regular(6, "ok.txt", 5)};
  protocol::FileListEntry dir;
  dir.file_id = 7;
  dir.entry.path = "evil/newdir";
  dir.entry.type = FileType::kDirectory;
  list.entries.push_back(dir);
  protocol::FileListEntry link;
  link.file_id = 8;
  link.entry.path = "evil/link";
  link.entry.type = FileType::kSymlink;
  link.entry.link_target = "/etc/passwd";
  list.entries.push_back(link);
  return list;
}

}  // namespace ferry::test
