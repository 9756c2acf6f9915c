// Atomic landing of received files: bytes go to a hidden temporary file beside the target,
// and only a complete, verified, fsynced file is renamed to its final name.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "ferry/status.h"
#include "io/file_io.h"
#include "io/safe_path.h"
#include "io/unique_fd.h"

namespace ferry {

// A regular file being received. Lives as "<dir>/.<name>.ferry-<tag>.part" (tag: a hex id
// unique to the transfer), created with O_EXCL|O_NOFOLLOW mode 0600 and preallocated
// (fallocate, falling back silently where unsupported). Invariant: the final name is only
// ever replaced by commit(), by an atomic renameat() of a fully written, fsynced file.
class StagedFile {
 public:
  // Creates the parent directories (beneath `root`, no symlinks) and the temporary file.
  // Errors name the final relative path: "create 'shots/a b.exr': No space left on device".
  // Chunk reads and writes go through `io` (the process-wide backend unless a test picks one).
  static Result<std::unique_ptr<StagedFile>> create(const RootDir& root, const std::string& rel_path,
                                                    uint64_t size, std::string_view tag,
                                                    FileIo& io = default_file_io());
  // Reopens the temporary file an earlier run left for `rel_path` (resume). kIntegrity if it
  // is not a regular file of exactly `size` bytes with the given device and inode.
  static Result<std::unique_ptr<StagedFile>> reopen(const RootDir& root, const std::string& rel_path,
                                                    uint64_t size, std::string_view tag, uint64_t dev,
                                                    uint64_t ino, FileIo& io = default_file_io());
  ~StagedFile();  // unlinks the temporary file unless committed or kept
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;

  // Writes all len bytes (FileIo: EINTR, short writes). ENOSPC/EIO etc. -> kLocalIo naming
  // the final path: "write 'shots/a.exr': No space left on device".
  Status write_at(uint64_t offset, const uint8_t* data, size_t len);
  // Reads exactly len bytes; reading past the end is a kInternal error.
  Status read_at(uint64_t offset, uint8_t* dst, size_t len) const;

  // fchmod(mode & 07777), futimens(mtime), fsync, renameat over the final name (replacing a
  // file or symlink there; an existing directory there is a kRefused error), then fsync of
  // the parent directory.
  Status commit(uint32_t mode, int64_t mtime_ns);

  // The same commit in steps, so a receiver can fsync many files at once (group commit):
  // prepare_commit (fchmod, futimens), then the caller fsyncs data_fd(), then publish()
  // (the atomic rename), then the caller fsyncs parent_fd(). Invariant kept: a file is
  // published only after its data was synced by the caller.
  Status prepare_commit(uint32_t mode, int64_t mtime_ns);
  Status publish();
  int data_fd() const { return fd_.get(); }
  int parent_fd() const { return dir_fd_.get(); }
  // Unlinks the temporary file now (idempotent).
  void abort();
  // Leaves the temporary file in place for a later run to resume (no unlink, no rename).
  void keep();
  // Device and inode of the temporary file (recorded in the resume journal).
  Status identity(uint64_t* dev, uint64_t* ino) const;
  const std::string& temp_name() const { return temp_name_; }

  const std::string& rel_path() const { return rel_path_; }
  uint64_t size() const { return size_; }

 private:
  StagedFile() = default;
  UniqueFd dir_fd_;
  UniqueFd fd_;
  std::string rel_path_;
  std::string name_;
  std::string temp_name_;
  uint64_t size_ = 0;
  bool done_ = false;
  FileIo* io_ = nullptr;
};

// Creates the directory `rel_path` (and parents) beneath root; an existing directory is fine.
Status make_directory(const RootDir& root, const std::string& rel_path);

// Sets mode and mtime of an existing directory beneath root (done after its contents land).
Status set_directory_attributes(const RootDir& root, const std::string& rel_path, uint32_t mode,
                                int64_t mtime_ns);

// Creates a symlink `rel_path` -> `target` atomically (temp name + renameat) and sets its
// mtime (utimensat AT_SYMLINK_NOFOLLOW). The target text is stored as is; it is never
// followed by ferry. An existing directory at rel_path is a kRefused error.
Status create_symlink(const RootDir& root, const std::string& rel_path, const std::string& target,
                      int64_t mtime_ns);

}  // namespace ferry
