// How ferry moves chunk bytes between memory and files: a small backend interface with a
// pread/pwrite implementation (posix_file_io.*) and an io_uring one (uring_file_io.*), chosen
// once per process (`--io uring|posix|auto`, ferryd's `io`). SourceFile and StagedFile go
// through it; nothing else in the data path touches file descriptors for chunk I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ferry/status.h"

namespace ferry {

// Contract shared by every backend (tests/io/file_io_test.cc checks it on each):
// - Thread-safe: workers call it concurrently on the same or different fds.
// - Offsets are explicit; no file position is used or moved.
// - EINTR/EAGAIN are retried and short transfers continued, so a call returns only when all
//   `len` bytes moved, at end of file (reads), or on an error.
// - Errors are kLocalIo with `name` and the cause: "write 'shots/a.exr': No space left on device".
class FileIo {
 public:
  virtual ~FileIo() = default;
  virtual const char* name() const = 0;  // "posix" or "uring"

  // Reads up to `len` bytes at `offset` into `dst`; `*got` is the number read, less than
  // `len` only when the file ends first (then the bytes after *got are unspecified).
  virtual Status read_at(int fd, const std::string& name, uint64_t offset, uint8_t* dst, size_t len,
                         size_t* got) = 0;
  // Writes all `len` bytes at `offset`. A write that makes no progress is EIO.
  virtual Status write_at(int fd, const std::string& name, uint64_t offset, const uint8_t* src,
                          size_t len) = 0;
};

enum class IoMode : uint8_t { kAuto = 0, kPosix = 1, kUring = 2 };

// "auto" | "posix" | "uring"; anything else is a kUsage error naming `flag`.
Result<IoMode> parse_io_mode(std::string_view text, std::string_view flag);
const char* to_string(IoMode mode);

// Selects the process-wide backend. kAuto takes the backend bench/compare_io.sh measured
// faster (kAutoChoice) when it works here; kUring falls back to posix when the kernel refuses
// io_uring (seccomp, containers, old kernels) with one log line (info for auto, a warning
// when uring was asked for by name). Call before the first transfer starts; never fails.
void configure_file_io(IoMode mode);

// The backend configure_file_io chose; posix before any call (a library user that never
// configures gets no rings). Lives for the process.
FileIo& default_file_io();

// The backends themselves (tests and bench/file_io_bench pick one explicitly).
FileIo& posix_file_io();
// nullptr when io_uring cannot be used here; `why` (optional) gets the reason.
FileIo* uring_file_io(std::string* why = nullptr);

// What auto picks when both work: the faster end to end in bench/compare_io.sh (bench/README.md,
// "file I/O backends": 1.4x in the page cache, 1.5x on the disk).
inline constexpr IoMode kAutoChoice = IoMode::kUring;

}  // namespace ferry
