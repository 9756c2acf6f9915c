// The manifest file: a persistent, text, line-oriented record of a tree (docs/manifest.md).
//
// ManifestWriter streams entries to `<path>.tmp` and renames it into place on finish();
// ManifestReader streams them back, checking every field, the canonical entry order and
// the trailer (entry count + XXH3-64 of everything before it), so a truncated or edited
// manifest is always an error, never a shorter tree. Both use memory independent of the
// number of entries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "codec/hash.h"
#include "ferry/status.h"
#include "io/unique_fd.h"
#include "manifest/file_entry.h"

namespace ferry {

inline constexpr std::string_view kManifestMagic = "ferry-manifest";
inline constexpr int kManifestVersion = 1;
// Longest accepted line, not counting its '\n'.
inline constexpr size_t kMaxManifestLine = 16 * 1024;
// Longest symlink target recorded (Linux: PATH_MAX including the NUL).
inline constexpr size_t kMaxLinkTargetBytes = 4096;

struct ManifestEntry {
  FileEntry entry;        // entry.source_path is always empty
  bool has_hash = false;  // regular files only; false when the manifest says '-'
  Hash128 hash;           // XXH3-128 of the file's bytes when has_hash
};

// Percent-encoding of paths, link targets and the root: bytes <= 0x20, 0x7F and '%' become
// "%XX" (uppercase hex); every other byte, UTF-8 included, is kept verbatim.
std::string manifest_escape(std::string_view raw);
// Inverse of manifest_escape. Only the canonical form is accepted: false for a '%' not
// followed by two uppercase hex digits, for an escape of a byte that needs none ("%41"), and
// for a raw byte that should have been escaped (control bytes, space, DEL).
bool manifest_unescape(std::string_view text, std::string* out);

// The canonical entry order of a manifest (and of scan_sources on one directory): paths
// compared component by component, components compared as unsigned bytes. Equivalently,
// bytewise with '/' sorting before every other byte. A directory precedes its contents and
// a directory's whole subtree is contiguous. Returns <0, 0 or >0.
int compare_manifest_paths(std::string_view a, std::string_view b);
inline bool manifest_path_less(std::string_view a, std::string_view b) {
  return compare_manifest_paths(a, b) < 0;
}

// Writes a manifest. Entries must be added in canonical order (strictly increasing, see
// compare_manifest_paths) and nothing may be added below a non-directory.
class ManifestWriter {
 public:
  // Creates `<path>.tmp` (truncating a stale one; a symlink there is refused). `root` is
  // recorded on the "root" line (informative). kLocalIo on failure.
  static Result<ManifestWriter> create(const std::string& path, const std::string& root);

  ManifestWriter(ManifestWriter&&) noexcept;
  ManifestWriter& operator=(ManifestWriter&&) noexcept;
  ManifestWriter(const ManifestWriter&) = delete;
  ManifestWriter& operator=(const ManifestWriter&) = delete;
  // An unfinished writer removes its `<path>.tmp`.
  ~ManifestWriter();

  // Appends one entry (its source_path is ignored). kUsage if the entry cannot be recorded
  // (invalid path, link target empty/too long/with NUL, line over kMaxManifestLine),
  // kInternal if it is out of order, below a non-directory, or has a hash but is not a
  // regular file; kLocalIo if writing fails. After any error the writer only fails.
  Status add(const ManifestEntry& entry);
  Status add(const FileEntry& entry, const Hash128* hash);  // hash may be null ("-")

  // Writes the trailer, fsyncs, renames `<path>.tmp` to `<path>` and fsyncs the directory.
  Status finish();

  uint64_t entry_count() const;
  const std::string& path() const;

 private:
  struct Impl;
  explicit ManifestWriter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class LineFileReader;

// Reads a manifest, entry by entry. Every problem with the content is a kUsage error
// "manifest '<path>' line <n>: <what>"; an unreadable file is kLocalIo.
class ManifestReader {
 public:
  // Opens `path` and checks the header and root lines.
  static Result<ManifestReader> open(const std::string& path);
  // The same reader over a manifest held in memory; `label` stands for the path in
  // messages. For the fuzz target (tests/fuzz) and callers that already hold the bytes.
  static Result<ManifestReader> from_bytes(std::string bytes, const std::string& label);

  ManifestReader(ManifestReader&&) noexcept;
  ManifestReader& operator=(ManifestReader&&) noexcept;
  ManifestReader(const ManifestReader&) = delete;
  ManifestReader& operator=(const ManifestReader&) = delete;
  ~ManifestReader();

  // The next entry into *out: true; false once the trailer has been read and verified (and
  // on every later call). Errors are sticky: after one, every call returns it again.
  // Entries before a bad trailer have already been returned: a caller that acts on entries
  // must be ready to undo or discard them if a later call fails.
  Result<bool> next(ManifestEntry* out);

  const std::string& root() const;  // decoded "root" line
  uint64_t entries_read() const;
  const std::string& path() const;

 private:
  struct Impl;
  explicit ManifestReader(std::unique_ptr<Impl> impl);
  // Checks the header and root lines of `lines` (named `path` in messages).
  static Result<ManifestReader> start(LineFileReader lines, const std::string& path);
  std::unique_ptr<Impl> impl_;
};

// Reads '\n'-terminated lines of bounded length from a file with a fixed buffer (used for
// manifests and --files-from lists). Never allocates per line.
class LineFileReader {
 public:
  enum class Read { kLine, kEnd, kTooLong };

  // kLocalIo "open '<path>': ..." on failure.
  static Result<LineFileReader> open(const std::string& path, size_t max_line);
  // Lines of `bytes` instead of a file's, through the same bounded buffer (`label` names
  // it in messages). Never fails.
  static LineFileReader from_bytes(std::string bytes, std::string label, size_t max_line);

  // kLine: *line is the next line without its '\n' (valid until the next call) and
  // *terminated says whether it ended with '\n' (false only for a last line without one).
  // kEnd: end of file. kTooLong: the next line exceeds max_line bytes (reading stops there;
  // further calls return kTooLong again). Read errors are kLocalIo.
  Result<Read> next(std::string_view* line, bool* terminated);

  // 1-based number of the line last returned (or being read when kTooLong was returned).
  uint64_t line_number() const { return line_no_; }
  const std::string& path() const { return path_; }

 private:
  LineFileReader(UniqueFd fd, std::string path, size_t max_line);

  UniqueFd fd_;  // invalid when reading from memory_
  std::string memory_;
  size_t memory_pos_ = 0;
  std::string path_;
  size_t max_line_;
  std::string buf_;
  size_t begin_ = 0;  // unread data is buf_[begin_, end_)
  size_t end_ = 0;
  bool eof_ = false;
  bool too_long_ = false;
  uint64_t line_no_ = 0;
};

}  // namespace ferry
