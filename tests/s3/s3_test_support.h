// Shared by the S3 tests: a real s3rver (npm package) on a free loopback port, commands run
// through the shell with their output captured, and S3 client helpers.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../e2e/e2e_util.h"
#include "s3/s3_transfer.h"

namespace ferry::s3::test {

using ferry::test::TempDir;
using ferry::test::write_random_file;

inline const std::string kFerry = FERRY_BINARY;

inline uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool file_exists(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct CommandResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `cmd` with /bin/sh; `env` is prepended ("A=1 B=2"). Exit code 128+N for signal N.
inline CommandResult run(const std::string& cmd, const std::string& env = "") {
  static int counter = 0;
  std::string errfile = "/tmp/ferry-s3-test-stderr-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  std::string full = (env.empty() ? "" : "env " + env + " ") + cmd + " 2>" + errfile;
  CommandResult r;
  FILE* p = ::popen(full.c_str(), "r");
  if (!p) return r;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  r.err = read_file(errfile);
  ::unlink(errfile.c_str());
  return r;
}

// Number after "key": in a flat JSON text (the --json report).
inline long long json_number(const std::string& json, const std::string& key) {
  size_t k = json.find("\"" + key + "\":");
  if (k == std::string::npos) return -1;
  return std::atoll(json.c_str() + k + key.size() + 3);
}

// Debian's awscli (the pyenv shim on developer machines may be another version).
inline std::string aws_cli() { return file_exists("/usr/bin/aws") ? "/usr/bin/aws" : "aws"; }

// A real S3-compatible server: s3rver (npm) under Node.js, on 127.0.0.1 and a free port,
// storing in a temp directory; stopped (SIGTERM, then SIGKILL) when the fixture ends.
class S3rver {
 public:
  static std::string script() {
    if (const char* p = std::getenv("FERRY_S3RVER")) return p;
    return "/opt/ferry-test/s3rver/node_modules/s3rver/bin/s3rver.js";
  }

  // Starts the server with `buckets` created; fails the test (never skips) if s3rver is
  // not installed: packaging/install-deps.sh installs it.
  // With tls, s3rver serves HTTPS with a fresh self-signed certificate for 127.0.0.1
  // (ca_file() is that certificate).
  void start(const std::vector<std::string>& buckets, bool tls = false) {
    tls_ = tls;
    ASSERT_TRUE(file_exists(script())) << "s3rver not found at " << script()
                                       << ": run packaging/install-deps.sh (it installs s3rver@3 from npm), or set FERRY_S3RVER";
    port_ = free_port();
    // s3rver makes ListObjectsV2 continuation tokens with DES, which Node 17+ (OpenSSL 3)
    // only offers through its legacy provider.
    std::vector<std::string> args = {"node", "--openssl-legacy-provider", script(), "-d", dir_.path(), "-a", "127.0.0.1", "-p", std::to_string(port_), "-s"};
    if (tls) {
      auto r = run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 "
                   "-keyout '" + dir_.path() + "/key.pem' -out '" + ca_file() + "'");
      ASSERT_EQ(r.exit_code, 0) << "openssl: " << r.err;
      args.insert(args.end(), {"--key", dir_.path() + "/key.pem", "--cert", ca_file()});
    }
    for (const auto& b : buckets) {
      args.push_back("--configure-bucket");
      args.push_back(b);
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::execvp("node", argv.data());
      std::perror("exec node");
      ::_exit(127);
    }
    ASSERT_GT(pid_, 0);
    // Ready when a bucket listing answers (the buckets are created just before listen).
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (;;) {
      S3Target t{buckets.empty() ? "ready-check" : buckets[0], ""};
      S3Options o = options();
      o.retry.max_attempts = 1;
      auto c = make_client(t, o);
      ASSERT_TRUE(c) << c.status().message();
      if (auto l = (*c)->list_objects(""); l || buckets.empty()) break;
      int st = 0;
      ASSERT_EQ(::waitpid(pid_, &st, WNOHANG), 0) << "s3rver exited at start";
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "s3rver did not become ready on port " << port_;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  ~S3rver() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      for (int i = 0; i < 50; ++i) {
        if (::waitpid(pid_, nullptr, WNOHANG) == pid_) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }

  uint16_t port() const { return port_; }
  std::string endpoint() const { return (tls_ ? "https://127.0.0.1:" : "http://127.0.0.1:") + std::to_string(port_); }
  std::string ca_file() const { return dir_.path() + "/cert.pem"; }
  S3Options options() const {
    S3Options o;
    o.endpoint = endpoint();
    if (tls_) o.ca_file = ca_file();
    o.retry.base = std::chrono::milliseconds(5);
    o.retry.cap = std::chrono::milliseconds(200);
    return o;
  }

 private:
  TempDir dir_{"s3rver"};
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  bool tls_ = false;
};

// s3rver's fixed account, and no instance-metadata lookups (tests never leave loopback).
inline void use_s3rver_credentials() {
  ::setenv("AWS_ACCESS_KEY_ID", "S3RVER", 1);
  ::setenv("AWS_SECRET_ACCESS_KEY", "S3RVER", 1);
  ::unsetenv("AWS_SESSION_TOKEN");
  ::unsetenv("AWS_PROFILE");
  ::setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
  ::setenv("AWS_DEFAULT_REGION", "us-east-1", 1);
}

inline std::string xxh3_of_file(const std::string& path) {
  std::string data = read_file(path);
  return xxh3_128(data.data(), data.size()).hex();
}

}  // namespace ferry::s3::test
