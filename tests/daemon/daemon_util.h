// Shared helpers for the ferryd tests: real processes (ferryd, ferry) with their output
// captured, configs in temp dirs, and a small blocking HTTP GET over a real socket.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "../e2e/e2e_util.h"

namespace ferry::test {

struct CommandResult {
  int exit_code = -1;  // -1: killed by a signal or not run
  std::string out, err;
};

// Runs argv[0] with the given arguments (and extra environment "K=V" entries) to the end.
inline CommandResult run_command(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  int out[2], err[2];
  CommandResult r;
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) return r;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[65536];
  while (open_fds > 0) {
    if (poll(fds, 2, -1) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      } else {
        close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
      }
    }
  }
  int status = 0;
  waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    out.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return out;
}

// A background process whose stderr is collected by a thread (so it never blocks on a full
// pipe), with waits for log lines and for its exit.
class Process {
 public:
  explicit Process(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
    int err[2];
    if (pipe2(err, O_CLOEXEC) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(err[1], 2);
      int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      for (const auto& e : env) putenv(const_cast<char*>(e.c_str()));
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    close(err[1]);
    reader_ = std::thread([this, fd = err[0]] {
      char buf[4096];
      ssize_t n;
      while ((n = read(fd, buf, sizeof buf)) > 0) {
        std::lock_guard lock(mu_);
        err_.append(buf, static_cast<size_t>(n));
        cv_.notify_all();
      }
      close(fd);
      std::lock_guard lock(mu_);
      eof_ = true;
      cv_.notify_all();
    });
  }
  ~Process() {
    if (pid_ > 0 && !exited_) {
      kill(pid_, SIGKILL);
      int st;
      waitpid(pid_, &st, 0);
    }
    if (reader_.joinable()) reader_.join();
  }
  pid_t pid() const { return pid_; }
  void signal(int sig) const { kill(pid_, sig); }

  std::string stderr_text() {
    std::lock_guard lock(mu_);
    return err_;
  }
  // The first match of `re` in stderr (waiting up to `timeout` for it), or "" on timeout.
  // Group 1 when the pattern has one.
  std::string wait_for(const std::string& re, std::chrono::milliseconds timeout = std::chrono::seconds(20),
                       size_t from = 0) {
    std::regex pattern(re);
    std::unique_lock lock(mu_);
    std::smatch m;
    std::string found;
    cv_.wait_for(lock, timeout, [&] {
      std::string tail = err_.size() > from ? err_.substr(from) : "";
      if (std::regex_search(tail, m, pattern)) {
        found = m.size() > 1 ? m[1].str() : m[0].str();
        if (found.empty()) found = " ";
        return true;
      }
      return eof_;
    });
    return found;
  }
  // Exit code (or -1 after a signal / -2 on timeout, when the process is left running).
  int wait_exit(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      int st = 0;
      pid_t r = waitpid(pid_, &st, WNOHANG);
      if (r == pid_) {
        exited_ = true;
        if (reader_.joinable()) reader_.join();
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      }
      if (std::chrono::steady_clock::now() > deadline) return -2;
      usleep(20'000);
    }
  }

 private:
  pid_t pid_ = -1;
  bool exited_ = false;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string err_;
  bool eof_ = false;
};

// A GET over a real TCP socket to 127.0.0.1:port; returns the whole response (status line,
// headers and body), "" when the connection fails.
inline std::string http_get(uint16_t port, const std::string& target, const std::string& method = "GET") {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return "";
  }
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return "";
  }
  std::string resp;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) resp.append(buf, static_cast<size_t>(n));
  close(fd);
  return resp;
}

// A test daemon layout: <dir>/exports/<name> for each export, <dir>/state, <dir>/outside (a
// directory no export covers: tests check that nothing lands there), ports 0, and either
// TLS with a certificate and key for 127.0.0.1 made by the openssl tool (the default), or
// plaintext on both sides for tests about something else.
struct DaemonLayout {
  TempDir dir{"ferryd"};
  std::string config_path;
  bool plaintext = false;
  std::string exports_dir() const { return dir / "exports"; }
  std::string export_path(const std::string& name) const { return dir / ("exports/" + name); }
  std::string outside() const { return dir / "outside"; }
  std::string cert() const { return dir / "cert.pem"; }
  std::string key() const { return dir / "key.pem"; }

  explicit DaemonLayout(const std::vector<std::string>& exports = {"plates"}, const std::string& extra_server = "",
                        bool metrics = true, const std::string& listen = "127.0.0.1:0", bool plain = false)
      : plaintext(plain) {
    mkdir(exports_dir().c_str(), 0755);
    mkdir(outside().c_str(), 0755);
    std::string tls = "plaintext = true\n";
    if (!plaintext) {
      // Self-signed, so the certificate is its own CA for --ca-file; the SAN matches the
      // address the senders dial.
      auto r = run_command({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                            "-keyout", key(), "-out", cert(), "-days", "2", "-subj", "/CN=ferryd-test", "-addext",
                            "subjectAltName=IP:127.0.0.1"});
      if (r.exit_code != 0) ADD_FAILURE() << "openssl could not make the test certificate: " << r.err;
      tls = "cert = \"" + cert() + "\"\nkey = \"" + key() + "\"\n";
    }
    std::string text = "[server]\nlisten = [\"" + listen + "\"]\nstate_dir = \"" + (dir / "state") +
                       "\"\nlog_level = \"info\"\n" + extra_server + "\n[tls]\n" + tls;
    for (const auto& e : exports) {
      mkdir(export_path(e).c_str(), 0755);
      text += "\n[[export]]\nname = \"" + e + "\"\npath = \"" + export_path(e) + "\"\n";
    }
    if (metrics) text += "\n[metrics]\nlisten = \"127.0.0.1:0\"\n";
    config_path = dir / "ferryd.toml";
    write_text(config_path, text);
  }

  // A real token from `ferryd token new`, "" (and a test failure) if it could not be made.
  std::string new_token(const std::string& name, const std::vector<std::string>& grants = {"plates:rw"},
                        const std::string& expires = "") const {
    std::vector<std::string> args = {FERRYD_BINARY, "token", "new", "--config", config_path, "--name", name};
    for (const auto& g : grants) {
      args.push_back("--grant");
      args.push_back(g);
    }
    if (!expires.empty()) {
      args.push_back("--expires");
      args.push_back(expires);
    }
    auto r = run_command(args);
    if (r.exit_code != 0 || r.out.size() < 2) {
      ADD_FAILURE() << "ferryd token new failed: " << r.err;
      return "";
    }
    return r.out.substr(0, r.out.find('\n'));
  }

  // `ferry send` with the token and TLS settings that match this daemon (the client
  // verifies the daemon's certificate with --ca-file), then `rest` (options, SRC..., URL).
  std::vector<std::string> send_args(const std::string& token, const std::vector<std::string>& rest) const {
    std::vector<std::string> args = {FERRY_BINARY, "send", "--token", token};
    if (plaintext) {
      args.push_back("--plaintext");
    } else {
      args.push_back("--ca-file");
      args.push_back(cert());
    }
    args.insert(args.end(), rest.begin(), rest.end());
    return args;
  }
};

// The value of an unlabelled sample in a Prometheus text body, or -1 when it is absent.
inline int64_t metric_value(const std::string& body, const std::string& name) {
  size_t at = body.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stoll(body.substr(at + name.size() + 2));
}

// Starts ferryd on a layout and waits until it is ready; port() is its receiver port.
class Ferryd {
 public:
  explicit Ferryd(const std::string& config, const std::vector<std::string>& env = {})
      : proc_({FERRYD_BINARY, "--config", config}, env) {
    ready_ = !proc_.wait_for("msg=ready").empty();
    std::string port = proc_.wait_for("msg=listening .*port=([0-9]+)", std::chrono::milliseconds(0));
    if (!port.empty() && port != " ") port_ = static_cast<uint16_t>(std::stoi(port));
    std::string m = proc_.wait_for("msg=\"metrics endpoint\" addr=127\\.0\\.0\\.1:([0-9]+)", std::chrono::milliseconds(0));
    if (!m.empty() && m != " ") metrics_port_ = static_cast<uint16_t>(std::stoi(m));
    std::string fp = proc_.wait_for("msg=listening .*fp=(sha256:[0-9a-f]+)", std::chrono::milliseconds(0));
    if (fp != " ") fingerprint_ = fp;
  }
  bool ready() const { return ready_ && port_ != 0; }
  uint16_t port() const { return port_; }
  uint16_t metrics_port() const { return metrics_port_; }
  // "sha256:<hex>" of the certificate ferryd serves, from its "listening" log line ("" plaintext).
  const std::string& fingerprint() const { return fingerprint_; }
  Process& process() { return proc_; }
  // GET /metrics; "" when there is no endpoint or it does not answer.
  std::string metrics() const { return metrics_port_ ? http_get(metrics_port_, "/metrics") : ""; }
  // Polls /metrics until `name` reaches `at_least` (the daemon counts on its network
  // thread, possibly just after the client saw the outcome); returns the last value.
  int64_t wait_metric(const std::string& name, int64_t at_least) const {
    int64_t v = -1;
    for (int i = 0; i < 250; ++i) {
      v = metric_value(metrics(), name);
      if (v >= at_least) break;
      usleep(20'000);
    }
    return v;
  }
  std::string url(const std::string& path) const { return "ferry://127.0.0.1:" + std::to_string(port_) + "/" + path; }

 private:
  Process proc_;
  uint16_t port_ = 0;
  uint16_t metrics_port_ = 0;
  std::string fingerprint_;
  bool ready_ = false;
};

}  // namespace ferry::test
