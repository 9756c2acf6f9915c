#include "session/chunk_scheduler.h"

namespace ferry {

void ChunkScheduler::add_file(uint32_t file_id, uint32_t chunk_count) { files_.push_back({file_id, chunk_count}); }

void ChunkScheduler::add_resend(uint32_t file_id, uint32_t chunk_index) {
  resends_.push_back({file_id, chunk_index, true});
}

void ChunkScheduler::file_closed() {
  if (open_files_ > 0) --open_files_;
}

bool ChunkScheduler::peek(ChunkTask* task) const {
  if (!resends_.empty()) {
    *task = resends_.front();
    return true;
  }
  if (files_.empty()) return false;
  if (!front_started_ && open_files_ >= max_open_files_) return false;
  *task = {files_.front().file_id, front_started_ ? next_chunk_ : 0, false};
  return true;
}

void ChunkScheduler::pop() {
  if (!resends_.empty()) {
    resends_.pop_front();
    return;
  }
  if (!front_started_) {
    front_started_ = true;
    next_chunk_ = 0;
    ++open_files_;
  }
  if (++next_chunk_ >= files_.front().chunk_count) {
    files_.pop_front();
    front_started_ = false;
  }
}

bool ChunkScheduler::idle() const { return resends_.empty() && files_.empty(); }

}  // namespace ferry
