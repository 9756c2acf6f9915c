// Shared fixtures for end-to-end tests: real files in temp dirs, a real receiver on a
// loopback port in a background thread, and a tree comparison that checks bytes, types,
// modes, mtimes and symlink targets.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "codec/hash.h"
#include "ferry/receiver.h"
#include "ferry/sender.h"

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

}  // namespace ferry::test
