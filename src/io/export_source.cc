#include "io/export_source.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "io/tree_walk.h"

namespace ferry {
namespace {

int64_t mtime_of(const struct stat& st) { return st.st_mtim.tv_sec * 1'000'000'000ll + st.st_mtim.tv_nsec; }

std::string join(const std::string& a, const std::string& b) { return a.empty() ? b : a + "/" + b; }

// Fills `e` from `st` (and the link text); false for types ferry does not transfer.
bool entry_from_stat(int dir_fd, const std::string& name, const struct stat& st, FileEntry* e, Status* err,
                     const std::string& shown) {
  e->mode = st.st_mode & 07777;
  e->mtime_ns = mtime_of(st);
  if (S_ISDIR(st.st_mode)) {
    e->type = FileType::kDirectory;
  } else if (S_ISREG(st.st_mode)) {
    e->type = FileType::kRegular;
    e->size = static_cast<uint64_t>(st.st_size);
  } else if (S_ISLNK(st.st_mode)) {
    e->type = FileType::kSymlink;
    std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
    ssize_t n = ::readlinkat(dir_fd, name.c_str(), target.data(), target.size());
    if (n < 0) {
      *err = errno_status(Error::kLocalIo, "read link '" + shown + "'", errno);
      return false;
    }
    target.resize(static_cast<size_t>(n));
    e->link_target = std::move(target);
  } else {
    return false;
  }
  return true;
}

struct Walker {
  const std::function<void(FileEntry)>& visit;
  size_t max_entries;
  size_t count = 0;

  Status emit(FileEntry e) {
    if (++count > max_entries)
      return Status(Error::kRefused, "more than " + std::to_string(max_entries) + " entries requested");
    visit(std::move(e));
    return Status::ok();
  }

  // `dir_fd` is the directory at `from_root`; its children are presented under `shown`.
  Status walk_dir(int dir_fd, const std::string& shown, const std::string& from_root, bool recursive) {
    int dup = ::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dup < 0) return errno_status(Error::kLocalIo, "list '" + from_root + "'", errno);
    DIR* d = ::fdopendir(dup);
    if (!d) {
      ::close(dup);
      return errno_status(Error::kLocalIo, "list '" + from_root + "'", errno);
    }
    std::vector<std::string> names;
    while (dirent* de = ::readdir(d)) {
      std::string n = de->d_name;
      if (n != "." && n != "..") names.push_back(std::move(n));
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& name : names) {
      std::string child_root = join(from_root, name);
      if (is_reserved_path(child_root) || is_staged_temp_name(name)) continue;
      struct stat st {};
      if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) continue;  // vanished while listing
        return errno_status(Error::kLocalIo, "stat '" + child_root + "'", errno);
      }
      FileEntry e;
      e.path = join(shown, name);
      Status err;
      if (!entry_from_stat(dir_fd, name, st, &e, &err, child_root)) {
        if (!err) return err;
        continue;
      }
      if (e.type == FileType::kRegular) e.source_path = child_root;
      bool is_dir = e.type == FileType::kDirectory;
      std::string child_shown = e.path;
      if (Status s = emit(std::move(e)); !s) return s;
      if (!is_dir || !recursive) continue;
      // O_NOFOLLOW: if it became a symlink since the fstatat, this fails instead of following.
      int sub = ::openat(dir_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
      if (sub < 0) {
        if (errno == ELOOP || errno == ENOTDIR)
          return Status(Error::kRefused, "'" + child_root + "' was replaced during the listing (not followed)");
        return errno_status(Error::kLocalIo, "open '" + child_root + "'", errno);
      }
      UniqueFd subfd(sub);
      if (Status s = walk_dir(sub, child_shown, child_root, recursive); !s) return s;
    }
    return Status::ok();
  }
};

}  // namespace

Status walk_export(const RootDir& root, const ExportWalk& w, const std::function<void(FileEntry)>& visit,
                   FileType* top_type) {
  if (!w.rel.empty()) {
    if (Status st = validate_relative_path(w.rel); !st) return st;
    if (is_reserved_path(w.rel)) return Status(Error::kRefused, "'" + w.rel + "' is ferry's state folder");
  }
  std::string parent, name;
  split_parent(w.rel, &parent, &name);
  // The top: lstat beneath the root (parents opened with O_NOFOLLOW).
  struct stat st {};
  if (int e = root.lstat_beneath(w.rel, &st); e != 0) {
    if (e == ENOENT) return Status(Error::kUsage, "no such file or directory: '" + w.rel + "'");
    if (e == ELOOP || e == ENOTDIR)
      return Status(Error::kRefused, "'" + w.rel + "' goes through a symlink or non-directory (not followed)");
    return errno_status(Error::kLocalIo, "stat '" + w.rel + "'", e);
  }
  auto parent_fd = root.open_dir(parent, /*create=*/false);
  if (!parent_fd) return parent_fd.status();
  FileEntry top;
  Status err;
  if (!entry_from_stat(parent_fd->get(), name, st, &top, &err, w.rel)) {
    if (!err) return err;
    return Status(Error::kRefused, "'" + w.rel + "' is not a regular file, directory or symlink");
  }
  if (top_type) *top_type = top.type;
  Walker walker{visit, w.max_entries};
  if (top.type != FileType::kDirectory) {
    top.path = w.name.empty() ? name : w.name;
    if (top.type == FileType::kRegular) top.source_path = w.rel;
    return walker.emit(std::move(top));
  }
  if (!w.name.empty()) {
    top.path = w.name;
    if (Status s = walker.emit(top); !s) return s;
  }
  if (!w.recursive && !w.name.empty()) return Status::ok();  // one level of `name`: itself
  auto dir = root.open_dir(w.rel, /*create=*/false);
  if (!dir) return dir.status();
  return walker.walk_dir(dir->get(), w.name, w.rel, w.recursive);
}

Result<std::shared_ptr<SourceFile>> open_source_beneath(const RootDir& root, const std::string& rel,
                                                        uint64_t expected_size) {
  if (Status st = validate_relative_path(rel); !st) return st;
  std::string parent, name;
  split_parent(rel, &parent, &name);
  auto dir = root.open_dir(parent, /*create=*/false);
  if (!dir) return dir.status();
  return SourceFile::open_at(dir->get(), name, rel, expected_size);
}

}  // namespace ferry
