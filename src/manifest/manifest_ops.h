// Creating a manifest of a directory tree and verifying a tree against one.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "manifest/scanner.h"

namespace ferry {

// Progress of hashing: regular files completed and bytes hashed so far. Called at most about
// 4 times a second while working (the clock is checked after every file and every read
// buffer) and exactly once more at the end of a successful run. May be empty.
using ManifestProgress = std::function<void(uint64_t files_done, uint64_t bytes_done)>;

// Writes a manifest of the contents of `dir` (like scan_sources({dir + "/"}): entry paths are
// relative to dir, symlinks recorded, not followed) to `out_path`, atomically (via
// `<out_path>.tmp`). Every regular file is hashed (XXH3-128) with one reused 1 MiB buffer;
// its size and mode/mtime are those of the file as it was read (fstat of the open file, and
// the bytes actually hashed). If `out_path` (or its .tmp) lies inside `dir`, it is left out.
// The "root" line records `dir` made absolute (symlinks kept as named).
// Errors: kLocalIo for the scan, a file that cannot be read or the manifest that cannot be
// written (nothing is left at out_path then); kUsage for a name the format cannot hold.
// Skipped special files (fifos, sockets, devices) are reported through `warn`.
Status create_manifest(const std::string& dir, const std::string& out_path,
                       const ManifestProgress& progress, const ScanWarning& warn = nullptr);

struct VerifyReport {
  uint64_t matched = 0;                 // entries whose type and content match
  std::vector<std::string> missing;     // in the manifest, not on disk
  std::vector<std::string> extra;       // on disk, not in the manifest
  std::vector<std::string> mismatched;  // different type, size, hash or link target
  // Matched entries whose mode or mtime differ (not a content problem; counted in matched).
  std::vector<std::string> attr_differences;

  bool clean() const { return missing.empty() && extra.empty() && mismatched.empty(); }
};

// Compares the tree under `dir` with the manifest at `manifest_path`. The manifest is
// streamed and merged with the scan of `dir` (both are in canonical order), so memory is
// that of the scan: proportional to the number of files, never to their contents. A
// regular file whose size matches is hashed and compared when the manifest has its hash.
// All lists are in canonical order (compare_manifest_paths). The manifest file itself is
// ignored if it lies inside `dir`.
// Errors: the manifest's (kUsage invalid, kLocalIo unreadable), kLocalIo for the scan or a
// file that cannot be read.
Result<VerifyReport> verify_tree(const std::string& dir, const std::string& manifest_path,
                                 const ManifestProgress& progress,
                                 const ScanWarning& warn = nullptr);

}  // namespace ferry
