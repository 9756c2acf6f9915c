// XXH3 hashing: 64-bit per chunk, 128-bit per whole file (libxxhash from Debian).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry {

struct Hash128 {
  uint64_t high = 0;
  uint64_t low = 0;

  bool operator==(const Hash128&) const = default;
  // 32 lowercase hex digits, high then low (the same text as `xxh128sum`).
  std::string hex() const;
  // The inverse of hex(): false for anything but 32 lowercase hex digits.
  static bool from_hex(std::string_view text, Hash128* out);
  // Canonical big-endian 16 bytes (XXH128_canonicalFromHash layout), for wire and disk.
  void to_bytes(uint8_t out[16]) const;
  static Hash128 from_bytes(const uint8_t in[16]);
};

uint64_t xxh3_64(const void* data, size_t len);
Hash128 xxh3_128(const void* data, size_t len);

// Incremental XXH3-128 over a byte stream fed in order.
class StreamingHash128 {
 public:
  StreamingHash128();
  ~StreamingHash128();
  StreamingHash128(const StreamingHash128&) = delete;
  StreamingHash128& operator=(const StreamingHash128&) = delete;
  void update(const void* data, size_t len);
  Hash128 digest() const;

 private:
  friend class OrderedFileHasher;  // snapshots the state to undo a chunk that fails its check
  void* state_;  // XXH3_state_t*, kept opaque so xxhash.h stays out of this header
};

// Computes the XXH3-128 of a whole file whose chunks become available out of order (chunks
// of one file are produced/received by several workers and streams at once).
//
// The file is cut into chunks of `chunk_size` bytes (the last one shorter). A chunk handed to
// add_chunk() while it is the next one in order is hashed straight from the caller's memory.
// A chunk that arrives early is only marked present; when the cursor reaches it later, its
// bytes are read back with `read_back` (pread on the file: page cache) into a scratch buffer.
// Thread-safe: add_chunk() may be called from several threads.
class OrderedFileHasher {
 public:
  // Reads `len` bytes at `offset` of the file into `dst`.
  using ReadBack = std::function<Status(uint64_t offset, uint8_t* dst, size_t len)>;

  OrderedFileHasher(uint64_t file_size, uint32_t chunk_size, ReadBack read_back);

  // Marks chunk `index` (whose bytes are data[0..len)) as present and advances the cursor.
  // len must equal the chunk's length. Adding the same chunk twice is ignored.
  // Returns an error only if read_back fails.
  Status add_chunk(uint32_t index, const uint8_t* data, size_t len);

  // Like add_chunk, but for a chunk that arrives early the hasher may keep `data` (up to
  // kMaxHeldChunks per file) and hash it from memory when the cursor gets there, instead of
  // reading it back from the file: one pass over memory saved per out-of-order chunk.
  static constexpr size_t kMaxHeldChunks = 2;
  Status add_chunk_shared(uint32_t index, std::shared_ptr<const uint8_t> data, size_t len);

  // add_chunk_shared that also computes the chunk's own XXH3-64 into *hash64. When the chunk
  // is next in order, both hashes are computed in one pass over 64 KiB slices (the second
  // read comes from L1/L2 instead of memory).
  Status add_chunk_hashing64(uint32_t index, std::shared_ptr<const uint8_t> data, size_t len, uint64_t* hash64);

  // The receiver's path: checks the chunk's XXH3-64 against `expected`. If the chunk is next
  // in order and matches, it is added in the same pass (kAdded; on a mismatch the file hash
  // is rolled back). An early chunk is only checked (kVerified): the caller adds it with
  // add_chunk_shared once it is written, because the hasher may read it back from the file.
  // kDuplicate: the chunk was already added.
  enum class Check { kAdded, kVerified, kMismatch, kDuplicate };
  Result<Check> add_chunk_if_matches(uint32_t index, std::shared_ptr<const uint8_t> data, size_t len,
                                     uint64_t expected);

  // Marks chunk `index` as present without its bytes (e.g. verified in an earlier run); the
  // cursor will read it back when it gets there.
  Status add_chunk_on_disk(uint32_t index);

  bool complete() const;       // every chunk hashed
  Hash128 digest() const;      // valid once complete()
  uint32_t chunk_count() const { return chunk_count_; }

 private:
  Status advance_locked();

  const uint64_t file_size_;
  const uint32_t chunk_size_;
  const uint32_t chunk_count_;
  ReadBack read_back_;
  mutable std::mutex mu_;
  std::vector<bool> present_;
  std::map<uint32_t, std::shared_ptr<const uint8_t>> held_;  // early chunks kept in memory
  uint32_t cursor_ = 0;  // invariant: chunks [0, cursor_) are hashed, in order
  StreamingHash128 hasher_;
};

// Number of chunks of a file: ceil(size / chunk_size); 0 for an empty file.
inline uint32_t chunk_count_for(uint64_t size, uint32_t chunk_size) {
  return static_cast<uint32_t>((size + chunk_size - 1) / chunk_size);
}
// Length of chunk `index`.
inline uint32_t chunk_length(uint64_t size, uint32_t chunk_size, uint32_t index) {
  uint64_t off = static_cast<uint64_t>(index) * chunk_size;
  uint64_t rest = size - off;
  return static_cast<uint32_t>(rest < chunk_size ? rest : chunk_size);
}

}  // namespace ferry
