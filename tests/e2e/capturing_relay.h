// TEST RELAY shared by the e2e and daemon tests: proves what crosses the wire.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace ferry::test {

// TEST RELAY: a loopback TCP relay between the sender and the receiver that records every
// byte the sender sends, so a test can look at what really crossed the wire.
class CapturingRelay {
 public:
  explicit CapturingRelay(uint16_t target) : target_(target) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    listen(listen_fd_, 64);
    socklen_t len = sizeof a;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~CapturingRelay() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    ::close(listen_fd_);
    acceptor_.join();
    for (auto& t : pumps_) t.join();
  }
  uint16_t port() const { return port_; }
  std::string captured() {
    std::lock_guard lock(mu_);
    return captured_;
  }

 private:
  void accept_loop() {
    for (;;) {
      int c = accept(listen_fd_, nullptr, nullptr);
      if (c < 0) return;
      int s = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(target_);
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
        ::close(c);
        ::close(s);
        continue;
      }
      pumps_.emplace_back([this, c, s] { pump(c, s); });
    }
  }
  // Both directions of one connection until either side closes.
  void pump(int client, int server) {
    std::vector<char> buf(1 << 16);
    pollfd fds[2] = {{client, POLLIN, 0}, {server, POLLIN, 0}};
    while (!stop_) {
      if (poll(fds, 2, 200) <= 0) continue;
      bool done = false;
      for (int i = 0; i < 2 && !done; ++i) {
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        ssize_t n = ::recv(fds[i].fd, buf.data(), buf.size(), 0);
        if (n <= 0) {
          done = true;
          break;
        }
        if (i == 0) {
          std::lock_guard lock(mu_);
          captured_.append(buf.data(), static_cast<size_t>(n));
        }
        int to = i == 0 ? server : client;
        for (ssize_t off = 0; off < n;) {
          ssize_t w = ::send(to, buf.data() + off, static_cast<size_t>(n - off), MSG_NOSIGNAL);
          if (w <= 0) {
            done = true;
            break;
          }
          off += w;
        }
      }
      if (done) break;
    }
    ::close(client);
    ::close(server);
  }

  uint16_t target_, port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::vector<std::thread> pumps_;
  std::mutex mu_;
  std::string captured_;
};

}  // namespace ferry::test
