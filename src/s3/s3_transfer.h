// Entry points the CLI calls for S3 destinations: send, sync, list/abort uploads, get.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "ferry/options.h"
#include "ferry/report.h"
#include "s3/s3_client.h"
#include "s3/s3_url.h"

namespace ferry::s3 {

struct S3Options {
  std::string endpoint;      // --endpoint; "" = AWS for the region
  bool path_style = false;   // --path-style
  std::string region;        // --region; "" = environment / profile / us-east-1
  std::string profile;       // "" = $AWS_PROFILE / default
  uint64_t part_size = 0;    // --part-size; 0 = automatic (16 MiB, more for huge files)
  uint64_t single_put_cutoff = 16ull << 20;
  int concurrency = 8;       // --s3-concurrency: requests in flight
  std::string state_dir;     // --state-dir; "" = UploadJournal::default_state_dir()
  RetryOptions retry;
  std::string ca_file;       // "" = $AWS_CA_BUNDLE, else the system store
  ChecksumAlgorithm checksum = ChecksumAlgorithm::kMd5;  // --checksum-algorithm
};

// Uploads SRCs (rsync naming, as `ferry send`) below target.prefix. Regular files become
// objects; directories have no objects of their own; symlinks are skipped with a warning
// unless --follow-symlinks. SendOptions supplies --memory, --overwrite (diff: skip an object
// whose size and x-amz-meta-ferry-mtime match), filters, --manifest/--files-from, progress
// and the test-only kill fault. The report counts parts as chunks: chunks_sent (parts and
// single PUTs sent), chunks_resumed/bytes_resumed (parts an interrupted run had stored),
// chunks_resent (sent again after an ETag mismatch).
TransferReport send_files(const std::vector<std::string>& sources, const S3Target& target, const S3Options& s3,
                          const SendOptions& options);

// Makes target.prefix a copy of source_dir's contents: an object is up to date when its size
// matches and either its x-amz-meta-ferry-mtime equals the file's mtime (unless --checksum)
// or its x-amz-meta-ferry-xxh3 equals the file's XXH3-128. With --delete, keys under the
// prefix that SRC lacks are deleted (never keys outside the prefix, never excluded paths,
// never "directory" keys ending in '/').
TransferReport sync_tree(const std::string& source_dir, const S3Target& target, const S3Options& s3,
                         const SendOptions& options, const SyncOptions& sync);

struct UploadEntry {
  std::string key;
  std::string upload_id;
  int64_t initiated_unix = 0;
  std::string origin;  // "server" (ListMultipartUploads) or "journal" (this machine's state dir)
  bool aborted = false;
  std::string error;   // why an abort failed
};
struct UploadListing {
  std::vector<UploadEntry> uploads;
  bool server_can_list = true;  // false: the store does not implement ListMultipartUploads
};

// Lists multipart uploads under the prefix: the store's (ListMultipartUploads), plus those
// this machine's journals know (all a store without ListMultipartUploads can offer). With
// abort_older_than, those initiated longer ago are aborted and their journals removed.
Result<UploadListing> list_uploads(const S3Target& target, const S3Options& s3,
                                   std::optional<std::chrono::seconds> abort_older_than);

// Reads one object whole (tests, small tools).
Result<std::string> get_object(const S3Target& target, const std::string& key, const S3Options& s3,
                               size_t max_size = 1ull << 30);

// Builds a client for the target's bucket from the options and the credential chain.
Result<std::unique_ptr<S3Client>> make_client(const S3Target& target, const S3Options& s3);

}  // namespace ferry::s3
