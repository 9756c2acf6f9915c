// Path safety for everything a peer names: nothing is ever created, written or followed
// outside the receiver's root.
//
// Every path is resolved component by component from the root's directory fd with
// O_NOFOLLOW|O_DIRECTORY (openat), so a symlink anywhere on the way — including one already
// present in the destination — is refused rather than followed, and ".." never appears
// (validate_relative_path rejects it up front).
#pragma once

#include <sys/stat.h>

#include <string>
#include <string_view>

#include "ferry/status.h"
#include "io/unique_fd.h"

namespace ferry {

inline constexpr size_t kMaxPathBytes = 4096;
inline constexpr size_t kMaxNameBytes = 255;

// kRefused unless `path` is relative, non-empty, at most kMaxPathBytes, made of '/'-separated
// components that are non-empty, not "." or "..", at most kMaxNameBytes and free of NUL.
// The message quotes the path and says which rule it broke.
Status validate_relative_path(std::string_view path);

// Joins two validated relative paths ("" + "a" = "a", "d" + "a/b" = "d/a/b").
std::string join_relative(std::string_view base, std::string_view rel);

// Splits "a/b/c" into parent "a/b" and name "c" (parent "" for a top-level name).
void split_parent(std::string_view path, std::string* parent, std::string* name);

// The receiver's destination root, opened once.
class RootDir {
 public:
  // Opens (creating it and its parents with mode 0755 if `create` and missing) the directory
  // at `path`. The root itself may be reached through symlinks (it is the operator's choice);
  // everything below it may not.
  static Result<RootDir> open(const std::string& path, bool create);

  int fd() const { return fd_.get(); }
  const std::string& path() const { return path_; }

  // Opens the directory `rel_dir` ("" = the root itself) beneath the root, refusing symlinks
  // at every component. With `create`, missing components are created with `mode` (0755
  // default). An existing non-directory on the way is a kRefused error naming it.
  Result<UniqueFd> open_dir(std::string_view rel_dir, bool create, uint32_t mode = 0755) const;

  // lstat() of `rel_path` beneath the root (parents resolved with O_NOFOLLOW).
  // Returns errno (0 on success, ENOENT when missing) so callers can tell "absent" apart.
  int lstat_beneath(std::string_view rel_path, struct stat* st) const;

 private:
  RootDir(UniqueFd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
  UniqueFd fd_;
  std::string path_;
};

}  // namespace ferry
