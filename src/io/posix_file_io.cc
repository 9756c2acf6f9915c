// The pread/pwrite backend: the fallback everywhere, and the reference the io_uring backend
// is compared with (tests/io/file_io_test.cc, bench/compare_io.sh).
#include <unistd.h>

#include <cerrno>

#include "io/file_io.h"

namespace ferry {
namespace {

class PosixFileIo final : public FileIo {
 public:
  const char* name() const override { return "posix"; }

  Status read_at(int fd, const std::string& name, uint64_t offset, uint8_t* dst, size_t len,
                 size_t* got) override {
    *got = 0;
    while (*got < len) {
      ssize_t n = ::pread(fd, dst + *got, len - *got, static_cast<off_t>(offset + *got));
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return errno_status(Error::kLocalIo, "read '" + name + "'", errno);
      }
      if (n == 0) break;  // end of file
      *got += static_cast<size_t>(n);
    }
    return Status::ok();
  }

  Status write_at(int fd, const std::string& name, uint64_t offset, const uint8_t* src,
                  size_t len) override {
    size_t done = 0;
    while (done < len) {
      ssize_t n = ::pwrite(fd, src + done, len - done, static_cast<off_t>(offset + done));
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return errno_status(Error::kLocalIo, "write '" + name + "'", errno);
      }
      if (n == 0) return errno_status(Error::kLocalIo, "write '" + name + "'", EIO);
      done += static_cast<size_t>(n);
    }
    return Status::ok();
  }
};

}  // namespace

FileIo& posix_file_io() {
  static PosixFileIo io;  // stateless
  return io;
}

}  // namespace ferry
