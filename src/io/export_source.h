// What a server sends or lists beneath an export root (ferry get / ferry ls): every path is
// resolved from the root's descriptor without following a symlink, and every file is opened
// for reading the same way when its first chunk is read — never by a path string resolved
// again later — so nothing outside the root can be read, even if a directory is swapped for
// a symlink between the scan and the read.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "ferry/status.h"
#include "io/safe_path.h"
#include "io/source_file.h"
#include "manifest/file_entry.h"

namespace ferry {

struct ExportWalk {
  // Path below the root ("" = the root itself); validated here.
  std::string rel;
  // The name the top entry is presented under ("dir" for `get .../dir`): entries are
  // "name", "name/a", ... Empty: the contents of a directory ("a", "b/c"); a non-directory
  // top with an empty name is presented under its own last component.
  std::string name;
  bool recursive = true;
  size_t max_entries = SIZE_MAX;  // more is a kRefused error
};

// Calls `visit` for the top entry (unless it is a directory walked for its contents) and
// everything below it, parents before children, sorted by name. FileEntry::source_path is
// the entry's path relative to the root (for open_source_beneath). Symlinks are reported as
// links with their target text; devices, fifos and sockets are left out, and so are ferry's
// state folder (.ferry at the root) and staged temp files. Errors: a missing top is kUsage
// ("no such file or directory"), a symlink or non-directory in a parent component kRefused.
// `top_type` (may be null) receives the top entry's type.
Status walk_export(const RootDir& root, const ExportWalk& walk, const std::function<void(FileEntry)>& visit,
                   FileType* top_type = nullptr);

// Opens the regular file `rel` (relative to the root) for reading: parents by O_NOFOLLOW
// walk, the file itself O_NOFOLLOW; a symlink anywhere, or a non-regular file, is refused.
Result<std::shared_ptr<SourceFile>> open_source_beneath(const RootDir& root, const std::string& rel,
                                                        uint64_t expected_size);

}  // namespace ferry
