#include "io/tree_walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace ferry {
namespace {

int64_t mtime_of(const struct stat& st) { return st.st_mtim.tv_sec * 1'000'000'000ll + st.st_mtim.tv_nsec; }

Status hash_file_at(int dirfd, const std::string& name, const std::string& shown, Hash128* out) {
  int fd = ::openat(dirfd, name.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno_status(Error::kLocalIo, "read '" + shown + "'", errno);
  UniqueFd f(fd);
  StreamingHash128 h;
  std::vector<uint8_t> buf(1 << 20);
  for (;;) {
    ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status(Error::kLocalIo, "read '" + shown + "'", errno);
    if (n == 0) break;
    h.update(buf.data(), static_cast<size_t>(n));
  }
  *out = h.digest();
  return Status::ok();
}

// Names in a directory (sorted, so listings are deterministic), without "." and "..".
Result<std::vector<std::string>> names_in(int dirfd, const std::string& shown) {
  int dup = ::openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dup < 0) return errno_status(Error::kLocalIo, "list '" + shown + "'", errno);
  DIR* d = ::fdopendir(dup);
  if (!d) {
    ::close(dup);
    return errno_status(Error::kLocalIo, "list '" + shown + "'", errno);
  }
  std::vector<std::string> names;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n != "." && n != "..") names.push_back(std::move(n));
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  return names;
}

Status walk_dir(int dirfd, const std::string& rel, const std::string& from_root, bool with_hashes,
                const std::function<void(const FileEntry&, const Hash128*)>& visit) {
  auto names = names_in(dirfd, from_root.empty() ? "." : from_root);
  if (!names) return names.status();
  for (const auto& name : *names) {
    std::string child_rel = rel.empty() ? name : rel + "/" + name;
    std::string child_root = from_root.empty() ? name : from_root + "/" + name;
    if (is_reserved_path(child_root) || is_staged_temp_name(name)) continue;
    struct stat st {};
    if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno == ENOENT) continue;  // vanished while listing
      return errno_status(Error::kLocalIo, "stat '" + child_root + "'", errno);
    }
    FileEntry e;
    e.path = child_rel;
    e.mode = st.st_mode & 07777;
    e.mtime_ns = mtime_of(st);
    if (S_ISDIR(st.st_mode)) {
      e.type = FileType::kDirectory;
      visit(e, nullptr);
      int sub = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) return errno_status(Error::kLocalIo, "open '" + child_root + "'", errno);
      UniqueFd subfd(sub);
      if (Status s = walk_dir(sub, child_rel, child_root, with_hashes, visit); !s) return s;
    } else if (S_ISLNK(st.st_mode)) {
      e.type = FileType::kSymlink;
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(dirfd, name.c_str(), target.data(), target.size());
      if (n < 0) return errno_status(Error::kLocalIo, "read link '" + child_root + "'", errno);
      target.resize(static_cast<size_t>(n));
      e.link_target = target;
      visit(e, nullptr);
    } else if (S_ISREG(st.st_mode)) {
      e.type = FileType::kRegular;
      e.size = static_cast<uint64_t>(st.st_size);
      Hash128 h;
      if (with_hashes) {
        if (Status s = hash_file_at(dirfd, name, child_root, &h); !s) return s;
      }
      visit(e, with_hashes ? &h : nullptr);
    }
    // Devices, fifos and sockets are not ferry's to list (it never creates them).
  }
  return Status::ok();
}

Status remove_tree_at(int dirfd, const std::string& name, const std::string& shown) {
  struct stat st {};
  if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
    return errno == ENOENT ? Status::ok() : errno_status(Error::kLocalIo, "delete '" + shown + "'", errno);
  if (S_ISDIR(st.st_mode)) {
    int sub = ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0) return errno_status(Error::kLocalIo, "delete '" + shown + "'", errno);
    UniqueFd subfd(sub);
    auto names = names_in(sub, shown);
    if (!names) return names.status();
    for (const auto& n : *names)
      if (Status s = remove_tree_at(sub, n, shown + "/" + n); !s) return s;
    if (::unlinkat(dirfd, name.c_str(), AT_REMOVEDIR) != 0)
      return errno_status(Error::kLocalIo, "delete directory '" + shown + "'", errno);
    return Status::ok();
  }
  if (::unlinkat(dirfd, name.c_str(), 0) != 0 && errno != ENOENT)
    return errno_status(Error::kLocalIo, "delete '" + shown + "'", errno);
  return Status::ok();
}

}  // namespace

bool is_staged_temp_name(std::string_view name) {
  // . <name> .ferry- <16 hex> .part
  constexpr std::string_view kSuffix = ".part";
  if (name.size() < 1 + 7 + 16 + kSuffix.size() + 1 || name[0] != '.') return false;
  if (name.substr(name.size() - kSuffix.size()) != kSuffix) return false;
  std::string_view head = name.substr(0, name.size() - kSuffix.size());
  std::string_view hex = head.substr(head.size() - 16);
  if (head.substr(head.size() - 16 - 7, 7) != ".ferry-") return false;
  for (char c : hex)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

bool is_reserved_path(std::string_view rel) { return rel == ".ferry" || rel.rfind(".ferry/", 0) == 0; }

Status walk_beneath(const RootDir& root, const std::string& rel_dir, bool with_hashes,
                    const std::function<void(const FileEntry&, const Hash128*)>& visit) {
  auto dir = root.open_dir(rel_dir, /*create=*/false);
  if (!dir) {
    struct stat st {};
    if (root.lstat_beneath(rel_dir, &st) == ENOENT) return Status::ok();  // nothing there yet
    return dir.status();
  }
  return walk_dir(dir->get(), "", rel_dir, with_hashes, visit);
}

Status remove_beneath(const RootDir& root, const std::string& rel_path) {
  if (Status st = validate_relative_path(rel_path); !st) return st;
  if (is_reserved_path(rel_path)) return Status(Error::kRefused, "'" + rel_path + "' is ferry's own state");
  std::string parent, name;
  split_parent(rel_path, &parent, &name);
  auto dir = root.open_dir(parent, /*create=*/false);
  if (!dir) return dir.status();
  return remove_tree_at(dir->get(), name, rel_path);
}

}  // namespace ferry
