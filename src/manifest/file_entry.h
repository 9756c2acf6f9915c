// One entry of a transfer's manifest: the unit the sender announces and the receiver plans.
#pragma once

#include <cstdint>
#include <string>

namespace ferry {

// Wire and manifest values (docs/protocol.md, FILE_LIST).
enum class FileType : uint8_t { kRegular = 0, kDirectory = 1, kSymlink = 2 };

const char* to_string(FileType type);
// The `type` of a --json report entry: "file", "dir" or "symlink".
const char* report_type_name(FileType type);

struct FileEntry {
  // Relative path below the destination, '/'-separated, never empty, never starting with
  // '/', no "", "." or ".." components (see validate_relative_path in io/safe_path.h).
  std::string path;
  FileType type = FileType::kRegular;
  uint32_t mode = 0644;   // permission bits only (07777)
  int64_t mtime_ns = 0;   // nanoseconds since the epoch
  uint64_t size = 0;      // bytes, regular files only (0 otherwise)
  std::string link_target;  // symlinks only: the link's text, not followed
  std::string source_path;  // sender only, never sent: where to read the file locally
};

}  // namespace ferry
