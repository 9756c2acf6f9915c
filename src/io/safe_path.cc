#include "io/safe_path.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace ferry {
namespace {

// Paths come from the peer: quote them without letting control bytes (terminal escapes,
// NUL) or megabyte-long strings reach a log line.
std::string quote(std::string_view path) {
  constexpr size_t kMaxShown = 200;
  std::string out = "'";
  for (size_t i = 0; i < path.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(path[i]);
    if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  if (path.size() > kMaxShown) out += "...";
  out += "'";
  return out;
}

Status refuse(std::string_view path, const char* rule) {
  return Status(Error::kRefused, "path " + quote(path) + " " + rule);
}

// Walks `rel` (already validated, non-empty) from `root_fd` one component at a time with
// O_NOFOLLOW, so nothing below the root is ever reached through a symlink. On failure returns
// an invalid fd, sets *err and sets *fail_end to the length of the prefix that failed.
UniqueFd walk(int root_fd, std::string_view rel, bool create, uint32_t mode, int* err,
              size_t* fail_end) {
  UniqueFd cur;
  int cur_fd = root_fd;
  size_t start = 0;
  while (start <= rel.size()) {
    size_t slash = rel.find('/', start);
    size_t end = slash == std::string_view::npos ? rel.size() : slash;
    std::string comp(rel.substr(start, end - start));
    int fd = -1;
    // Two attempts: if mkdirat loses a race with a concurrent creator (EEXIST), the second
    // open sees whatever won and judges it (a directory is fine, a symlink is refused).
    for (int attempt = 0; attempt < 2; ++attempt) {
      do {
        fd = ::openat(cur_fd, comp.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      } while (fd < 0 && errno == EINTR);
      if (fd >= 0 || errno != ENOENT || !create) break;
      if (::mkdirat(cur_fd, comp.c_str(), static_cast<mode_t>(mode & 07777)) != 0 &&
          errno != EEXIST) {
        break;
      }
    }
    if (fd < 0) {
      *err = errno;
      *fail_end = end;
      return UniqueFd();
    }
    cur.reset(fd);
    cur_fd = fd;
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return cur;
}

}  // namespace

Status validate_relative_path(std::string_view path) {
  if (path.empty()) return refuse(path, "is empty");
  if (path.size() > kMaxPathBytes) return refuse(path, "is longer than 4096 bytes");
  if (path.front() == '/') return refuse(path, "is absolute");
  if (path.find('\0') != std::string_view::npos) return refuse(path, "contains a NUL byte");
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    size_t end = slash == std::string_view::npos ? path.size() : slash;
    std::string_view comp = path.substr(start, end - start);
    if (comp.empty()) return refuse(path, "has an empty component");
    if (comp == ".") return refuse(path, "has a '.' component");
    if (comp == "..") return refuse(path, "escapes the destination root ('..')");
    if (comp.size() > kMaxNameBytes) return refuse(path, "has a component longer than 255 bytes");
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return Status::ok();
}

std::string join_relative(std::string_view base, std::string_view rel) {
  if (base.empty()) return std::string(rel);
  if (rel.empty()) return std::string(base);
  std::string out;
  out.reserve(base.size() + 1 + rel.size());
  out.append(base).append("/").append(rel);
  return out;
}

void split_parent(std::string_view path, std::string* parent, std::string* name) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) {
    parent->clear();
    name->assign(path);
  } else {
    parent->assign(path.substr(0, slash));
    name->assign(path.substr(slash + 1));
  }
}

Result<RootDir> RootDir::open(const std::string& path, bool create) {
  if (path.empty()) return Status(Error::kUsage, "destination path is empty");
  if (create) {
    // mkdir -p. The root is the operator's choice, so symlinks along it are followed; each
    // prefix may already exist (EEXIST), anything else wrong shows up in the open below.
    for (size_t i = 1; i <= path.size(); ++i) {
      if (i != path.size() && path[i] != '/') continue;
      if (path[i - 1] == '/') continue;
      std::string prefix = path.substr(0, i);
      if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
        int err = errno;
        struct stat st;
        // Some filesystems report EACCES/EROFS before EEXIST for a directory that exists.
        if (::stat(prefix.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) continue;
        return errno_status(Error::kLocalIo, "create destination '" + prefix + "'", err);
      }
    }
  }
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno_status(Error::kLocalIo, "open destination '" + path + "'", errno);
  return RootDir(UniqueFd(fd), path);
}

Result<UniqueFd> RootDir::open_dir(std::string_view rel_dir, bool create, uint32_t mode) const {
  if (rel_dir.empty()) {
    int fd = ::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return errno_status(Error::kLocalIo, "open destination '" + path_ + "'", errno);
    return UniqueFd(fd);
  }
  if (Status st = validate_relative_path(rel_dir); !st) return st;
  int err = 0;
  size_t fail_end = 0;
  UniqueFd fd = walk(fd_.get(), rel_dir, create, mode, &err, &fail_end);
  if (fd.valid()) return fd;
  std::string prefix(rel_dir.substr(0, fail_end));
  if (err == ELOOP || err == ENOTDIR) {
    return Status(Error::kRefused, "path " + quote(rel_dir) +
                                       " goes through a symlink or non-directory at " +
                                       quote(prefix) + " below the root");
  }
  return errno_status(Error::kLocalIo,
                      "open directory " + quote(prefix) + " below '" + path_ + "'", err);
}

int RootDir::lstat_beneath(std::string_view rel_path, struct stat* st) const {
  if (rel_path.empty()) return ::fstat(fd_.get(), st) == 0 ? 0 : errno;
  if (!validate_relative_path(rel_path)) return EINVAL;
  std::string parent, name;
  split_parent(rel_path, &parent, &name);
  UniqueFd dir;
  int dir_fd = fd_.get();
  if (!parent.empty()) {
    int err = 0;
    size_t fail_end = 0;
    dir = walk(fd_.get(), parent, false, 0, &err, &fail_end);
    if (!dir.valid()) return err;
    dir_fd = dir.get();
  }
  return ::fstatat(dir_fd, name.c_str(), st, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
}

}  // namespace ferry
