// Uploads local files to S3 objects: a single PUT below a cutoff, multipart above it, with
// parts of many files and of one file in flight at once on a fixed set of worker threads,
// every part buffer inside one MemoryBudget, and resume across runs (upload_journal.h).
//
// Per object: the parts' MD5 goes out as Content-MD5 (the store rejects a damaged body) and
// is compared with the ETag that comes back when that ETag is a plain MD5; the source's
// XXH3-128 is computed while the parts stream (OrderedFileHasher: in-order parts from
// memory, early ones re-read from the page cache when the cursor reaches them) and stored
// as x-amz-meta-ferry-xxh3: with the PUT for single objects; for multipart objects (whose
// hash is only known at the end) by copying the completed object onto itself with REPLACE
// metadata (up to 5 GiB; larger objects keep x-amz-meta-ferry-mtime only: see docs/s3.md).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/memory_budget.h"
#include "ferry/status.h"
#include "s3/s3_client.h"

namespace ferry::s3 {

inline constexpr uint64_t kMinPartSize = 5ull << 20;
inline constexpr uint64_t kMaxPartSize = 4ull << 30;  // S3 allows 5 GiB; parts are buffered, so 4 GiB
inline constexpr uint64_t kMaxParts = 10'000;
inline constexpr uint64_t kDefaultPartSize = 16ull << 20;
inline constexpr uint64_t kDefaultSinglePutCutoff = 16ull << 20;
inline constexpr uint64_t kMaxCopySize = 5ull << 30;  // CopyObject's limit

// Part size for a file: `requested` when given (kUsage if it is outside 5 MiB..4 GiB or
// gives more than 10,000 parts), else 16 MiB doubled until the file fits in 10,000 parts.
Result<uint64_t> choose_part_size(uint64_t file_size, uint64_t requested);

struct UploadItem {
  std::string source_path;  // local file
  std::string key;          // object key
  uint64_t size = 0;
  int64_t mtime_ns = 0;
};

struct UploadResult {
  Status status;
  std::string xxh3;           // hex XXH3-128 of the source, when uploaded
  uint64_t parts_sent = 0;    // parts (or single PUTs) sent by this run
  uint64_t parts_resumed = 0; // parts already stored by an earlier run
  uint64_t bytes_sent = 0;
  uint64_t bytes_resumed = 0;
  uint64_t parts_resent = 0;  // sent again after an ETag did not match the MD5
  bool done = false;
};

struct UploaderOptions {
  uint64_t part_size = 0;  // 0 = automatic
  uint64_t single_put_cutoff = kDefaultSinglePutCutoff;
  int concurrency = 8;
  uint64_t memory = 256ull << 20;
  std::string state_dir;   // journals; "" = no resume
  // Per-part integrity header (--checksum-algorithm). A resumed upload keeps the algorithm
  // it was created with (its journal says which).
  ChecksumAlgorithm checksum = ChecksumAlgorithm::kMd5;
  // TEST-ONLY FAULT: SIGKILL this process once N parts were journaled (the CLI sets it from
  // FERRY_TEST_SIGKILL_AFTER_CHUNKS) so tests can interrupt an upload at a seeded point.
  uint64_t fault_sigkill_after_parts = 0;
};

class MultipartUploader {
 public:
  MultipartUploader(S3Client& client, const UploaderOptions& options);

  // Uploads every item; blocks. results[i] belongs to items[i]. Never throws.
  std::vector<UploadResult> run(const std::vector<UploadItem>& items);

  // Live counters (read by the progress thread).
  std::atomic<uint64_t> bytes_done{0};
  std::atomic<uint64_t> files_done{0};
  uint64_t peak_buffer_bytes() const { return budget_.peak(); }

 private:
  S3Client& client_;
  UploaderOptions options_;
  MemoryBudget budget_;
};

}  // namespace ferry::s3
