// A local file the sender reads chunks from (shared by the workers that read its chunks).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "codec/hash.h"
#include "ferry/status.h"
#include "io/file_io.h"
#include "io/unique_fd.h"

namespace ferry {

class SourceFile {
 public:
  // Opens read-only (O_NOFOLLOW is not used: sources may be reached through symlinks the
  // user named). Hints sequential access (posix_fadvise). Chunks are read through `io`
  // (the process-wide backend unless a test picks one).
  static Result<std::shared_ptr<SourceFile>> open(const std::string& path, uint64_t expected_size,
                                                  FileIo& io = default_file_io());
  // Opens `name` in the directory `dir_fd` without following a symlink (O_NOFOLLOW) and
  // without blocking on a fifo; anything but a regular file is refused. For a server reading
  // beneath an export root (io/export_source.h); `shown` names the file in messages.
  static Result<std::shared_ptr<SourceFile>> open_at(int dir_fd, const std::string& name, const std::string& shown,
                                                     uint64_t expected_size, FileIo& io = default_file_io());

  // Reads exactly len bytes. Reading fewer (file shrank since the scan) is a kLocalIo error
  // "'path' changed during the transfer (shorter than scanned)".
  Status read_at(uint64_t offset, uint8_t* dst, size_t len) const;

  const std::string& path() const { return path_; }
  uint64_t size() const { return size_; }

 private:
  SourceFile(UniqueFd fd, std::string path, uint64_t size, FileIo& io)
      : fd_(std::move(fd)), path_(std::move(path)), size_(size), io_(&io) {}
  UniqueFd fd_;
  std::string path_;
  uint64_t size_;
  FileIo* io_;
};

// XXH3-128 of a whole local file of `size` bytes, read through SourceFile (so a file that
// shrank is an error naming it). For sync --checksum and S3's metadata comparison.
Result<Hash128> hash_source_file(const std::string& path, uint64_t size);

}  // namespace ferry
