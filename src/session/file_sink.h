// Where a receiver session puts the bytes of a regular file when the destination is not a
// local directory (an S3 bucket: s3/s3_export_sink.h). A local export lands files through
// io/staged_file.h (temp file, group fsync, rename, resume journal) inside ReceiverSession;
// a session with a FileSinkFactory hands every regular file to a FileSink instead.
//
// Contract between the session and a sink, per file:
//  - the session verifies each chunk's XXH3-64 before write(); a sink sees verified bytes
//    only, each chunk index at most once, in any order, from several threads;
//  - write() takes over budget bytes for the chunk from *reserved (the session releases the
//    rest) and returns them to the budget when it no longer holds the bytes;
//  - commit() is called once, after every chunk was written, with the sender's whole-file
//    XXH3-128; the file becomes visible at its destination only if the sink's own hash of
//    what it stored matches; `done` runs exactly once, on any thread;
//  - destroying a sink that was not committed successfully discards what it stored.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "codec/hash.h"
#include "core/memory_budget.h"
#include "ferry/status.h"
#include "manifest/file_entry.h"
#include "protocol/frames.h"

namespace ferry {

class FileSink {
 public:
  virtual ~FileSink() = default;

  // False while chunk `index` is too far ahead of what the sink can hold for this file: the
  // session stops reading the TCP stream that carries it (backpressure) until it is true.
  virtual bool admits(uint32_t index) const = 0;
  // Memory (TCP): the session reads a chunk into budget bytes, and a sink may keep them
  // until other chunks arrived (S3: until the part is complete and hashed in order). So that
  // a budget full of such bytes cannot wait for ever on the chunk they wait for:
  //  - needed_now(index): the sink can release none of this file's bytes before chunk
  //    `index` arrives (S3: it is in the part the file hash waits for). The session gives
  //    it memory even beyond the budget rather than let it wait;
  //  - headroom(): budget bytes other chunks of the file leave free when they take theirs,
  //    so that the chunks needed now usually fit within the budget.
  virtual bool needed_now(uint32_t index) const = 0;
  virtual uint64_t headroom() const = 0;
  // Stores the verified bytes of chunk `index` (len = the chunk's full length).
  virtual Status write(uint32_t index, const uint8_t* data, uint32_t len, uint64_t* reserved) = 0;
  // Every chunk was written: finish the file if its hash is `expected`. `done` gets the
  // outcome and the hash the sink computed.
  using Done = std::function<void(const Status&, const Hash128&)>;
  virtual void commit(const Hash128& expected, Done done) = 0;
};

// One per destination (export); shared by its sessions; thread-safe.
class FileSinkFactory {
 public:
  virtual ~FileSinkFactory() = default;
  // "s3://bucket/prefix/": for messages.
  virtual std::string describe() const = 0;
  // Whether a file already at the destination makes sending `entry` unnecessary under
  // `mode` (never: it exists; diff: same size and mtime). Errors name the destination.
  virtual Result<bool> up_to_date(const std::string& rel_path, const FileEntry& entry,
                                  protocol::OverwriteMode mode) = 0;
  // sync's LIST_REQUEST: every file below `rel_dir` (paths relative to it, valid relative
  // paths only), with its XXH3-128 when `with_hashes` and the destination stores one (else
  // nullptr). Errors name the destination; what was visited before an error stands.
  virtual Status list(const std::string& rel_dir, bool with_hashes,
                      const std::function<void(const FileEntry&, const Hash128*)>& visit) = 0;
  // sync --delete: removes the file at `rel_path` (below the destination).
  virtual Status remove(const std::string& rel_path) = 0;
  // Starts receiving `entry` to `rel_path` (below the destination).
  virtual Result<std::unique_ptr<FileSink>> begin(const std::string& rel_path, const FileEntry& entry,
                                                  uint32_t chunk_size, MemoryBudget& budget,
                                                  const std::string& peer) = 0;
};

}  // namespace ferry
