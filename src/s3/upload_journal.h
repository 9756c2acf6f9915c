// Local resume state of one multipart upload (docs/s3.md, "Journal format").
//
// One file per (endpoint, bucket, key, source path) in the state directory, named by the
// XXH3-128 of those four. The header (what is uploaded where, the source's size and mtime,
// the part size and the upload id) is written once, atomically (temp file, fsync, rename);
// each finished part is then appended as one checksummed line and fdatasync'ed. A torn or
// corrupt line ends the part list (what follows it is ignored), so a crash at any point
// leaves a journal that is valid up to its last complete record. The file is locked (flock)
// while an upload runs, so two ferry processes never drive the same upload.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ferry/status.h"

namespace ferry::s3 {

inline constexpr int kUploadJournalVersion = 1;

struct JournalPart {
  std::string etag;     // as the store returned it, without quotes
  std::string md5_b64;  // the part's checksum as sent, base64: Content-MD5, or CRC32C with checksum "crc32c"
};

struct UploadJournalState {
  std::string endpoint;  // "http://127.0.0.1:9000" or "https://s3.eu-west-1.amazonaws.com"
  std::string bucket;
  std::string key;
  std::string source;    // absolute path of the local file
  uint64_t size = 0;     // of the source when the upload began
  int64_t mtime_ns = 0;
  uint64_t part_size = 0;
  std::string upload_id;
  int64_t created_unix = 0;
  // The upload's checksum algorithm: "md5" (also what a journal without the optional
  // `checksum` header line means: every journal written before crc32c existed) or "crc32c"
  // (the upload was created with x-amz-checksum-algorithm and Complete needs each part's).
  std::string checksum = "md5";
  std::map<uint32_t, JournalPart> parts;  // by part number (1-based)
};

class UploadJournal {
 public:
  ~UploadJournal();
  UploadJournal(const UploadJournal&) = delete;
  UploadJournal& operator=(const UploadJournal&) = delete;

  // $XDG_STATE_HOME/ferry/s3, else ~/.local/state/ferry/s3.
  static std::string default_state_dir();
  static std::string path_for(const std::string& state_dir, const std::string& endpoint, const std::string& bucket,
                              const std::string& key, const std::string& source);

  // Opens and locks an existing journal and reads it. nullopt (and no lock) if there is none.
  // kRefused if another process holds it; a journal whose header is unreadable is reported
  // as kProtocol naming the file (the caller discards it and starts over).
  static Result<std::unique_ptr<UploadJournal>> open_existing(const std::string& path, bool* absent);
  // Starts a journal (replacing any file at `path`) with `header` and no parts; locked.
  static Result<std::unique_ptr<UploadJournal>> create(const std::string& path, const UploadJournalState& header);
  // Reads without locking (for `ferry s3 uploads`).
  static Result<UploadJournalState> read(const std::string& path);
  // Every journal in the state directory, with its path; unreadable ones are skipped.
  static std::vector<std::pair<std::string, UploadJournalState>> list(const std::string& state_dir);

  const UploadJournalState& state() const { return state_; }
  const std::string& path() const { return path_; }
  // Appends a finished part (thread-safe) and makes it durable.
  Status record_part(uint32_t number, const JournalPart& part);
  // Deletes the file (the upload completed or was abandoned) and unlocks.
  Status remove();

 private:
  UploadJournal(std::string path, int fd, UploadJournalState state);
  std::string path_;
  int fd_ = -1;
  std::mutex mu_;
  UploadJournalState state_;
};

}  // namespace ferry::s3
