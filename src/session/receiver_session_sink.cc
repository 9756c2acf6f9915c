// ReceiverSession with a FileSinkFactory (an S3 export): regular files go to FileSinks, not
// below the root. Kept apart from receiver_session.cc, which calls in at four points: plan,
// chunk, finalize and (TCP) admission before a chunk is read.
//
// Differences from a local export, by design:
//  - directories have no objects and symlinks cannot be stored: both are skipped with a
//    warning in ferryd's log (plan SKIP with the reason), not a session failure;
//  - --overwrite never/diff ask the sink (S3: HeadObject of the key: exists / same size and
//    x-amz-meta-ferry-mtime, as `ferry send` to s3:// decides);
//  - no resume of partial files: a sink holds no partial file to offer (HAVE_CHUNKS), so an
//    interrupted file is sent again whole by the next run, and the sink discards (S3: aborts)
//    what the interrupted run stored.
#include <algorithm>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.h"
#include "session/receiver_session.h"

namespace ferry {

protocol::PlanEntry ReceiverSession::plan_sink_entry(const protocol::FileListEntry& e, const std::string& rel,
                                                     std::shared_ptr<RecvFile>* out) {
  using protocol::PlanAction;
  switch (e.entry.type) {
    case FileType::kDirectory:
      return {e.file_id, PlanAction::kSkip, ""};  // keys imply their "directories"
    case FileType::kSymlink: {
      std::string why = "'" + rel + "' is a symlink: " + sinks_->describe() + " cannot store symlinks; skipped";
      log::warning("session from " + peer_ + ": " + why);
      return {e.file_id, PlanAction::kSkip, why};
    }
    case FileType::kRegular:
      break;
  }
  auto current = sinks_->up_to_date(rel, e.entry, open_.overwrite);
  if (!current) {
    log::warning("session from " + peer_ + ": refusing '" + rel + "': " + current.status().message());
    return {e.file_id, PlanAction::kReject, current.status().message()};
  }
  if (*current) return {e.file_id, PlanAction::kSkip, ""};
  auto file = std::make_shared<RecvFile>();
  file->id = e.file_id;
  file->entry = e.entry;
  file->entry.path = rel;
  file->chunk_count = chunk_count_for(e.entry.size, open_.chunk_size);
  file->claimed.assign(file->chunk_count, 0);
  file->prior.assign(file->chunk_count, 0);
  auto sink = sinks_->begin(rel, file->entry, open_.chunk_size, budget_, peer_);
  if (!sink) return {e.file_id, PlanAction::kReject, sink.status().message()};
  file->sink = std::move(*sink);
  *out = std::move(file);
  return {e.file_id, PlanAction::kSend, ""};
}

void ReceiverSession::sink_chunk(std::shared_ptr<RecvFile> file, const protocol::ChunkHeader& h, const uint8_t* raw,
                                 uint16_t nack_reason, uint64_t* reserved) {
  std::shared_ptr<FileSink> sink;
  {
    std::lock_guard lock(file->mu);
    if (file->resolved || file->claimed[h.chunk_index]) return;  // failed already, or a repeat
    sink = file->sink;
  }
  if (!nack_reason && xxh3_64(raw, h.raw_length) != h.xxh3_64) nack_reason = 1;
  if (nack_reason) {
    {
      std::lock_guard lock(file->mu);
      file->resends_due.insert(h.chunk_index);
    }
    {
      std::lock_guard lock(mu_);
      ++stats_.chunks_rejected;
    }
    log::info("session from " + peer_ + ": chunk " + std::to_string(h.chunk_index) + " of '" + file->entry.path +
              "' failed its checksum; asking for it again");
    send_control(protocol::encode(protocol::ChunkNack{h.file_id, h.chunk_index, nack_reason}));
    return;
  }
  {
    std::lock_guard lock(file->mu);
    if (file->resolved || file->claimed[h.chunk_index]) return;
    file->claimed[h.chunk_index] = 1;
    file->resends_due.erase(h.chunk_index);
  }
  Status st = sink->write(h.chunk_index, raw, h.raw_length, reserved);
  std::unique_lock lock(file->mu);
  if (!st) return resolve(*file, st, Hash128{});
  ++file->written;
  ++file->covered;
  if (ready_to_finalize(*file)) {
    file->finalizing = true;
    lock.unlock();
    commit_to_sink(file);
  }
}

void ReceiverSession::commit_to_sink(std::shared_ptr<RecvFile> file) {
  std::shared_ptr<FileSink> sink;
  Hash128 expected;
  {
    std::lock_guard lock(file->mu);
    if (file->resolved) return;
    sink = file->sink;
    expected = file->expected;
  }
  // The sink answers from its own threads (after the upload completed): back to the pool.
  sink->commit(expected, [weak = weak_from_this(), file](const Status& st, const Hash128& hash) {
    auto self = weak.lock();
    if (!self) return;
    asio::post(self->pool_, [self, file, st, hash] {
      std::lock_guard lock(file->mu);
      self->resolve(*file, st, hash);
    });
  });
}

// Holds a TCP stream back while the sink cannot take the file's chunk yet (see FileSink::
// admits). Polled: the sink's window moves on its own threads, and a short timer is simpler
// than a wake-up path from there to this session's network thread. The window is a soft
// limit: a chunk that waited a second goes ahead (the budget still bounds memory). A resend
// of a NACKed chunk can sit on a stream behind chunks sent after it, beyond the window; the
// part it completes is what would move the window, so waiting for ever could deadlock.
asio::awaitable<void> ReceiverSession::wait_admitted(RecvFile& file, uint32_t chunk_index) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (std::chrono::steady_clock::now() < give_up) {
    std::shared_ptr<FileSink> sink;
    {
      std::lock_guard lock(file.mu);
      if (file.resolved) co_return;
      sink = file.sink;
    }
    if (!sink || streams_closed_ || sink->admits(chunk_index)) co_return;
    asio::steady_timer t(io_, std::chrono::milliseconds(2));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace ferry

namespace ferry {

// Budget for a chunk bound for a sink (TCP). A sink keeps chunks' bytes until other chunks
// arrived (S3: until their part is hashed in order), so the plain FIFO acquire could park
// the very chunk those bytes wait for behind chunks that wait for them: a deadlock once the
// budget is full (seen with 32 MiB and 8 streams on a loaded machine: every stream parked,
// RSS at the budget, no upload queued). Hence, polled like wait_admitted:
//  - a chunk the sink needs now (FileSink::needed_now) never waits: it takes its bytes even
//    beyond the limit (at most the rest of one part per file);
//  - another chunk takes bytes only if the sink's headroom stays free (at most half the
//    budget), so the chunks needed now normally fit within the limit;
//  - one that waited a second may use the headroom, and takes its bytes beyond the limit if
//    the file's cursor part waits for a resend (a NACKed chunk): the resend may be queued
//    on this chunk's stream behind it (wait_admitted's case), so this chunk is what the
//    budget's holders wait for. That excess is bounded by the chunks queued ahead of the
//    resends, and happens only after a NACK under a full budget.
// No other chunk is ever taken beyond the limit: one that simply waits for uploads to drain
// keeps waiting (forcing those too let a slow store push RSS towards the file's size).
asio::awaitable<void> ReceiverSession::acquire_sink_budget(RecvFile& file, uint32_t chunk_index, uint64_t bytes) {
  constexpr auto kHeadroomFor = std::chrono::seconds(1);
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    std::shared_ptr<FileSink> sink;
    bool resolved = false;
    std::vector<uint32_t> resends;
    {
      std::lock_guard lock(file.mu);
      resolved = file.resolved;
      sink = file.sink;
      resends.assign(file.resends_due.begin(), file.resends_due.end());
    }
    // Closed streams or a resolved file: the bytes are released as soon as the read fails
    // or the chunk is dropped.
    if (!sink || resolved || streams_closed_ || sink->needed_now(chunk_index)) {
      if (!budget_.try_acquire(bytes)) budget_.acquire_over_limit(bytes);
      co_return;
    }
    bool waited = std::chrono::steady_clock::now() - start >= kHeadroomFor;
    uint64_t keep = waited ? 0 : std::min(sink->headroom(), budget_.limit() / 2);
    if (budget_.try_acquire(bytes, keep)) co_return;
    if (waited && std::any_of(resends.begin(), resends.end(), [&](uint32_t r) { return sink->needed_now(r); })) {
      log::info("session from " + peer_ + ": chunk " + std::to_string(chunk_index) + " of '" + file.entry.path +
                "' takes memory beyond the budget: the part of " + sinks_->describe() +
                " its file waits for may need a resend queued behind it (raise `memory` if this repeats)");
      budget_.acquire_over_limit(bytes);
      co_return;
    }
    asio::steady_timer t(io_, std::chrono::milliseconds(2));
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

}  // namespace ferry
