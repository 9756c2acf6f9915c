// Turns the sender's SRC arguments into manifest entries (the transfer's file list).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "manifest/file_entry.h"

namespace ferry {

struct ScanOptions {
  bool follow_symlinks = false;  // default: symlinks are recreated as links, not followed
};

// Called once per skipped item, with a message naming it ("skipping fifo 'a/p': not a
// regular file, directory or symlink").
using ScanWarning = std::function<void(const std::string& message)>;

// Scans SRC arguments with rsync's naming rules:
//  - "dir" (no trailing slash) -> entries "dir", "dir/a", "dir/sub", "dir/sub/b", ...
//  - "dir/" (trailing slash)   -> the directory's contents: "a", "sub", "sub/b", ...
//  - "file"                    -> entry "file" (its base name)
//  - a symlink given as SRC is recorded as a symlink unless follow_symlinks.
// Order: depth-first pre-order, names sorted bytewise within each directory, so a directory
// always precedes its contents and the result is deterministic.
// Sockets, fifos and devices are skipped with a warning. A missing or unreadable SRC is a
// kLocalIo error naming the path. Two SRCs mapping to the same relative path is a kUsage
// error. Names are taken as raw bytes (spaces, Unicode, shell metacharacters all fine).
// Entries' source_path holds the local path to read.
Result<std::vector<FileEntry>> scan_sources(const std::vector<std::string>& sources,
                                            const ScanOptions& options, const ScanWarning& warn);

}  // namespace ferry
