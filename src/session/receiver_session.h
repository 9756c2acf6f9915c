// The receiving side of one transfer. Frames are read on the network thread; planning
// (stat/mkdir), chunk verification, writing, hashing and commits run on the worker pool.
//
// Invariants:
//  - nothing is created outside the root: every path is validated and resolved beneath it
//    with O_NOFOLLOW (io/safe_path.h);
//  - a file appears under its final name only after its whole-file XXH3-128 matched the
//    sender's and it was fsynced (io/staged_file.h);
//  - every receive buffer is counted in the shared MemoryBudget from before its read until
//    its chunk is written (or dropped);
//  - a chunk whose checksum fails is never written; the sender is asked for it again.
#pragma once

#include <atomic>
#include <chrono>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "codec/hash.h"
#include "ferry/report.h"
#include "core/memory_budget.h"
#include "io/safe_path.h"
#include "io/staged_file.h"
#include "manifest/journal.h"
#include "protocol/frames.h"
#include "session/total_rate.h"
#include "session/file_sink.h"
#include "transport/frame_socket.h"
#include "transport/udp/udp_chunk_receiver.h"

namespace ferry {

struct SessionStats {
  uint32_t files_committed = 0;
  uint32_t files_failed = 0;
  uint64_t bytes_written = 0;
  uint64_t chunks_rejected = 0;  // bad checksum or undecodable: NACKed
  uint64_t chunks_resumed = 0;   // offered to the sender from an earlier run's partial files
  uint64_t chunk_bytes_written = 0;  // file bytes that arrived in chunks and were written this session
};

class ReceiverSession : public std::enable_shared_from_this<ReceiverSession> {
 public:
  // `journal` is null when the sender asked for no resume (transfer id zero).
  ReceiverSession(asio::io_context& io, asio::thread_pool& pool, const RootDir& root, MemoryBudget& budget,
                  protocol::OpenSession open, protocol::Id128 id, std::string peer,
                  std::unique_ptr<ReceiveJournal> journal, uint64_t fault_sigkill_after_chunks = 0);
  ~ReceiverSession();

  // Serves the control connection until the sender finishes or the session fails; returns
  // the session's outcome (ok, kPartial if some files failed, or the failure).
  asio::awaitable<Status> run_control(std::shared_ptr<FrameSocket> control);
  // Reads CHUNK frames from one data stream until it closes or the session ends.
  asio::awaitable<void> run_data(std::shared_ptr<FrameSocket> stream, uint16_t index);

  const protocol::Id128& id() const { return id_; }
  // TEST-ONLY FAULT: datagram faults applied to the UDP ACKs this session sends.
  void set_udp_faults(const DatagramFaults& faults) { udp_faults_ = faults; }
  // Caps the bytes/s this session's data streams read (0 = none). Call before run_data.
  void set_rate_limit(uint64_t bytes_per_second) { rate_limit_ = bytes_per_second; }
  // The server-wide cap this session shares with the others (null = none). Call before run_data.
  void set_total_rate(std::shared_ptr<TotalRate> total) { total_rate_ = std::move(total); }
  // UDP data binds a port of [first, last] (0: ephemeral). Call before run_control.
  void set_udp_ports(uint16_t first, uint16_t last) {
    udp_port_first_ = first;
    udp_port_last_ = last;
  }
  // Network thread: payload bytes received so far (TCP and UDP), whether data flows over UDP,
  // and a nudge to send the UDP sender a RATE_LIMIT if its share moved by more than 5%.
  uint64_t bytes_received() const { return bytes_received_; }
  bool uses_udp() const { return udp_ != nullptr; }
  void update_udp_share();
  // Client side of a get (docs/protocol.md "Roles"): the server already sent SESSION_OPENED,
  // and the frames only a client in the sender role may send (LIST_REQUEST, DELETE,
  // UDP_OPEN) are protocol errors — a server cannot list or delete the client's files.
  // Call before run_control.
  void set_client_role() { client_role_ = true; }
  // Keeps `owner` (e.g. the RootDir this session writes beneath) alive as long as the session.
  void keep_alive(std::shared_ptr<const void> owner) { kept_alive_ = std::move(owner); }
  // Regular files go to sinks made by `sinks` (an S3 export) instead of below the root;
  // directories and symlinks are skipped. Call before run_control.
  void set_sinks(std::shared_ptr<FileSinkFactory> sinks) { sinks_ = std::move(sinks); }
  // A new connection of the same transfer arrived: this (stale) session ends now. Network thread.
  void supersede();
  // Ends the session now, as if its sender had vanished: journal flushed, partial files kept
  // for resume (receiver shutdown). Network thread.
  void terminate(const Status& why);
  SessionStats stats() const;
  // Client role only (a get): one report per listed entry, by file id — what the plan decided
  // and, for files, how they ended ("sent" with the hash, "failed" with why, or "pending").
  std::vector<FileReport> file_reports() const;

 private:
  struct RecvFile {
    std::mutex mu;
    uint32_t id = 0;
    FileEntry entry;  // path here is the full path below the root (dest joined)
    uint32_t chunk_count = 0;
    std::vector<uint8_t> claimed;  // chunk accepted for writing this session (dedups repeats)
    uint32_t written = 0;          // distinct chunks written this session
    std::vector<uint8_t> prior;    // chunk verified in an earlier run (resume), offered to the sender
    uint32_t covered = 0;          // chunks that are prior or written this session
    uint32_t sent_expected = 0;    // from FILE_DONE: distinct chunks the sender transmitted
    static constexpr uint32_t kNoSlot = UINT32_MAX;
    uint32_t slot = kNoSlot;       // journal slot, once the partial file exists
    // Shared: a worker copies them under `mu` and uses them outside it, so a concurrent
    // resolve() (which resets them) cannot free them under its feet.
    std::shared_ptr<StagedFile> staged;
    std::shared_ptr<OrderedFileHasher> hasher;
    std::shared_ptr<FileSink> sink;  // with sinks_: where the bytes go instead of `staged`
    std::set<uint32_t> resends_due;  // with sinks_: chunks NACKed and not yet received again
    bool done_known = false;
    Hash128 expected;
    bool finalizing = false;
    bool resolved = false;
  };
  struct DirAttrs {
    std::string path;
    uint32_t mode;
    int64_t mtime_ns;
  };

  Status handle_control_frame(const Frame& frame);
  Status on_file_list(protocol::FileList list);
  Status on_file_done(const protocol::FileDone& done);
  Status on_file_abort(const protocol::FileAbort& abort);
  Status on_udp_open(const protocol::UdpOpen& req);  // network thread
  // A chunk reassembled by the UDP data path; validated like a CHUNK frame. Network thread.
  void accept_udp_chunk(const protocol::ChunkHeader& h, Buffer payload, uint32_t payload_len, uint64_t reserved);
  // "" if the header is consistent with the file it names (set in *file), else why not.
  std::string check_chunk(const protocol::ChunkHeader& ch, uint32_t payload_len, std::shared_ptr<RecvFile>* file);
  void plan_batch(std::vector<protocol::FileListEntry> batch);  // pool
  protocol::PlanEntry plan_entry(const protocol::FileListEntry& e, std::shared_ptr<RecvFile>* out,
                                 std::vector<protocol::HaveChunks>* have);  // pool
  // Adopts the partial file an earlier run left for `file`, if the journal and the disk agree
  // (to the degree --resume asks); fills `have` with the chunks to offer. Pool thread.
  void try_resume(RecvFile& file, std::vector<protocol::HaveChunks>* have);
  bool ready_to_finalize(const RecvFile& f) const {
    return f.done_known && !f.finalizing && !f.resolved && f.written >= f.sent_expected && f.covered == f.chunk_count;
  }
  void process_chunk(std::shared_ptr<RecvFile> file, protocol::ChunkHeader header, Buffer payload,
                     uint32_t payload_len, uint64_t reserved);  // pool
  void finalize(std::shared_ptr<RecvFile> file);                   // pool
  // With sinks_ (receiver_session_sink.cc): plan, store a chunk, commit, hold a stream back.
  protocol::PlanEntry plan_sink_entry(const protocol::FileListEntry& e, const std::string& rel,
                                      std::shared_ptr<RecvFile>* out);  // pool
  void sink_chunk(std::shared_ptr<RecvFile> file, const protocol::ChunkHeader& h, const uint8_t* raw,
                  uint16_t nack_reason, uint64_t* reserved);  // pool
  void commit_to_sink(std::shared_ptr<RecvFile> file);         // pool
  asio::awaitable<void> wait_admitted(RecvFile& file, uint32_t chunk_index);  // network thread
  asio::awaitable<void> acquire_sink_budget(RecvFile& file, uint32_t chunk_index, uint64_t bytes);  // network thread
  Status open_staged(RecvFile& file);  // pool, file.mu held: temp file, hasher, journal record
  void run_committer();  // pool: group commit of verified files (fsync, rename, fsync dirs)
  void resolve(RecvFile& file, const Status& st, const Hash128& hash);  // pool, file.mu held
  void finish();                                                    // pool: FINISH
  void list_destination(bool with_hashes);                          // pool: LIST_REQUEST
  void delete_paths(const std::vector<std::string>& paths);        // pool: DELETE
  std::shared_ptr<RecvFile> lookup(uint32_t file_id);
  asio::awaitable<void> acquire_budget(uint64_t bytes);
  asio::awaitable<void> pace(uint32_t payload_len);  // network thread, with rate_limit_
  void abort(const Status& st);  // network thread
  void close_streams();          // network thread
  void send_control(std::vector<uint8_t> frame);  // any thread

  std::shared_ptr<const void> kept_alive_;  // declared first: destroyed after everything using root_
  std::shared_ptr<FileSinkFactory> sinks_;  // null: files land below root_
  uint64_t rate_limit_ = 0;                 // bytes/s, 0 = none
  std::shared_ptr<TotalRate> total_rate_;   // server-wide cap, null = none
  uint16_t udp_port_first_ = 0, udp_port_last_ = 0;
  uint64_t udp_cap_sent_ = 0;               // network thread: the UDP sender's cap as last told
  uint64_t bytes_received_ = 0;             // network thread
  uint64_t udp_cap() const;                 // min of the session cap and the total's share (0 = none)
  bool client_role_ = false;
  std::vector<FileReport> reports_;  // client role: by file id (guarded by mu_)
  std::chrono::steady_clock::time_point pace_next_{};  // network thread
  asio::io_context& io_;
  asio::thread_pool& pool_;
  const RootDir& root_;
  MemoryBudget& budget_;
  const protocol::OpenSession open_;
  const protocol::Id128 id_;
  const std::string peer_;
  const std::string tag_;  // names temporary files: the transfer id (stable across runs) or the session id
  std::unique_ptr<ReceiveJournal> journal_;
  const uint64_t fault_sigkill_after_chunks_;  // TEST-ONLY FAULT, see ReceiveOptions
  std::atomic<uint64_t> chunks_written_{0};
  std::atomic<uint64_t> chunk_bytes_written_{0};

  std::shared_ptr<FrameSocket> control_;
  std::vector<std::shared_ptr<FrameSocket>> streams_;
  std::shared_ptr<udp::UdpChunkReceiver> udp_;  // with --transport udp
  DatagramFaults udp_faults_;
  uint32_t next_file_id_ = 0;  // network thread: ids must arrive dense and in order
  bool list_ended_ = false;
  bool finish_received_ = false;
  std::atomic<bool> aborted_{false};
  bool streams_closed_ = false;  // network thread
  Status outcome_;

  struct PendingCommit {
    std::shared_ptr<RecvFile> file;
    Hash128 hash;
  };
  std::mutex commit_mu_;  // guards commit_queue_, committer_running_; taken after a file's mu
  std::vector<PendingCommit> commit_queue_;
  bool committer_running_ = false;

  mutable std::mutex mu_;  // guards files_, dirs_, stats_
  std::vector<std::shared_ptr<RecvFile>> files_;  // by file_id; null unless planned "send"
  std::vector<DirAttrs> dirs_;
  SessionStats stats_;
};

std::string hex_id(const protocol::Id128& id);

}  // namespace ferry
