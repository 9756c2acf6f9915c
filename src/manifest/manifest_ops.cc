// create_manifest and verify_tree (see manifest_ops.h).
#include "manifest/manifest_ops.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <optional>
#include <utility>

#include "codec/hash.h"
#include "io/unique_fd.h"
#include "manifest/manifest_file.h"

namespace ferry {
namespace {

constexpr size_t kReadBuffer = 1 << 20;
constexpr auto kProgressInterval = std::chrono::milliseconds(250);

class ProgressTicker {
 public:
  explicit ProgressTicker(const ManifestProgress& cb)
      : cb_(cb), last_(std::chrono::steady_clock::now()) {}

  void add_bytes(uint64_t n) {
    bytes_ += n;
    maybe_report();
  }
  void file_done() {
    ++files_;
    maybe_report();
  }
  void finish() {
    if (cb_) cb_(files_, bytes_);
  }

 private:
  void maybe_report() {
    if (!cb_) return;
    auto now = std::chrono::steady_clock::now();
    if (now - last_ < kProgressInterval) return;
    last_ = now;
    cb_(files_, bytes_);
  }

  const ManifestProgress& cb_;
  std::chrono::steady_clock::time_point last_;
  uint64_t files_ = 0;
  uint64_t bytes_ = 0;
};

struct HashedFile {
  Hash128 hash;
  uint64_t size = 0;  // bytes actually read and hashed
  struct stat st;     // fstat of the open file, before reading
};

// Hashes the regular file at `path` (not following a final symlink). Returns 0 or an errno;
// EINVAL when the path no longer names a regular file.
int hash_file(const std::string& path, std::vector<uint8_t>& buf, ProgressTicker& ticker,
              HashedFile* out) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno;
  UniqueFd guard(fd);
  if (::fstat(fd, &out->st) != 0) return errno;
  if (!S_ISREG(out->st.st_mode)) return EINVAL;
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  StreamingHash128 hasher;
  out->size = 0;
  while (true) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    if (n == 0) break;
    hasher.update(buf.data(), static_cast<size_t>(n));
    out->size += static_cast<uint64_t>(n);
    ticker.add_bytes(static_cast<uint64_t>(n));
  }
  out->hash = hasher.digest();
  ticker.file_done();
  return 0;
}

Status hash_error(const std::string& path, int err) {
  if (err == EINVAL) {
    return Status(Error::kLocalIo, "hash '" + path + "': no longer a regular file");
  }
  return errno_status(Error::kLocalIo, "hash '" + path + "'", err);
}

std::string strip_trailing_slashes(const std::string& dir) {
  size_t last = dir.find_last_not_of('/');
  if (last == std::string::npos) return dir.empty() ? dir : "/";
  return dir.substr(0, last + 1);
}

// What the manifest's "root" line records: `dir` made absolute (against the current
// directory, symlinks kept as named) without trailing slashes, so a later transfer from a
// different directory can still find the tree.
std::string root_for(const std::string& dir) {
  std::string d = strip_trailing_slashes(dir);
  if (!d.empty() && d.front() == '/') return d;
  char cwd[PATH_MAX];
  if (::getcwd(cwd, sizeof cwd) == nullptr) return d;
  std::string base(cwd);
  while (d.size() >= 2 && d[0] == '.' && d[1] == '/') d.erase(0, 2);
  if (d == "." || d.empty()) return base;
  return base == "/" ? "/" + d : base + "/" + d;
}

std::optional<std::string> real_path(const std::string& p) {
  char* r = ::realpath(p.c_str(), nullptr);
  if (r == nullptr) return std::nullopt;
  std::string out(r);
  std::free(r);
  return out;
}

// The path of `file` relative to `dir` when it lies inside it (resolving symlinks in both
// directories; `file` itself need not exist), else nullopt.
std::optional<std::string> relative_inside(const std::string& dir, const std::string& file) {
  std::string f = strip_trailing_slashes(file);
  size_t slash = f.rfind('/');
  std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : f.substr(0, slash));
  std::string base = slash == std::string::npos ? f : f.substr(slash + 1);
  if (base.empty() || base == "." || base == "..") return std::nullopt;
  auto d = real_path(dir);
  auto p = real_path(parent);
  if (!d || !p) return std::nullopt;
  if (*p == *d) return base;
  std::string prefix = *d == "/" ? "/" : *d + "/";
  if (p->compare(0, prefix.size(), prefix) != 0) return std::nullopt;
  return p->substr(prefix.size()) + "/" + base;
}

int64_t mtime_of(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

Result<std::vector<FileEntry>> scan_dir(const std::string& dir, const ScanWarning& warn) {
  if (dir.empty()) return Status(Error::kUsage, "empty directory path");
  return scan_sources({dir + "/"}, ScanOptions{}, warn);
}

}  // namespace

Status create_manifest(const std::string& dir, const std::string& out_path,
                       const ManifestProgress& progress, const ScanWarning& warn) {
  auto scanned = scan_dir(dir, warn);
  if (!scanned) return scanned.status();
  std::vector<FileEntry>& entries = *scanned;
  if (auto self = relative_inside(dir, out_path)) {
    std::string tmp = *self + ".tmp";
    std::erase_if(entries, [&](const FileEntry& e) { return e.path == *self || e.path == tmp; });
  }

  auto writer = ManifestWriter::create(out_path, root_for(dir));
  if (!writer) return writer.status();
  std::vector<uint8_t> buf(kReadBuffer);
  ProgressTicker ticker(progress);
  for (FileEntry& e : entries) {
    Status st;
    if (e.type == FileType::kRegular) {
      HashedFile h;
      if (int err = hash_file(e.source_path, buf, ticker, &h); err != 0) {
        return hash_error(e.source_path, err);
      }
      e.size = h.size;
      e.mode = static_cast<uint32_t>(h.st.st_mode & 07777);
      e.mtime_ns = mtime_of(h.st);
      st = writer->add(e, &h.hash);
    } else {
      st = writer->add(e, nullptr);
    }
    if (!st) return st;  // the writer's destructor removes the .tmp
  }
  if (Status st = writer->finish(); !st) return st;
  ticker.finish();
  return Status::ok();
}

Result<VerifyReport> verify_tree(const std::string& dir, const std::string& manifest_path,
                                 const ManifestProgress& progress, const ScanWarning& warn) {
  auto reader = ManifestReader::open(manifest_path);
  if (!reader) return reader.status();
  auto scanned = scan_dir(dir, warn);
  if (!scanned) return scanned.status();
  std::vector<FileEntry>& disk = *scanned;
  if (auto self = relative_inside(dir, manifest_path)) {
    std::erase_if(disk, [&](const FileEntry& e) { return e.path == *self; });
  }
  auto less = [](const FileEntry& a, const FileEntry& b) {
    return manifest_path_less(a.path, b.path);
  };
  if (!std::is_sorted(disk.begin(), disk.end(), less)) std::sort(disk.begin(), disk.end(), less);

  VerifyReport report;
  std::vector<uint8_t> buf(kReadBuffer);
  ProgressTicker ticker(progress);
  ManifestEntry m;
  auto advance = [&]() -> Result<bool> { return reader->next(&m); };
  auto have = advance();
  if (!have) return have.status();
  size_t i = 0;
  while (*have || i < disk.size()) {
    int c = !*have ? 1 : (i == disk.size() ? -1 : compare_manifest_paths(m.entry.path, disk[i].path));
    if (c > 0) {
      report.extra.push_back(disk[i].path);
      ++i;
      continue;
    }
    if (c < 0) {
      report.missing.push_back(m.entry.path);
      have = advance();
      if (!have) return have.status();
      continue;
    }
    const FileEntry& want = m.entry;
    const FileEntry& got = disk[i];
    bool same = want.type == got.type;
    bool vanished = false;
    if (same && want.type == FileType::kRegular) {
      if (got.size != want.size) {
        same = false;
      } else if (m.has_hash) {
        HashedFile h;
        int err = hash_file(got.source_path, buf, ticker, &h);
        if (err == ENOENT) {
          vanished = true;
        } else if (err != 0) {
          return hash_error(got.source_path, err);
        } else {
          same = h.size == want.size && h.hash == m.hash;
        }
      }
    } else if (same && want.type == FileType::kSymlink) {
      same = got.link_target == want.link_target;
    }
    if (vanished) {
      report.missing.push_back(want.path);
    } else if (!same) {
      report.mismatched.push_back(want.path);
    } else {
      ++report.matched;
      if (got.mode != want.mode || got.mtime_ns != want.mtime_ns) {
        report.attr_differences.push_back(want.path);
      }
    }
    ++i;
    have = advance();
    if (!have) return have.status();
  }
  ticker.finish();
  return report;
}

}  // namespace ferry
