#include "io/staged_file.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>

namespace ferry {
namespace {

// ".<name>.ferry-<tag>.part", with <name> cut short when the whole would not fit in one
// directory entry (the tag and suffix must survive: they make the name unique and hidden).
std::string temp_name_for(const std::string& name, std::string_view tag) {
  std::string suffix = ".ferry-" + std::string(tag) + ".part";
  size_t budget = kMaxNameBytes > suffix.size() + 1 ? kMaxNameBytes - suffix.size() - 1 : 1;
  return "." + name.substr(0, budget) + suffix;
}

timespec to_timespec(int64_t ns) {
  // Floor division so pre-1970 times still get tv_nsec in [0, 1e9).
  int64_t sec = ns / 1000000000;
  int64_t rem = ns % 1000000000;
  if (rem < 0) {
    rem += 1000000000;
    sec -= 1;
  }
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(sec);
  ts.tv_nsec = static_cast<long>(rem);
  return ts;
}

Status with_path(const std::string& what, const std::string& rel, const Status& st) {
  return Status(st.code(), what + " '" + rel + "': " + st.message());
}

// A tag for temp names that have no transfer tag (symlinks): unique within this host for the
// lifetime of the process, and the O_EXCL-like failure of symlinkat catches the rest.
std::string local_tag() {
  static std::atomic<uint64_t> counter{0};
  char buf[48];
  std::snprintf(buf, sizeof buf, "%x%llx", static_cast<unsigned>(::getpid()),
                static_cast<unsigned long long>(counter.fetch_add(1)));
  return buf;
}

// The directory check before a rename: renameat would fail with EISDIR anyway, but this gives
// the operator a message that says what is in the way.
Status refuse_if_directory(int dir_fd, const std::string& name, const std::string& rel) {
  struct stat st;
  if (::fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode)) {
    return Status(Error::kRefused, "'" + rel + "' exists on the receiver as a directory");
  }
  return Status::ok();
}

Status rename_error(const std::string& rel, int err) {
  if (err == EISDIR) {  // a directory appeared after the check
    return Status(Error::kRefused, "'" + rel + "' exists on the receiver as a directory");
  }
  return errno_status(Error::kLocalIo, "rename into '" + rel + "'", err);
}

}  // namespace

Result<std::unique_ptr<StagedFile>> StagedFile::create(const RootDir& root,
                                                       const std::string& rel_path, uint64_t size,
                                                       std::string_view tag, FileIo& io) {
  if (Status st = validate_relative_path(rel_path); !st) return st;
  std::unique_ptr<StagedFile> f(new StagedFile());
  f->io_ = &io;
  f->rel_path_ = rel_path;
  f->size_ = size;
  std::string parent;
  split_parent(rel_path, &parent, &f->name_);
  Result<UniqueFd> dir = root.open_dir(parent, true);
  if (!dir) return with_path("create", rel_path, dir.status());
  f->dir_fd_ = std::move(dir.value());
  f->temp_name_ = temp_name_for(f->name_, tag);

  int fd;
  do {
    fd = ::openat(f->dir_fd_.get(), f->temp_name_.c_str(),
                  O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0 && errno == EEXIST) {
    // The tag is unique to the transfer and its journal is locked by the caller, so this is
    // a leftover of an earlier run of this same transfer that the journal does not vouch
    // for: replace it.
    ::unlinkat(f->dir_fd_.get(), f->temp_name_.c_str(), 0);
    do {
      fd = ::openat(f->dir_fd_.get(), f->temp_name_.c_str(),
                    O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    } while (fd < 0 && errno == EINTR);
  }
  if (fd < 0) {
    f->done_ = true;  // the temp name is not ours (or does not exist): never unlink it
    return errno_status(Error::kLocalIo, "create '" + rel_path + "'", errno);
  }
  f->fd_.reset(fd);

  struct statfs fs {};
  bool on_tmpfs = ::fstatfs(fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC;
  if (size > 0 && on_tmpfs) {
    // fallocate on tmpfs zeroes every page up front: a whole extra pass over memory for no
    // layout benefit. Check the space instead, so a file that cannot fit still fails here.
    if (static_cast<uint64_t>(fs.f_bavail) * static_cast<uint64_t>(fs.f_bsize) < size)
      return errno_status(Error::kLocalIo, "create '" + rel_path + "'", ENOSPC);  // ~ unlinks
    // Full length now (sparse), so a resumed transfer can check the partial file's size.
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0)
      return errno_status(Error::kLocalIo, "create '" + rel_path + "'", errno);
  } else if (size > 0) {
    int rc;
    do {
      rc = ::fallocate(fd, 0, 0, static_cast<off_t>(size));
    } while (rc != 0 && errno == EINTR);
    // Unsupported preallocation is only a lost optimisation; running out of space is not.
    if (rc != 0 && errno != EOPNOTSUPP && errno != ENOSYS) {
      return errno_status(Error::kLocalIo, "create '" + rel_path + "'", errno);  // ~ unlinks
    }
  }
  return f;
}

Result<std::unique_ptr<StagedFile>> StagedFile::reopen(const RootDir& root, const std::string& rel_path,
                                                       uint64_t size, std::string_view tag, uint64_t dev,
                                                       uint64_t ino, FileIo& io) {
  if (Status st = validate_relative_path(rel_path); !st) return st;
  std::unique_ptr<StagedFile> f(new StagedFile());
  f->io_ = &io;
  f->rel_path_ = rel_path;
  f->size_ = size;
  f->done_ = true;  // not ours to unlink until it proves to be the right file
  std::string parent;
  split_parent(rel_path, &parent, &f->name_);
  Result<UniqueFd> dir = root.open_dir(parent, false);
  if (!dir) return with_path("reopen", rel_path, dir.status());
  f->dir_fd_ = std::move(dir.value());
  f->temp_name_ = temp_name_for(f->name_, tag);
  int fd = ::openat(f->dir_fd_.get(), f->temp_name_.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return errno_status(Error::kLocalIo, "reopen partial file of '" + rel_path + "'", errno);
  f->fd_.reset(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_status(Error::kLocalIo, "reopen partial file of '" + rel_path + "'", errno);
  if (!S_ISREG(st.st_mode) || static_cast<uint64_t>(st.st_dev) != dev || static_cast<uint64_t>(st.st_ino) != ino ||
      static_cast<uint64_t>(st.st_size) != size)
    return Status(Error::kIntegrity, "partial file of '" + rel_path + "' is not the one the journal describes");
  f->done_ = false;
  return f;
}

void StagedFile::keep() { done_ = true; }

Status StagedFile::identity(uint64_t* dev, uint64_t* ino) const {
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) return errno_status(Error::kLocalIo, "stat partial file of '" + rel_path_ + "'", errno);
  *dev = static_cast<uint64_t>(st.st_dev);
  *ino = static_cast<uint64_t>(st.st_ino);
  return Status::ok();
}

StagedFile::~StagedFile() { abort(); }

Status StagedFile::write_at(uint64_t offset, const uint8_t* data, size_t len) {
  if (done_) return Status(Error::kInternal, "write '" + rel_path_ + "' after commit or abort");
  return io_->write_at(fd_.get(), rel_path_, offset, data, len);
}

Status StagedFile::read_at(uint64_t offset, uint8_t* dst, size_t len) const {
  if (!fd_.valid()) return Status(Error::kInternal, "read '" + rel_path_ + "' after commit or abort");
  size_t got = 0;
  if (Status st = io_->read_at(fd_.get(), rel_path_, offset, dst, len, &got); !st) return st;
  if (got < len) {
    return Status(Error::kInternal, "read '" + rel_path_ + "': past the end of the staged file (offset " +
                                        std::to_string(offset + got) + ")");
  }
  return Status::ok();
}

Status StagedFile::prepare_commit(uint32_t mode, int64_t mtime_ns) {
  if (done_) return Status(Error::kInternal, "commit '" + rel_path_ + "' after commit or abort");
  if (::fchmod(fd_.get(), static_cast<mode_t>(mode & 07777)) != 0) {
    return errno_status(Error::kLocalIo, "set mode of '" + rel_path_ + "'", errno);
  }
  timespec times[2] = {{0, UTIME_OMIT}, to_timespec(mtime_ns)};
  if (::futimens(fd_.get(), times) != 0) {
    return errno_status(Error::kLocalIo, "set mtime of '" + rel_path_ + "'", errno);
  }
  return Status::ok();
}

Status StagedFile::publish() {
  if (done_) return Status(Error::kInternal, "commit '" + rel_path_ + "' after commit or abort");
  if (Status st = refuse_if_directory(dir_fd_.get(), name_, rel_path_); !st) return st;
  if (::renameat(dir_fd_.get(), temp_name_.c_str(), dir_fd_.get(), name_.c_str()) != 0) {
    return rename_error(rel_path_, errno);
  }
  done_ = true;  // the temp name is gone; from here on nothing may unlink it
  fd_.reset();
  return Status::ok();
}

Status StagedFile::commit(uint32_t mode, int64_t mtime_ns) {
  if (Status st = prepare_commit(mode, mtime_ns); !st) return st;
  if (::fsync(fd_.get()) != 0) {
    return errno_status(Error::kLocalIo, "sync '" + rel_path_ + "'", errno);
  }
  if (Status st = publish(); !st) return st;
  // Make the rename itself durable; the data already is.
  if (::fsync(dir_fd_.get()) != 0) {
    return errno_status(Error::kLocalIo, "sync directory of '" + rel_path_ + "'", errno);
  }
  return Status::ok();
}

void StagedFile::abort() {
  if (done_) return;
  done_ = true;
  fd_.reset();
  if (dir_fd_.valid()) ::unlinkat(dir_fd_.get(), temp_name_.c_str(), 0);
}

Status make_directory(const RootDir& root, const std::string& rel_path) {
  if (Status st = validate_relative_path(rel_path); !st) return st;
  Result<UniqueFd> dir = root.open_dir(rel_path, true);
  if (!dir) return with_path("create directory", rel_path, dir.status());
  return Status::ok();
}

Status set_directory_attributes(const RootDir& root, const std::string& rel_path, uint32_t mode,
                                int64_t mtime_ns) {
  Result<UniqueFd> dir = root.open_dir(rel_path, false);
  if (!dir) return with_path("set attributes of", rel_path, dir.status());
  // Through the fd, not the name: the directory cannot be swapped for a symlink in between.
  if (::fchmod(dir->get(), static_cast<mode_t>(mode & 07777)) != 0) {
    return errno_status(Error::kLocalIo, "set mode of '" + rel_path + "'", errno);
  }
  timespec times[2] = {{0, UTIME_OMIT}, to_timespec(mtime_ns)};
  if (::futimens(dir->get(), times) != 0) {
    return errno_status(Error::kLocalIo, "set mtime of '" + rel_path + "'", errno);
  }
  return Status::ok();
}

Status create_symlink(const RootDir& root, const std::string& rel_path, const std::string& target,
                      int64_t mtime_ns) {
  if (Status st = validate_relative_path(rel_path); !st) return st;
  if (target.empty() || target.find('\0') != std::string::npos || target.size() > kMaxPathBytes) {
    return Status(Error::kRefused, "symlink '" + rel_path + "' has an invalid target");
  }
  std::string parent, name;
  split_parent(rel_path, &parent, &name);
  Result<UniqueFd> dir = root.open_dir(parent, true);
  if (!dir) return with_path("create symlink", rel_path, dir.status());
  int dir_fd = dir->get();

  std::string temp;
  for (int attempt = 0;; ++attempt) {
    temp = temp_name_for(name, local_tag());
    if (::symlinkat(target.c_str(), dir_fd, temp.c_str()) == 0) break;
    // EEXIST: a leftover of another process with a recycled pid; take the next tag.
    if (errno != EEXIST || attempt >= 8) {
      return errno_status(Error::kLocalIo, "create symlink '" + rel_path + "'", errno);
    }
  }
  auto fail = [&](Status st) {
    ::unlinkat(dir_fd, temp.c_str(), 0);
    return st;
  };
  timespec times[2] = {{0, UTIME_OMIT}, to_timespec(mtime_ns)};
  if (::utimensat(dir_fd, temp.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return fail(errno_status(Error::kLocalIo, "set mtime of symlink '" + rel_path + "'", errno));
  }
  if (Status st = refuse_if_directory(dir_fd, name, rel_path); !st) return fail(st);
  if (::renameat(dir_fd, temp.c_str(), dir_fd, name.c_str()) != 0) {
    return fail(rename_error(rel_path, errno));
  }
  if (::fsync(dir_fd) != 0) {
    return errno_status(Error::kLocalIo, "sync directory of '" + rel_path + "'", errno);
  }
  return Status::ok();
}

}  // namespace ferry
