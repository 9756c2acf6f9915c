#include <boost/asio/co_spawn.hpp>
#include <map>

#include "core/units.h"
#include "ferry/sender.h"
#include "manifest/manifest_file.h"
#include "manifest/path_filter.h"
#include "manifest/scanner.h"
#include "manifest/source_list.h"
#include "protocol/frames.h"
#include "session/process_limits.h"
#include "session/retry_loop.h"
#include "session/sender_session.h"
#include "transport/cc/congestion_controller.h"

namespace ferry {

namespace {

Result<protocol::ResumeMode> parse_resume(const std::string& s) {
  if (s == "off") return protocol::ResumeMode::kOff;
  if (s == "attrs") return protocol::ResumeMode::kAttrs;
  if (s == "sparse") return protocol::ResumeMode::kSparse;
  if (s == "full") return protocol::ResumeMode::kFull;
  return Status(Error::kUsage, "invalid --resume value '" + s + "' (expected off, attrs, sparse or full)");
}

// Same command, same id: destination, chunk size and the list of paths and types (not sizes
// or mtimes: a file that changed is detected per file by the receiver's journal).
protocol::Id128 derive_transfer_id(const std::vector<FileEntry>& files, const FerryUrl& dest, const SendOptions& o) {
  StreamingHash128 h;
  std::string head = o.transfer_id.empty() ? "ferry-transfer-v1" : "ferry-transfer-id";
  h.update(head.data(), head.size() + 1);
  if (!o.transfer_id.empty()) {
    h.update(o.transfer_id.data(), o.transfer_id.size());
  } else {
    std::string fixed = dest.path + '\0' + std::to_string(o.chunk_size) + '\0';
    h.update(fixed.data(), fixed.size());
    for (const auto& f : files) {
      char type = static_cast<char>('0' + static_cast<int>(f.type));
      h.update(&type, 1);
      h.update(f.path.data(), f.path.size() + 1);
    }
  }
  protocol::Id128 id{};
  h.digest().to_bytes(id.data());
  return id;
}

struct AttemptResult {
  TransferReport report;
  bool established = false;
};

// One attempt: a fresh network thread, pool and session over the same file list. The session
// dies here, before the pool and the io_context it was built on: its timers and sockets
// unregister from the context's services as they are destroyed (AddressSanitizer caught a
// heap-use-after-free when the session outlived the io_context).
AttemptResult run_attempt(const std::vector<FileEntry>& files, const FerryUrl& dest,
                                           const SendOptions& options, const protocol::Id128& id,
                                           protocol::ResumeMode resume, const SyncOptions* sync,
                                           const PathFilter& filter) {
  asio::io_context io(1);
  asio::thread_pool pool(worker_threads());
  auto session = std::make_shared<SenderSession>(io, pool, files, dest, options,
                                                 *CompressionSetting::parse(options.compress), id, resume);
  if (sync) session->enable_sync(*sync, filter);
  asio::co_spawn(io, session->run(), [session](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      session->report().status = Status(Error::kInternal, std::string("sender stopped: ") + ex.what());
    }
  });
  io.run();
  pool.join();
  return AttemptResult{session->report(), session->established()};
}

// Folds one attempt into the running total. A file sent by an earlier attempt stays "sent"
// even though the next attempt finds it complete and skips it.
void merge(TransferReport* total, const TransferReport& r, bool first) {
  if (first) {
    *total = r;
    return;
  }
  total->status = r.status;
  if (r.is_sync) {
    uint64_t deleted = total->sync.deleted + r.sync.deleted;
    total->sync = r.sync;  // the latest plan; deletions add up across attempts
    total->sync.deleted = deleted;
  }
  if (r.files.size() != total->files.size()) {  // a sync re-planned: take the new list
    uint64_t wire = total->bytes_on_wire, chunks = total->chunks_sent;
    *total = r;
    total->bytes_on_wire += wire;
    total->chunks_sent += chunks;
    return;
  }
  total->bytes_on_wire += r.bytes_on_wire;
  total->chunks_sent += r.chunks_sent;
  total->chunks_resent += r.chunks_resent;
  total->chunks_resumed += r.chunks_resumed;
  total->bytes_resumed += r.bytes_resumed;
  for (size_t i = 0; i < r.files.size() && i < total->files.size(); ++i) {
    FileReport& t = total->files[i];
    const FileReport& n = r.files[i];
    if (n.action == "pending" || (t.action == "sent" && n.action == "skipped")) continue;
    // Its chunks went out before the connection dropped and the receiver committed it: this
    // run sent it, even though the retry found it complete.
    if (t.action == "sending" && n.action == "skipped") {
      t.action = "sent";
      continue;
    }
    t = n;
  }
  total->files_sent = total->files_skipped = total->files_failed = total->bytes_on_disk = 0;
  for (const auto& f : total->files) {
    if (f.action == "sent") {
      ++total->files_sent;
      total->bytes_on_disk += f.size;
    } else if (f.action == "skipped") {
      ++total->files_skipped;
    } else if (f.action == "failed") {
      ++total->files_failed;
    }
  }
}

}  // namespace

Status validate_send_options(const SendOptions& o) {
  if (o.streams < 1 || o.streams > protocol::kMaxStreams)
    return Status(Error::kUsage, "--streams must be between 1 and " + std::to_string(protocol::kMaxStreams));
  if (o.chunk_size < protocol::kMinChunkSize || o.chunk_size > protocol::kMaxChunkSize)
    return Status(Error::kUsage, "--chunk-size must be between 64K and 64M");
  if (o.memory < 4ull * o.chunk_size)
    return Status(Error::kUsage, "--memory " + format_bytes(o.memory) + " is too small for --chunk-size " +
                                     format_bytes(o.chunk_size) + " (need at least 4 chunks)");
  if (auto c = CompressionSetting::parse(o.compress); !c) return c.status();
  if (auto r = parse_resume(o.resume); !r) return r.status();
  if (auto p = cc::parse_policy(o.policy); !p) return p.status();
  if (o.max_datagram < protocol::kMinUdpDatagram || o.max_datagram > protocol::kMaxUdpDatagram)
    return Status(Error::kUsage, "--mtu/--max-datagram must leave between " + std::to_string(protocol::kMinUdpDatagram) +
                                     " and " + std::to_string(protocol::kMaxUdpDatagram) + " bytes of UDP payload");
  if (o.target_rate && o.min_rate > o.target_rate)
    return Status(Error::kUsage, "--min-rate is above --target-rate");
  return Status::ok();
}

namespace {

TransferReport transfer(const std::vector<std::string>& sources, const FerryUrl& dest, const SendOptions& options,
                        const SyncOptions* sync) {
  TransferReport total;
  if (Status st = validate_send_options(options); !st) {
    total.status = st;
    return total;
  }
  auto filter = build_filter(options);
  if (!filter) {
    total.status = filter.status();
    return total;
  }
  tune_allocator_for_chunks();
  raise_open_file_limit();
  auto files = select_sources(sources, options, *filter);
  if (!files) {
    total.status = files.status();
    return total;
  }
  protocol::ResumeMode resume = *parse_resume(options.resume);
  // Sent even with --resume off, so the receiver can find and discard an earlier run's
  // partial files instead of leaving them behind.
  protocol::Id128 id = derive_transfer_id(*files, dest, options);

  auto start = std::chrono::steady_clock::now();
  bool first = true;
  auto attempt = [&]() -> AttemptOutcome {
    AttemptResult result = run_attempt(*files, dest, options, id, resume, sync, *filter);
    merge(&total, result.report, first);
    first = false;
    return {total.status, result.established};
  };
  // Only a lost connection is retried, and only once the receiver had accepted this
  // transfer: a wrong address or a refusal should fail at once, not after minutes.
  ReconnectPolicy policy;
  policy.retry_timeout = options.retry_timeout;
  policy.give_up_names_duration = true;
  policy.on_reconnect = [&] {
    if (options.on_progress) {
      Progress p;
      p.reconnecting = true;
      p.files_total = files->size();
      options.on_progress(p);
    }
    ++total.reconnects;
  };
  total.status = run_with_reconnects(attempt, policy);
  total.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return total;
}

}  // namespace

TransferReport send_files(const std::vector<std::string>& sources, const FerryUrl& dest, const SendOptions& options) {
  return transfer(sources, dest, options, nullptr);
}

TransferReport sync_tree(const std::string& source_dir, const FerryUrl& dest, const SendOptions& options,
                         const SyncOptions& sync) {
  auto src = sync_source(source_dir, options);
  if (!src) {
    TransferReport r;
    r.status = src.status();
    return r;
  }
  return transfer({*src}, dest, options, &sync);
}

}  // namespace ferry
