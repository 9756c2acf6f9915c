// ferryd exports backed by an S3 bucket (`type = "s3"` in ferryd.toml): received files
// stream into S3 objects without being staged on local disk (docs/s3.md "ferryd exports").
//
// Per file: chunks (verified by the session) are copied into part buffers of part_size bytes
// (a multiple of the chunk size); a full part is uploaded by one of the export's worker
// threads (UploadPart, retried by S3Client, ETag checked against the part's MD5) and folded
// into the file's XXH3-128 in part order. Only when every part is stored and that hash equals
// the sender's does CompleteMultipartUpload run, so an object appears under its key only
// whole and verified; a file that fails or is abandoned has its upload aborted. A file of at
// most one part is held and sent as one PutObject after the hash matched. Metadata as the
// CLI path writes it: x-amz-meta-ferry-mtime, and x-amz-meta-ferry-xxh3 (single PUT: with
// the PUT; multipart: CopyObject onto itself after Complete, up to 5 GiB).
//
// Memory: every byte a part holds was reserved in the receiver's MemoryBudget by the
// session before it read the chunk; the part keeps that reservation until the part is both
// uploaded and hashed. Why parts always complete (no deadlock) is explained at admits().
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "s3/s3_client.h"
#include "s3/s3_transfer.h"
#include "session/file_sink.h"

namespace ferry::s3 {

struct S3ExportSettings {
  std::string name;         // the export's name (messages)
  S3Target target;          // bucket and key prefix ("" or ending in '/')
  S3Options s3;             // endpoint, path_style, region, ca_file, retry, concurrency
  uint64_t part_size = 0;   // requested part size; 0 = 8 MiB (rounded up to whole chunks)
  int window_parts = 4;     // parts of one file that may be open at once (see admits())
};

// Part size for a received file: a multiple of chunk_size, at least S3's 5 MiB minimum and
// `requested` (default 8 MiB), doubled while the file would need more than 10,000 parts.
uint64_t export_part_size(uint64_t file_size, uint32_t chunk_size, uint64_t requested);

class S3ExportSinks final : public FileSinkFactory, public std::enable_shared_from_this<S3ExportSinks> {
 public:
  explicit S3ExportSinks(S3ExportSettings settings);
  ~S3ExportSinks() override;

  std::string describe() const override { return settings_.target.to_string(); }
  Result<bool> up_to_date(const std::string& rel_path, const FileEntry& entry, protocol::OverwriteMode mode) override;
  Status list(const std::string& rel_dir, bool with_hashes,
              const std::function<void(const FileEntry&, const Hash128*)>& visit) override;
  Status remove(const std::string& rel_path) override;
  Result<std::unique_ptr<FileSink>> begin(const std::string& rel_path, const FileEntry& entry, uint32_t chunk_size,
                                          MemoryBudget& budget, const std::string& peer) override;

  // Runs what is queued, then joins the workers (ferryd's shutdown, before the receivers and
  // their budgets go away). Tasks posted later run on the caller's thread.
  void stop();

  // Internals shared with the per-file sinks.
  void post(std::function<void()> task);
  // The client, made on first use from the credential chain of the daemon's environment;
  // an error (no credentials, bad endpoint) is retried on the next call.
  Result<S3Client*> client();
  const S3ExportSettings& settings() const { return settings_; }
  std::string what() const { return "S3 export '" + settings_.name + "' (" + describe() + ")"; }

 private:
  void worker();

  const S3ExportSettings settings_;
  std::mutex client_mu_;
  std::unique_ptr<S3Client> client_;

  std::mutex mu_;  // guards the queue and the thread list
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> threads_;
  bool stopping_ = false;
};

}  // namespace ferry::s3
