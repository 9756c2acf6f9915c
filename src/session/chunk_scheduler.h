// Decides which chunk the sender produces next: resends first (the receiver is waiting on
// them), then the next chunk of the current file, then the next file — while keeping at most
// `max_open_files` files between "first chunk scheduled" and "FILE_RESULT received".
// Network thread only; no I/O.
#pragma once

#include <cstdint>
#include <deque>

namespace ferry {

struct ChunkTask {
  uint32_t file_id;
  uint32_t chunk_index;
  bool resend;
  bool compress = false;  // set by the sender when it takes the task (not scheduling state)
};

class ChunkScheduler {
 public:
  explicit ChunkScheduler(uint32_t max_open_files) : max_open_files_(max_open_files) {}

  // A file the receiver asked for, with its chunk count (> 0).
  void add_file(uint32_t file_id, uint32_t chunk_count);
  void add_resend(uint32_t file_id, uint32_t chunk_index);
  // The receiver resolved a file that counted as open: frees a window slot.
  void file_closed();

  // The next task without taking it; false if nothing can be scheduled now.
  bool peek(ChunkTask* task) const;
  void pop();

  uint32_t open_files() const { return open_files_; }
  bool idle() const;  // nothing queued at all

 private:
  struct PendingFile {
    uint32_t file_id;
    uint32_t chunk_count;
  };
  const uint32_t max_open_files_;
  std::deque<ChunkTask> resends_;
  std::deque<PendingFile> files_;
  uint32_t next_chunk_ = 0;  // of files_.front(), if it has been started
  bool front_started_ = false;
  uint32_t open_files_ = 0;
};

}  // namespace ferry
