// The sending side of one transfer: a state machine on the network thread, with chunk
// production (read, hash, compress) on the worker pool.
//
//   connect control -> OPEN_SESSION -> connect + JOIN data streams -> FILE_LIST ...
//   -> (FILE_PLAN | CHUNK_NACK | FILE_RESULT)* -> FINISH -> SUMMARY
//
// The sender is a role, not a connection direction: `run()` connects (ferry send), while
// `run_on()` is handed a control connection and data streams the peer connected (a server
// answering GET_SESSION); from FILE_LIST on both are the same state machine.
//
// Invariants:
//  - every chunk buffer is counted in the memory budget from before it is read until the
//    transport has handed it to the kernel;
//  - the network thread never reads files, hashes or compresses (the pool does);
//  - at most kMaxOpenFiles files are between their first chunk and their FILE_RESULT.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <unordered_map>
#include <optional>
#include <memory>
#include <mutex>
#include <vector>

#include "codec/chunk_codec.h"
#include "codec/hash.h"
#include "core/memory_budget.h"
#include "ferry/options.h"
#include "ferry/report.h"
#include "ferry/url.h"
#include "io/source_file.h"
#include "manifest/file_entry.h"
#include "manifest/path_filter.h"
#include "session/chunk_scheduler.h"
#include "session/compression_governor.h"
#include "transport/chunk_transport.h"
#include "transport/udp/udp_chunk_sender.h"

namespace ferry {

class SenderSession : public std::enable_shared_from_this<SenderSession> {
 public:
  SenderSession(asio::io_context& io, asio::thread_pool& pool, std::vector<FileEntry> files, FerryUrl dest,
                SendOptions options, CompressionSetting compression, protocol::Id128 transfer_id,
                protocol::ResumeMode resume);
  // Makes this a sync session: before sending, the destination is listed and only new and
  // changed entries are sent; extraneous ones are deleted after. `filter` protects excluded
  // destination paths from deletion.
  void enable_sync(const SyncOptions& sync, PathFilter filter);

  // Runs the whole transfer; returns when it has ended (report().status says how).
  asio::awaitable<void> run();
  // The same, on connections that are already open, authenticated and joined (server side
  // of a get: the client connected them). Plain TCP/TLS data streams only.
  asio::awaitable<void> run_on(std::shared_ptr<FrameSocket> control, std::vector<std::shared_ptr<FrameSocket>> data);

  // Server side of a get. Call before run_on.
  using SourceOpener = std::function<Result<std::shared_ptr<SourceFile>>(const FileEntry&)>;
  // Opens sources with `opener` instead of SourceFile::open(source_path) (beneath an export root).
  void set_source_opener(SourceOpener opener) { opener_ = std::move(opener); }
  // Takes chunk buffers from `budget` (shared with other sessions) instead of its own;
  // `budget` must outlive the session.
  void use_budget(MemoryBudget& budget) { budget_ = &budget; }
  // Paces what this session hands to the data streams at `bytes_per_second` (0 = none).
  void set_rate_limit(uint64_t bytes_per_second) { rate_limit_ = bytes_per_second; }
  // File bytes handed to the data streams so far (thread-safe, for metrics).
  uint64_t payload_bytes_sent() const { return payload_bytes_sent_.load(); }
  // Ends the session now (server shutdown). Network thread.
  void terminate(const Status& why) { fail(why); }
  TransferReport& report() { return report_; }
  // The receiver accepted the session (a later network error is worth retrying).
  bool established() const { return established_; }

 private:
  // Per regular file the receiver asked for. `mu` guards the lazily opened source and hasher
  // (opened on a pool thread, never on the network thread).
  struct SendFile {
    std::mutex mu;
    std::shared_ptr<SourceFile> source;
    std::shared_ptr<OrderedFileHasher> hasher;
    Status open_status;
    bool opened = false;
    std::atomic<bool> finished{false};  // FILE_DONE or FILE_ABORT sent
    bool aborted = false;                // FILE_ABORT sent (network thread)
    std::vector<uint8_t> attempts;       // per chunk: resends so far (network thread)
    // Chunks the receiver kept from an interrupted run (HAVE_CHUNKS), with their XXH3-64.
    // Written on the network thread before any chunk task of the file is posted.
    std::vector<uint8_t> claimed;
    std::vector<uint64_t> claim_hash;
    std::atomic<uint32_t> sent_distinct{0};  // chunks transmitted (not skipped), for FILE_DONE
  };

  asio::awaitable<Status> open_session();
  asio::awaitable<void> serve(Status opened);  // after the connections are set up (or failed)
  void pump_later(std::chrono::steady_clock::duration delay);
  asio::awaitable<Status> open_udp(const protocol::Id128& session_id);
  // One data stream: connect, TLS, HELLO/AUTH, JOIN_STREAM. All of a session's streams are set
  // up at once, so a long path pays these round trips once, not once per stream.
  asio::awaitable<Result<std::shared_ptr<FrameSocket>>> join_stream(std::shared_ptr<TlsContext> tls, std::string token,
                                                                  protocol::Id128 session_id, uint16_t index);
  void send_file_list();
  Status handle_control_frame(const Frame& frame);
  Status on_plan(const protocol::FilePlan& plan);
  Status on_nack(const protocol::ChunkNack& nack);
  Status on_result(const protocol::FileResult& result);
  Status on_have(protocol::HaveChunks have);
  // Sync: read the destination's listing, then decide what to send, update, delete, skip.
  asio::awaitable<Status> read_destination_listing();
  asio::awaitable<Status> delete_now(std::vector<std::string> paths);  // before the file list
  void plan_sync();
  void send_deletions();
  Status on_delete_result(const protocol::DeleteResult& result);
  void chunk_skipped(uint32_t len, uint64_t reserved);  // the receiver had it: release, count

  void pump();
  void produce(ChunkTask task, uint64_t reserved);  // pool thread
  void chunk_ready(ChunkTask task, protocol::ChunkHeader header, std::shared_ptr<Buffer> raw,
                   std::shared_ptr<Buffer> packed, uint32_t payload_len, uint64_t reserved);
  void file_hashed(uint32_t file_id);                      // network thread
  void abort_file(uint32_t file_id, const Status& why);  // network thread
  Status open_source(uint32_t file_id);                    // pool thread
  void maybe_finish();
  void check_test_faults();
  void fail(const Status& st);
  void report_progress();
  uint64_t chunk_reservation(uint32_t len, bool compress) const;
  bool decide_compression();  // network thread, per chunk

  asio::io_context& io_;
  asio::thread_pool& pool_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<FileEntry> files_;
  FerryUrl dest_;
  SendOptions options_;
  CompressionSetting compression_;
  MemoryBudget own_budget_;
  MemoryBudget* budget_ = &own_budget_;
  SourceOpener opener_;
  uint64_t rate_limit_ = 0;                            // bytes/s, 0 = none
  std::chrono::steady_clock::time_point pace_next_{};  // network thread
  asio::steady_timer pump_timer_;                      // re-pump after pacing or a full shared budget
  bool pump_timer_armed_ = false;
  std::atomic<uint64_t> payload_bytes_sent_{0};
  CompressionGovernor governor_;
  ChunkScheduler scheduler_{protocol::kMaxOpenFiles};
  std::vector<std::unique_ptr<SendFile>> send_files_;  // indexed by file_id; null if not sent
  std::vector<uint8_t> resolved_;                      // per file_id: plan or result received
  std::map<uint32_t, std::vector<std::pair<uint32_t, uint64_t>>> have_;  // HAVE_CHUNKS before their plan
  protocol::Id128 transfer_id_;
  std::optional<SyncOptions> sync_;
  PathFilter sync_filter_;
  std::map<std::string, protocol::ListEntry> dest_listing_;
  bool listing_complete_ = false;
  std::vector<std::string> deletions_;  // after every file landed
  std::vector<std::string> type_conflicts_;  // deleted before the file list (dir <-> file)
  bool deletions_sent_ = false;
  size_t delete_results_pending_ = 0;
  std::unordered_map<std::string, size_t> delete_report_index_;  // path -> report_.files index
  protocol::ResumeMode resume_;
  std::shared_ptr<FrameSocket> control_;
  std::vector<std::shared_ptr<FrameSocket>> data_streams_;
  std::shared_ptr<ChunkSender> transport_;
  std::shared_ptr<udp::UdpChunkSender> udp_;  // with --transport udp (also transport_)
  asio::steady_timer progress_timer_;
  std::chrono::steady_clock::time_point start_;

  uint64_t planned_entries_ = 0;
  uint64_t resolved_count_ = 0;
  uint64_t bytes_total_ = 0;
  uint64_t bytes_acked_ = 0;
  bool finish_sent_ = false;
  bool established_ = false;
  std::atomic<bool> done_{false};  // read by pool threads to stop early
  std::atomic<int> corrupt_remaining_;
  TransferReport report_;
};

}  // namespace ferry
