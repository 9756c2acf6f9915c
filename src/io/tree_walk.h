// Walking and deleting below a receiver's root, for sync: descriptor-based, never following
// a symlink (a symlink is listed and deleted as a link), never touching ferry's own state.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "codec/hash.h"
#include "ferry/status.h"
#include "io/safe_path.h"
#include "manifest/file_entry.h"

namespace ferry {

// ".<name>.ferry-<16 hex>.part": a staged file of a transfer in progress (io/staged_file.h).
bool is_staged_temp_name(std::string_view name);
// ".ferry" at the root, or anything below it: resume journals, never listed or deleted.
bool is_reserved_path(std::string_view rel_path_from_root);

// Calls `visit` for everything below `rel_dir` (paths relative to rel_dir, parents before
// children), with the XXH3-128 of regular files when `with_hashes`. A missing rel_dir is an
// empty tree. Staged temp files and the reserved state folder are left out.
Status walk_beneath(const RootDir& root, const std::string& rel_dir, bool with_hashes,
                    const std::function<void(const FileEntry&, const Hash128* hash)>& visit);

// Deletes `rel_path` (a file, a symlink, or a directory with everything in it) beneath the
// root. Symlinks are removed, never followed. The reserved state folder is refused (kRefused).
Status remove_beneath(const RootDir& root, const std::string& rel_path);

}  // namespace ferry
