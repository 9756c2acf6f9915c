#include "io/source_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace ferry {

Result<std::shared_ptr<SourceFile>> SourceFile::open(const std::string& path,
                                                     uint64_t expected_size, FileIo& io) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno_status(Error::kLocalIo, "open '" + path + "'", errno);
  UniqueFd owned(fd);
  // The scan saw a regular file; anything else now (a fifo would block reads forever, a
  // directory fails them) means it was replaced in between.
  struct stat st;
  if (::fstat(fd, &st) != 0) return errno_status(Error::kLocalIo, "stat '" + path + "'", errno);
  if (!S_ISREG(st.st_mode)) {
    return Status(Error::kLocalIo,
                  "'" + path + "' changed during the transfer (no longer a regular file)");
  }
  // Only a hint: failure changes nothing but read-ahead.
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::shared_ptr<SourceFile>(new SourceFile(std::move(owned), path, expected_size, io));
}

Result<std::shared_ptr<SourceFile>> SourceFile::open_at(int dir_fd, const std::string& name, const std::string& shown,
                                                        uint64_t expected_size, FileIo& io) {
  int fd;
  do {
    fd = ::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0 && errno == ELOOP)
    return Status(Error::kRefused, "'" + shown + "' became a symlink during the transfer (not followed)");
  if (fd < 0) return errno_status(Error::kLocalIo, "open '" + shown + "'", errno);
  UniqueFd owned(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return errno_status(Error::kLocalIo, "stat '" + shown + "'", errno);
  if (!S_ISREG(st.st_mode))
    return Status(Error::kLocalIo, "'" + shown + "' changed during the transfer (no longer a regular file)");
  // Regular files ignore O_NONBLOCK for reads; clear it anyway so reads behave as usual.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  return std::shared_ptr<SourceFile>(new SourceFile(std::move(owned), shown, expected_size, io));
}

Status SourceFile::read_at(uint64_t offset, uint8_t* dst, size_t len) const {
  // Reads at explicit offsets move no shared position, so workers may read different chunks
  // concurrently.
  size_t got = 0;
  if (Status st = io_->read_at(fd_.get(), path_, offset, dst, len, &got); !st) return st;
  if (got < len) {
    return Status(Error::kLocalIo,
                  "'" + path_ + "' changed during the transfer (shorter than scanned)");
  }
  return Status::ok();
}

Result<Hash128> hash_source_file(const std::string& path, uint64_t size) {
  auto src = SourceFile::open(path, size);
  if (!src) return src.status();
  StreamingHash128 h;
  std::vector<uint8_t> buf(1 << 20);
  for (uint64_t off = 0; off < size; off += buf.size()) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - off));
    if (Status st = (*src)->read_at(off, buf.data(), n); !st) return st;
    h.update(buf.data(), n);
  }
  return h.digest();
}

}  // namespace ferry
