#include "manifest/scanner.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace ferry {
namespace {

constexpr size_t kMaxLinkBytes = 1 << 20;  // far beyond PATH_MAX; only guards the loop

Status scan_error(const std::string& path, int err) {
  return errno_status(Error::kLocalIo, "scan '" + path + "'", err);
}

std::string join_local(const std::string& dir, const std::string& name) {
  if (!dir.empty() && dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

// readlink() with a growing buffer: st_size is only a hint (0 on some filesystems, and the
// link may be replaced between lstat and readlink). Returns 0 or an errno.
int read_link(const std::string& path, size_t hint, std::string* out) {
  size_t cap = std::max<size_t>(hint + 1, 256);
  while (cap <= kMaxLinkBytes) {
    out->resize(cap);
    ssize_t n = ::readlink(path.c_str(), out->data(), cap);
    if (n < 0) return errno;
    if (static_cast<size_t>(n) < cap) {  // not truncated
      out->resize(static_cast<size_t>(n));
      return 0;
    }
    cap *= 2;
  }
  return ENAMETOOLONG;
}

const char* special_kind(mode_t mode) {
  if (S_ISFIFO(mode)) return "fifo";
  if (S_ISSOCK(mode)) return "socket";
  if (S_ISBLK(mode)) return "block device";
  if (S_ISCHR(mode)) return "character device";
  return "special file";
}

class Scanner {
 public:
  Scanner(const ScanOptions& options, const ScanWarning& warn) : options_(options), warn_(warn) {}

  Status scan_source(const std::string& src) {
    if (src.empty()) return Status(Error::kUsage, "empty source path");
    // rsync naming: a trailing slash (or a "." / ".." / "/" SRC, which has no usable base
    // name) means "the directory's contents"; otherwise the base name is the top entry.
    size_t end = src.find_last_not_of('/');
    bool contents = end == std::string::npos || end + 1 < src.size();
    std::string trimmed = end == std::string::npos ? "/" : src.substr(0, end + 1);
    size_t slash = trimmed.rfind('/');
    std::string base = slash == std::string::npos ? trimmed : trimmed.substr(slash + 1);
    if (base == "." || base == "..") contents = true;

    struct stat st;
    // With a trailing slash lstat resolves a symlinked directory itself, as rsync does.
    if (::lstat(src.c_str(), &st) != 0) return scan_error(src, errno);
    if (!contents) return visit(src, base, st);
    if (!S_ISDIR(st.st_mode)) return scan_error(src, ENOTDIR);
    stack_.emplace_back(st.st_dev, st.st_ino);
    Status result = walk_dir(src, "", /*top=*/true);
    stack_.pop_back();
    return result;
  }

  std::vector<FileEntry> take_entries() { return std::move(entries_); }

 private:
  void warn(const std::string& message) {
    if (warn_) warn_(message);
  }

  // One item already lstat'ed as `st`: records it, and for a directory its whole subtree.
  Status visit(const std::string& local, const std::string& rel, struct stat st) {
    if (S_ISLNK(st.st_mode) && options_.follow_symlinks) {
      if (::stat(local.c_str(), &st) != 0) {
        int err = errno;
        if (err == ENOENT || err == ELOOP || err == ENOTDIR) {
          warn("skipping symlink '" + rel + "': cannot follow it: " + std::strerror(err));
          return Status::ok();
        }
        return scan_error(local, err);
      }
    }
    FileEntry e;
    e.path = rel;
    e.mode = static_cast<uint32_t>(st.st_mode & 07777);
    e.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    e.source_path = local;
    if (S_ISREG(st.st_mode)) {
      e.type = FileType::kRegular;
      e.size = static_cast<uint64_t>(st.st_size);
      entries_.push_back(std::move(e));
      return Status::ok();
    }
    if (S_ISLNK(st.st_mode)) {
      e.type = FileType::kSymlink;
      int err = read_link(local, static_cast<size_t>(st.st_size), &e.link_target);
      if (err == ENOENT) {
        warn("skipping '" + rel + "': vanished during the scan");
        return Status::ok();
      }
      if (err != 0) return scan_error(local, err);
      entries_.push_back(std::move(e));
      return Status::ok();
    }
    if (S_ISDIR(st.st_mode)) {
      // Only reachable through followed symlinks: a directory already on the current path
      // would make the walk infinite.
      for (const auto& [dev, ino] : stack_) {
        if (dev == st.st_dev && ino == st.st_ino) {
          warn("skipping '" + rel + "': symlink loops back to an enclosing directory");
          return Status::ok();
        }
      }
      e.type = FileType::kDirectory;
      entries_.push_back(std::move(e));  // pre-order: the directory precedes its contents
      stack_.emplace_back(st.st_dev, st.st_ino);
      Status result = walk_dir(local, rel, /*top=*/false);
      stack_.pop_back();
      return result;
    }
    warn(std::string("skipping ") + special_kind(st.st_mode) + " '" + rel +
         "': not a regular file, directory or symlink");
    return Status::ok();
  }

  Status walk_dir(const std::string& local, const std::string& rel, bool top) {
    std::vector<std::string> names;
    {
      DIR* dir = ::opendir(local.c_str());
      if (dir == nullptr) {
        if (errno == ENOENT && !top) {
          warn("skipping '" + rel + "': vanished during the scan");
          return Status::ok();
        }
        return scan_error(local, errno);
      }
      // The listing is read completely and the DIR closed before recursing, so open
      // descriptors do not grow with the depth of the tree.
      while (true) {
        errno = 0;
        dirent* d = ::readdir(dir);
        if (d == nullptr) break;
        if (std::strcmp(d->d_name, ".") == 0 || std::strcmp(d->d_name, "..") == 0) continue;
        names.emplace_back(d->d_name);
      }
      int err = errno;
      ::closedir(dir);
      if (err != 0) return scan_error(local, err);
    }
    // std::string compares as unsigned bytes: a deterministic, locale-free order.
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) {
      std::string child_local = join_local(local, name);
      std::string child_rel = rel.empty() ? name : rel + "/" + name;
      struct stat st;
      if (::lstat(child_local.c_str(), &st) != 0) {
        if (errno == ENOENT) {
          warn("skipping '" + child_rel + "': vanished during the scan");
          continue;
        }
        return scan_error(child_local, errno);
      }
      if (Status s = visit(child_local, child_rel, st); !s) return s;
    }
    return Status::ok();
  }

  const ScanOptions& options_;
  const ScanWarning& warn_;
  std::vector<FileEntry> entries_;
  std::vector<std::pair<dev_t, ino_t>> stack_;  // directories on the current path
};

}  // namespace

Result<std::vector<FileEntry>> scan_sources(const std::vector<std::string>& sources,
                                            const ScanOptions& options, const ScanWarning& warn) {
  Scanner scanner(options, warn);
  std::vector<FileEntry> all;
  std::vector<uint32_t> origin;  // which source each entry came from
  for (size_t i = 0; i < sources.size(); ++i) {
    if (Status st = scanner.scan_source(sources[i]); !st) return st;
    std::vector<FileEntry> part = scanner.take_entries();
    origin.insert(origin.end(), part.size(), static_cast<uint32_t>(i));
    all.insert(all.end(), std::make_move_iterator(part.begin()),
               std::make_move_iterator(part.end()));
  }

  // Within one source paths are unique by construction; across sources they may collide
  // ("a/x" and "b/x", or "d/" containing "x" and "x"). Sort indices rather than copy paths.
  if (sources.size() > 1) {
    std::vector<uint32_t> order(all.size());
    for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(),
              [&](uint32_t a, uint32_t b) {
                int c = all[a].path.compare(all[b].path);
                return c != 0 ? c < 0 : a < b;  // ties in list order: name the earlier source first
              });
    for (size_t i = 1; i < order.size(); ++i) {
      const FileEntry& a = all[order[i - 1]];
      const FileEntry& b = all[order[i]];
      if (a.path == b.path) {
        return Status(Error::kUsage, "sources '" + sources[origin[order[i - 1]]] + "' and '" +
                                         sources[origin[order[i]]] +
                                         "' both map to the destination path '" + a.path + "'");
      }
    }
  }
  return all;
}

}  // namespace ferry
