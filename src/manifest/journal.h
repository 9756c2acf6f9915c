// The receive journal (docs/journal.md): which chunks of which partial files are verified,
// so an interrupted transfer resumes instead of starting over.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "ferry/status.h"
#include "io/safe_path.h"
#include "io/unique_fd.h"

namespace ferry::journal {

inline constexpr uint8_t kMagic[8] = {'F', 'E', 'R', 'R', 'Y', 'J', 0, 1};
inline constexpr uint32_t kMaxRecordBody = 65536;
inline constexpr size_t kRecordHeaderSize = 12;  // u32 length + u64 xxh3_64
inline constexpr size_t kMaxChunksPerRecord = (kMaxRecordBody - 7) / 12;
inline constexpr size_t kFlushAfterChunks = 8;
inline constexpr auto kFlushAfter = std::chrono::milliseconds(20);
static_assert(kMaxChunksPerRecord >= kFlushAfterChunks);

enum class Kind : uint8_t { kFile = 1, kChunks = 2, kCommitted = 3, kDiscarded = 4 };

struct FileRecord {
  uint32_t slot = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint32_t chunk_size = 0;
  uint64_t temp_dev = 0;
  uint64_t temp_ino = 0;
  std::string rel_path;
  std::string temp_name;
};

struct PartialFile {
  FileRecord file;
  std::map<uint32_t, uint64_t> chunks;  // chunk index -> xxh3_64, verified and written
  bool committed = false;
  bool discarded = false;
};

struct Loaded {
  bool header_ok = false;
  uint64_t valid_bytes = 0;  // header + every intact record; anything after is torn
  uint64_t ignored_bytes = 0;
  uint32_t next_slot = 0;
  std::map<std::string, PartialFile> files;  // by rel_path (latest FILE record wins)
};

// Parses a journal image. Never fails: what cannot be trusted is left out (see docs).
Loaded parse(std::span<const uint8_t> bytes);

std::vector<uint8_t> encode_file(const FileRecord& r);
std::vector<uint8_t> encode_chunks(uint32_t slot, std::span<const std::pair<uint32_t, uint64_t>> chunks);
std::vector<uint8_t> encode_mark(Kind kind, uint32_t slot);  // kCommitted or kDiscarded

}  // namespace ferry::journal

namespace ferry {

// One transfer's journal on the receiver: loaded and locked at session start, appended to
// as chunks are verified and written. Thread-safe.
class ReceiveJournal {
 public:
  // Opens (creating) <root>/.ferry/journal/<id_hex>.fj with an exclusive flock. kRefused if
  // another session holds it. Torn tails are truncated away.
  static Result<std::unique_ptr<ReceiveJournal>> open(const RootDir& root, const std::string& id_hex);
  ~ReceiveJournal();

  // The loaded state of a path from earlier runs (nullptr if none, committed or discarded).
  const journal::PartialFile* partial(const std::string& rel_path) const;
  bool committed_earlier(const std::string& rel_path) const;

  uint32_t begin_file(journal::FileRecord record);  // assigns and returns the slot
  void chunk_done(uint32_t slot, uint32_t index, uint64_t hash);
  void committed(uint32_t slot);
  void discarded(uint32_t slot);
  Status flush();
  // Deletes the journal (the transfer is complete). Further calls do nothing.
  void remove();

  uint64_t ignored_bytes() const { return loaded_.ignored_bytes; }

 private:
  ReceiveJournal(UniqueFd dir, UniqueFd fd, std::string name, journal::Loaded loaded);
  Status append_locked(const std::vector<uint8_t>& bytes);
  Status flush_locked();

  UniqueFd dir_fd_;
  UniqueFd fd_;
  std::string name_;
  journal::Loaded loaded_;
  mutable std::mutex mu_;
  uint32_t next_slot_;
  std::map<uint32_t, std::vector<std::pair<uint32_t, uint64_t>>> pending_;
  size_t pending_count_ = 0;
  std::chrono::steady_clock::time_point last_flush_;
  bool removed_ = false;
  Status write_error_;
};

}  // namespace ferry
