// Shared fixtures for end-to-end tests: real files in temp dirs, a real receiver on a
// loopback port in a background thread, a tree comparison that checks bytes, types,
// modes, mtimes and symlink targets, and the ferry binary run as a real process.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "codec/hash.h"
#include "ferry/receiver.h"
#include "ferry/sender.h"
#include "ferry/url.h"

namespace ferry::test {

inline std::string make_temp_dir(const char* tag) {
  const char* base = std::getenv("FERRY_TEST_TMP");
  std::string tmpl = std::string(base ? base : "/tmp") + "/ferry-" + tag + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) return {};
  return buf.data();
}

class TempDir {
 public:
  explicit TempDir(const char* tag) : path_(make_temp_dir(tag)) {}
  ~TempDir() {
    if (!path_.empty()) std::system(("rm -rf '" + path_ + "'").c_str());
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

 private:
  std::string path_;
};

// Deterministic pseudo-random bytes (incompressible), written in 1 MiB blocks.
inline void write_random_file(const std::string& path, uint64_t size, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> block(1 << 17);
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << path;
  uint64_t left = size;
  while (left > 0) {
    for (auto& w : block) w = rng();
    size_t n = static_cast<size_t>(std::min<uint64_t>(left, block.size() * 8));
    ASSERT_EQ(::write(fd, block.data(), n), static_cast<ssize_t>(n));
    left -= n;
  }
  ::close(fd);
}

// Compressible "simulation cache" text: rows of limited-precision floats.
inline void write_compressible_file(const std::string& path, uint64_t size) {
  std::ofstream out(path, std::ios::binary);
  uint64_t written = 0;
  uint64_t i = 0;
  char line[128];
  while (written < size) {
    int n = std::snprintf(line, sizeof line, "%llu %.3f %.3f %.3f\n", static_cast<unsigned long long>(i),
                          (i % 1000) * 0.001, (i % 377) * 0.25, (i % 91) * 1.5);
    n = static_cast<int>(std::min<uint64_t>(n, size - written));
    out.write(line, n);
    written += n;
    ++i;
  }
}

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline Hash128 hash_file(const std::string& path) {
  StreamingHash128 h;
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return {};
  std::vector<uint8_t> buf(1 << 20);
  ssize_t n;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0) h.update(buf.data(), static_cast<size_t>(n));
  ::close(fd);
  return h.digest();
}

struct TreeItem {
  char type;  // 'f', 'd', 'l'
  uint64_t size;
  uint32_t mode;
  int64_t mtime_ns;
  std::string content;  // hash hex for files, target for links
};

inline void list_tree(const std::string& root, const std::string& rel, std::map<std::string, TreeItem>* out) {
  std::string dir = rel.empty() ? root : root + "/" + rel;
  DIR* d = opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    // ".ferry" at a receiver's root is ferry's own state folder (resume journals).
    if (n != "." && n != ".." && !(rel.empty() && n == ".ferry")) names.push_back(n);
  }
  closedir(d);
  for (const auto& n : names) {
    std::string r = rel.empty() ? n : rel + "/" + n;
    std::string full = root + "/" + r;
    struct stat st {};
    lstat(full.c_str(), &st);
    TreeItem it{};
    it.mode = st.st_mode & 07777;
    it.mtime_ns = st.st_mtim.tv_sec * 1'000'000'000ll + st.st_mtim.tv_nsec;
    if (S_ISDIR(st.st_mode)) {
      it.type = 'd';
      list_tree(root, r, out);
    } else if (S_ISLNK(st.st_mode)) {
      it.type = 'l';
      char buf[4096];
      ssize_t len = readlink(full.c_str(), buf, sizeof buf);
      it.content.assign(buf, len > 0 ? static_cast<size_t>(len) : 0);
      it.mode = 0;      // link permission bits are meaningless on Linux
      it.mtime_ns = 0;  // not compared: see ExpectSameTree
    } else {
      it.type = 'f';
      it.size = static_cast<uint64_t>(st.st_size);
      it.content = hash_file(full).hex();
    }
    (*out)[r] = it;
  }
}

// Same names, types, sizes, bytes, modes, mtimes (files and dirs) and link targets.
inline void expect_same_tree(const std::string& a, const std::string& b) {
  std::map<std::string, TreeItem> ta, tb;
  list_tree(a, "", &ta);
  list_tree(b, "", &tb);
  ASSERT_EQ(ta.size(), tb.size()) << a << " vs " << b;
  for (const auto& [rel, x] : ta) {
    auto it = tb.find(rel);
    ASSERT_NE(it, tb.end()) << "missing on the receiver: " << rel;
    const TreeItem& y = it->second;
    EXPECT_EQ(x.type, y.type) << rel;
    EXPECT_EQ(x.size, y.size) << rel;
    EXPECT_EQ(x.content, y.content) << rel;
    EXPECT_EQ(x.mode, y.mode) << rel;
    EXPECT_EQ(x.mtime_ns, y.mtime_ns) << rel;
  }
}

// Names under `dir` (recursive) that look like ferry's staged temporary files.
inline std::vector<std::string> leftover_temp_files(const std::string& dir) {
  std::map<std::string, TreeItem> t;
  list_tree(dir, "", &t);
  std::vector<std::string> out;
  for (const auto& [rel, item] : t)
    if (rel.find(".ferry-") != std::string::npos && rel.size() > 5 && rel.substr(rel.size() - 5) == ".part")
      out.push_back(rel);
  return out;
}

// Waits (up to 10 s) until no receiver session holds a journal under `root`: the receiver
// has finished with an interrupted transfer (written and journaled what had arrived).
inline bool wait_until_journals_released(const std::string& root) {
  std::string dir = root + "/.ferry/journal";
  for (int i = 0; i < 200; ++i) {
    bool busy = false;
    if (DIR* d = opendir(dir.c_str())) {
      while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n.size() < 3 || n.substr(n.size() - 3) != ".fj") continue;
        int fd = ::open((dir + "/" + n).c_str(), O_RDONLY);
        if (fd < 0) continue;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) busy = true;
        ::close(fd);
      }
      closedir(d);
    }
    if (!busy) return true;
    usleep(50'000);
  }
  return false;
}

// A real receiver on 127.0.0.1:<free port>, served from a background thread.
class ReceiverThread {
 public:
  explicit ReceiverThread(const std::string& root, uint64_t memory = 256ull << 20,
                          std::chrono::milliseconds handshake_timeout = std::chrono::milliseconds(30'000))
      : ReceiverThread([&] {
          ReceiveOptions o;
          o.root = root;
          o.memory = memory;
          o.handshake_timeout = handshake_timeout;
          return o;
        }()) {}
  // Any options; `listen` is forced to 127.0.0.1:<free port>.
  explicit ReceiverThread(ReceiveOptions o) {
    o.listen = "127.0.0.1:0";
    auto r = Receiver::create(o);
    if (!r) {
      ADD_FAILURE() << r.status().to_string();
      return;
    }
    receiver_ = std::move(*r);
    thread_ = std::thread([this] { (void)receiver_->run(); });
  }
  ~ReceiverThread() {
    if (receiver_) receiver_->stop();
    if (thread_.joinable()) thread_.join();
  }
  // The URL with the receiver's token and certificate fingerprint, as `ferry recv` prints it.
  FerryUrl url(const std::string& dest = "") const {
    FerryUrl u;
    u.host = "127.0.0.1";
    u.port = receiver_ ? receiver_->port() : 0;
    u.path = dest;
    u.token = token();
    u.fingerprint = receiver_ ? receiver_->fingerprint() : "";
    return u;
  }
  std::string token() const { return receiver_ ? receiver_->token() : ""; }
  Receiver* receiver() const { return receiver_.get(); }

 private:
  std::unique_ptr<Receiver> receiver_;
  std::thread thread_;
};

inline SendOptions quiet_options() {
  SendOptions o;
  o.connect_timeout = std::chrono::milliseconds(5000);
  return o;
}

// --- the ferry binary as a real process -------------------------------------------------

struct SpawnOptions {
  // stderr goes to this file instead of a pipe: a chatty (-vv) child then never blocks on a
  // full pipe while the test is still reading its stdout.
  std::string err_path;
  std::vector<std::pair<std::string, std::string>> env;  // set in the child only
  // Runs in the child before exec (e.g. installs a seccomp filter); false: the child exits 126.
  bool (*in_child)() = nullptr;
};

struct Child {
  pid_t pid = -1;
  int out_fd = -1;  // child's stdout
  int err_fd = -1;  // child's stderr; -1 with SpawnOptions::err_path
  std::string err_path;
};

// Starts `args` (argv[0] a path) with stdout on a pipe. Every child runs under timeout(1): a
// hang fails the test with its output instead of waiting for ctest's limit.
inline Child spawn(const std::vector<std::string>& args, const SpawnOptions& opts = {}) {
  int out[2], err[2] = {-1, -1};
  if (pipe(out) != 0 || (opts.err_path.empty() && pipe(err) != 0)) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    if (opts.err_path.empty()) {
      dup2(err[1], 2);
      close(err[0]);
    } else {
      dup2(::open(opts.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644), 2);
    }
    for (const auto& [name, value] : opts.env) setenv(name.c_str(), value.c_str(), 1);
    if (opts.in_child && !opts.in_child()) _exit(126);
    std::vector<std::string> full = {"/usr/bin/timeout", "-k", "5", "240"};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (const auto& a : full) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  if (err[1] >= 0) close(err[1]);
  return {pid, out[0], err[0], opts.err_path};
}

// Everything up to EOF; closes `fd`.
inline std::string read_all(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  close(fd);
  return s;
}

// One line without its newline (what ferry recv prints first: its URL).
inline std::string read_line(int fd) {
  std::string s;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') s.push_back(c);
  return s;
}

struct Finished {
  int exit_code = -1;  // 128 + N when killed by signal N
  long max_rss_kb = 0;
  std::string out, err;
};

// Reads the child's output to EOF and reaps it.
inline Finished wait_for(Child& c) {
  Finished f;
  f.out = read_all(c.out_fd);
  if (c.err_fd >= 0) f.err = read_all(c.err_fd);
  int status = 0;
  rusage ru{};
  wait4(c.pid, &status, 0, &ru);
  if (!c.err_path.empty()) f.err = read_text(c.err_path);
  f.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  f.max_rss_kb = ru.ru_maxrss;
  return f;
}

inline Finished run(const std::vector<std::string>& args, const SpawnOptions& opts = {}) {
  Child c = spawn(args, opts);
  return wait_for(c);
}

// `ferry recv --listen 127.0.0.1:0 --root ROOT ARGS...` and the URL it printed first (with
// token and certificate pin, as users copy it). SIGTERMed and reaped at destruction unless
// wait() or stop() reaped it already.
class RecvProcess {
 public:
  explicit RecvProcess(const std::string& root, const std::vector<std::string>& args = {},
                       const SpawnOptions& opts = {}) {
    std::vector<std::string> full = {FERRY_BINARY, "recv", "--listen", "127.0.0.1:0", "--root", root};
    full.insert(full.end(), args.begin(), args.end());
    child_ = spawn(full, opts);
    url_ = read_line(child_.out_fd);
  }
  ~RecvProcess() { stop(); }
  RecvProcess(const RecvProcess&) = delete;
  RecvProcess& operator=(const RecvProcess&) = delete;

  const std::string& url() const { return url_; }
  std::string url(const std::string& path) const { return url_with_path(url_, path); }
  // Until it exits by itself (--once). Reaps it once; later calls return a Finished with
  // exit_code -1 (never kill(-1, ...) or wait for some other child).
  Finished wait() {
    if (child_.pid <= 0) return {};
    Finished f = wait_for(child_);
    child_.pid = -1;
    return f;
  }
  Finished stop() {
    if (child_.pid <= 0) return {};
    kill(child_.pid, SIGTERM);
    return wait();
  }

 private:
  Child child_;
  std::string url_;
};

}  // namespace ferry::test
