// Other ways to name what to send: a manifest (--manifest), a list of paths (--files-from),
// and include/exclude filtering of any entry list.
#pragma once

#include <string>
#include <vector>

#include "ferry/options.h"
#include "ferry/status.h"
#include "manifest/file_entry.h"
#include "manifest/path_filter.h"
#include "manifest/scanner.h"

namespace ferry {

// The entries listed in the manifest at `manifest_path`, in its (canonical, scanner) order,
// with source_path = source_root + "/" + path and the manifest's type, mode, mtime, size and
// link target. Every listed regular file must still be a regular file of the listed size
// under source_root, else kLocalIo: "'a/b.exr' listed in the manifest changed since (size
// 10, now 12)", "... is missing (lstat '<path>': ...)". Listed directories and symlinks are
// recreated from the manifest and not checked. A directory the manifest does not list but
// that a listed entry needs is emitted just before its first descendant, with the source
// directory's mode and mtime (it must be a directory under source_root). Manifest errors are
// the reader's (kUsage with file and line).
Result<std::vector<FileEntry>> entries_from_manifest(const std::string& manifest_path,
                                                     const std::string& source_root);

// --files-from: one path per line, relative to source_root. Lines that are empty or start
// with '#' are skipped; a trailing '\r' is removed, then any leading "./" and trailing '/'.
// "." names all of source_root's contents. A listed directory is sent with everything
// below it (as scan_sources), a listed symlink as a link. Parent directories are added
// (from the source's attributes), duplicates dropped, and the result is in canonical order
// (compare_manifest_paths), so parents precede their contents.
// Errors: "files-from '<list>' line <n>: ..." — kLocalIo for a missing or unreadable path or a
// parent that is not a directory; kUsage for an invalid path ("..", absolute, too long) or a
// line over 16 KiB; kLocalIo if the list cannot be read.
Result<std::vector<FileEntry>> entries_from_list(const std::string& list_path,
                                                 const std::string& source_root,
                                                 const ScanWarning& warn = nullptr);

// Drops the entries `f` excludes and every entry below an excluded directory (whether or not
// a rule would include it: as rsync, a file inside an excluded directory is never reached).
// Expects directories to precede their contents (scanner / canonical order); the relative
// order of the kept entries is unchanged.
std::vector<FileEntry> apply_filter(std::vector<FileEntry> entries, const PathFilter& f);

// What a send or sync transfers, from its options: the scanned SRCs, or exactly the files of
// --manifest / --files-from (relative to the single SRC), then the --include/--exclude rules.
Result<std::vector<FileEntry>> select_sources(const std::vector<std::string>& sources, const SendOptions& options,
                                              const PathFilter& filter);
// The PathFilter of options.filters (kUsage for a bad pattern).
Result<PathFilter> build_filter(const SendOptions& options);

// `ferry sync SRC`: rsync's "SRC/ DEST/" — the contents of SRC whatever its trailing slash,
// as the single source to scan ("dir/"). --manifest and --files-from are kUsage: sync
// mirrors a directory.
Result<std::string> sync_source(const std::string& source_dir, const SendOptions& options);

}  // namespace ferry
