#include "session/sender_session.h"

#include <csignal>
#include <cstring>
#include <set>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.h"
#include "transport/udp/udp_keys.h"
#include "crypto/tls_context.h"
#include "io/safe_path.h"
#include "core/units.h"
#include "session/process_limits.h"
#include "transport/connect.h"
#include "transport/udp/datagram_format.h"

namespace ferry {

namespace {
constexpr auto kProgressInterval = std::chrono::milliseconds(500);
// FILE_LIST batches stay well under the control frame limit.
constexpr size_t kFileListBatchBytes = protocol::kMaxControlPayload - 16 * 1024;

}  // namespace

SenderSession::SenderSession(asio::io_context& io, asio::thread_pool& pool, std::vector<FileEntry> files,
                             FerryUrl dest, SendOptions options, CompressionSetting compression,
                             protocol::Id128 transfer_id, protocol::ResumeMode resume)
    : io_(io),
      pool_(pool),
      work_(io.get_executor()),
      files_(std::move(files)),
      dest_(std::move(dest)),
      options_(std::move(options)),
      compression_(compression),
      own_budget_(options_.memory),
      pump_timer_(io),
      governor_(worker_threads()),
      transfer_id_(transfer_id),
      resume_(resume),
      progress_timer_(io),
      corrupt_remaining_(options_.fault_corrupt_chunks) {
  send_files_.resize(files_.size());
  resolved_.assign(files_.size(), 0);
  report_.files_total = files_.size();
  report_.files.reserve(files_.size());
  for (const auto& f : files_) report_.files.push_back({f.path, report_type_name(f.type), f.size, "pending", "", ""});
}

uint64_t SenderSession::chunk_reservation(uint32_t len, bool compress) const {
  // Raw buffer, plus the compressed copy when compression will be tried.
  return compress ? 2ull * len : len;
}

bool SenderSession::decide_compression() {
  switch (compression_.mode) {
    case CompressionSetting::Mode::kNone: return false;
    case CompressionSetting::Mode::kLevel: return true;
    case CompressionSetting::Mode::kAuto: break;
  }
  return governor_.should_compress();
}

asio::awaitable<void> SenderSession::run() {
  auto self = shared_from_this();
  start_ = std::chrono::steady_clock::now();
  Status st = co_await open_session();
  co_await serve(st);
}

asio::awaitable<void> SenderSession::run_on(std::shared_ptr<FrameSocket> control,
                                            std::vector<std::shared_ptr<FrameSocket>> data) {
  auto self = shared_from_this();
  start_ = std::chrono::steady_clock::now();
  report_.encrypted = control->encrypted();
  control_ = std::move(control);
  data_streams_ = std::move(data);
  auto weak = weak_from_this();
  auto on_error = [weak](const Status& s) {
    if (auto self = weak.lock()) self->fail(s);
  };
  control_->on_write_error(on_error);
  for (auto& d : data_streams_) d->on_write_error(on_error);
  transport_ = std::make_shared<TcpChunkSender>(data_streams_);
  established_ = true;
  co_await serve(Status::ok());
}

asio::awaitable<void> SenderSession::serve(Status st) {
  auto self = shared_from_this();
  if (st && sync_) st = co_await read_destination_listing();
  if (st && sync_) {
    plan_sync();
    if (!type_conflicts_.empty() && !sync_->dry_run) st = co_await delete_now(std::move(type_conflicts_));
  }
  if (!st) {
    fail(st);
  } else {
    send_file_list();
    report_progress();
    maybe_finish();
    while (!done_) {
      auto frame = co_await control_->read_frame();
      if (done_) break;
      if (!frame) {
        fail(frame.status());
        break;
      }
      if (Status s = handle_control_frame(*frame); !s) {
        fail(s);
        break;
      }
    }
  }
  report_.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (transport_) report_.bytes_on_wire = transport_->wire_bytes();
  if (udp_) report_.udp = udp_->report();
  fail(Status::ok());  // tears down whatever is still open; keeps the first status
}

asio::awaitable<Status> SenderSession::open_session() {
  // TLS unless the user asked for plaintext; the pin from --fingerprint, else the URL's fp=.
  std::shared_ptr<TlsContext> tls;
  report_.encrypted = !options_.tls.plaintext;
  if (!options_.tls.plaintext) {
    TlsClientSettings ts = options_.tls;
    if (ts.fingerprint.empty()) ts.fingerprint = dest_.fingerprint;
    auto ctx = TlsContext::client(ts);
    if (!ctx) co_return ctx.status();
    tls = *ctx;
  }
  const std::string& token = options_.token.empty() ? dest_.token : options_.token;
  auto control = co_await connect_frame_socket(dest_.host, dest_.port, options_.connect_timeout, tls);
  if (!control) co_return control.status();
  control_ = *control;
  auto weak = weak_from_this();
  control_->on_write_error([weak](const Status& s) {
    if (auto self = weak.lock()) self->fail(s);
  });
  auto welcome = co_await client_handshake(*control_, token);
  if (!welcome) co_return welcome.status();
  if (options_.chunk_size > welcome->max_chunk_size)
    co_return Status(Error::kUsage, "chunk size " + format_bytes(options_.chunk_size) + " is larger than " +
                                        control_->peer() + " accepts (" + format_bytes(welcome->max_chunk_size) + ")");
  const bool udp = options_.transport == Transport::kUdp;
  uint16_t streams = udp ? 0 : std::min<uint16_t>(options_.streams, welcome->max_streams);

  protocol::OpenSession open{options_.chunk_size, streams, static_cast<protocol::OverwriteMode>(options_.overwrite),
                             resume_, transfer_id_, dest_.path};
  control_->send(protocol::encode(open));
  auto frame = co_await control_->read_frame();
  if (!frame) co_return frame.status();
  if (frame->type != protocol::FrameType::kSessionOpened)
    co_return unexpected_frame(*frame, protocol::FrameType::kSessionOpened, control_->peer());
  auto opened = protocol::decode_session_opened(frame->payload);
  if (!opened) co_return opened.status();
  established_ = true;
  if (udp) co_return co_await open_udp(opened->session_id);

  // Set up every data stream concurrently; the first failure (in stream order) wins.
  const JoinOne join_one = [this, tls, token, sid = opened->session_id](uint16_t i) {
    return join_stream(tls, token, sid, i);
  };
  auto joined = co_await join_streams(streams, join_one);
  if (!joined) co_return joined.status();
  data_streams_ = std::move(*joined);
  transport_ = std::make_shared<TcpChunkSender>(data_streams_);
  log::debug("session open with " + control_->peer() + ", " + std::to_string(streams) + " data streams");
  co_return Status::ok();
}

asio::awaitable<Status> SenderSession::open_udp(const protocol::Id128& session_id) {
  crypto::KeyExchange kx;
  if (!kx.ok()) co_return Status(Error::kInternal, "X25519 key generation failed");
  auto policy = cc::parse_policy(options_.policy);
  if (!policy) co_return policy.status();
  protocol::UdpOpen req;
  auto pub = kx.public_key();
  std::copy(pub.begin(), pub.end(), req.public_key.begin());
  req.max_datagram = options_.max_datagram;
  req.policy = static_cast<uint8_t>(*policy);
  req.target_rate = options_.target_rate;
  req.min_rate = options_.min_rate;
  control_->send(protocol::encode(req));
  auto frame = co_await control_->read_frame();
  if (!frame) co_return frame.status();
  if (frame->type != protocol::FrameType::kUdpAccept)
    co_return unexpected_frame(*frame, protocol::FrameType::kUdpAccept, control_->peer());
  auto accept = protocol::decode_udp_accept(frame->payload);
  if (!accept) co_return accept.status();
  auto keys = udp::udp_session_keys(*control_, kx, accept->public_key,
                               udp::key_context(session_id, kx.public_key(), accept->public_key), /*is_sender=*/true);
  if (!keys) co_return keys.status();

  boost::system::error_code ec;
  auto local = control_->tcp_socket().local_endpoint(ec);
  auto remote = control_->tcp_socket().remote_endpoint(ec);
  if (ec) co_return Status(Error::kNetwork, control_->peer() + ": " + ec.message());
  udp::udp_endpoint peer(remote.address(), accept->port);
  auto sock = std::make_unique<udp::DatagramSocket>(io_);
  if (Status st = sock->open(udp::udp_endpoint(local.address(), 0), "UDP data path to " + control_->peer()); !st)
    co_return st;
  if (Status st = sock->connect(peer); !st) co_return st;

  udp::UdpSenderConfig cfg;
  cfg.rate.target_rate = options_.target_rate;
  if (accept->max_rate && (cfg.rate.target_rate == 0 || cfg.rate.target_rate > accept->max_rate)) {
    cfg.rate.target_rate = accept->max_rate;  // the receiver's cap wins
    log::info(control_->peer() + " caps this session at " + format_bytes(accept->max_rate) + "/s");
  }
  cfg.rate.min_rate = std::min(options_.min_rate, cfg.rate.target_rate ? cfg.rate.target_rate : UINT64_MAX);
  cfg.rate.policy = *policy;
  cfg.max_datagram = std::min(options_.max_datagram, accept->max_datagram);
  cfg.rate.max_datagram = cfg.max_datagram;
  cfg.rate.max_ack_delay_us = udp::kMaxAckDelayUs;
  cfg.faults = options_.udp_faults;
  cfg.peer = "receiver " + remote.address().to_string() + ":" + std::to_string(accept->port) + " (UDP)";
  auto weak = weak_from_this();
  udp_ = std::make_shared<udp::UdpChunkSender>(io_, std::move(sock), *keys, cfg, [weak](const Status& st) {
    if (auto self = weak.lock()) self->fail(st);
  });
  udp_->start();
  transport_ = udp_;
  log::debug("session open with " + control_->peer() + ", data over UDP to port " + std::to_string(accept->port) +
             ", policy " + options_.policy);
  co_return Status::ok();
}

asio::awaitable<Result<std::shared_ptr<FrameSocket>>> SenderSession::join_stream(std::shared_ptr<TlsContext> tls,
                                                                               std::string token,
                                                                               protocol::Id128 session_id,
                                                                               uint16_t index) {
  auto conn = co_await connect_frame_socket(dest_.host, dest_.port, options_.connect_timeout, tls);
  if (!conn) co_return conn.status();
  auto sock = *conn;
  sock->on_write_error([weak = weak_from_this()](const Status& s) {
    if (auto self = weak.lock()) self->fail(s);
  });
  auto w = co_await client_handshake(*sock, token);
  if (!w) {
    sock->close();
    co_return w.status();
  }
  sock->send(protocol::encode(protocol::JoinStream{session_id, index}));
  auto joined = co_await sock->read_frame();
  if (!joined) {
    sock->close();
    co_return joined.status();
  }
  if (joined->type != protocol::FrameType::kStreamJoined) {
    sock->close();
    co_return unexpected_frame(*joined, protocol::FrameType::kStreamJoined, sock->peer());
  }
  co_return sock;
}

void SenderSession::send_file_list() {
  protocol::FileList batch;
  size_t batch_bytes = 0;
  for (uint32_t id = 0; id < files_.size(); ++id) {
    protocol::FileListEntry e{id, files_[id]};
    e.entry.source_path.clear();
    size_t sz = protocol::encoded_size(e);
    if (batch_bytes + sz > kFileListBatchBytes && !batch.entries.empty()) {
      control_->send(protocol::encode(batch));
      batch.entries.clear();
      batch_bytes = 0;
    }
    batch_bytes += sz;
    batch.entries.push_back(std::move(e));
  }
  if (!batch.entries.empty()) control_->send(protocol::encode(batch));
  control_->send(protocol::encode(protocol::FileListEnd{static_cast<uint32_t>(files_.size())}));
}

Status SenderSession::handle_control_frame(const Frame& frame) {
  using protocol::FrameType;
  switch (frame.type) {
    case FrameType::kFilePlan: {
      auto plan = protocol::decode_file_plan(frame.payload);
      return plan ? on_plan(*plan) : plan.status();
    }
    case FrameType::kHaveChunks: {
      auto have = protocol::decode_have_chunks(frame.payload);
      return have ? on_have(std::move(*have)) : have.status();
    }
    case FrameType::kChunkNack: {
      auto nack = protocol::decode_chunk_nack(frame.payload);
      return nack ? on_nack(*nack) : nack.status();
    }
    case FrameType::kFileResult: {
      auto result = protocol::decode_file_result(frame.payload);
      return result ? on_result(*result) : result.status();
    }
    case FrameType::kSummary: {
      auto summary = protocol::decode_summary(frame.payload);
      if (!summary) return summary.status();
      if (!finish_sent_) return Status(Error::kProtocol, control_->peer() + " sent SUMMARY before FINISH");
      Status final_status = Status::ok();
      if (report_.files_failed > 0)
        final_status = Status(Error::kPartial, std::to_string(report_.files_failed) + " of " +
                                                   std::to_string(files_.size()) + " entries failed");
      fail(final_status);  // done: records the status and tears down
      return Status::ok();
    }
    case FrameType::kDeleteResult: {
      auto result = protocol::decode_delete_result(frame.payload);
      return result ? on_delete_result(*result) : result.status();
    }
    case FrameType::kRateLimit: {
      // The receiver moved this session's share of its total rate cap. Over TCP its reads
      // already pace us (TCP flow control); over UDP our controller must be told.
      auto limit = protocol::decode_rate_limit(frame.payload);
      if (!limit) return limit.status();
      if (udp_) {
        udp_->set_rate_cap(limit->max_rate);
        log::info(limit->max_rate ? control_->peer() + " now caps this session at " + format_bytes(limit->max_rate) + "/s"
                                  : control_->peer() + " lifted its cap on this session");
      }
      return Status::ok();
    }
    case FrameType::kError:
      return status_from_error_frame(frame, control_->peer());
    default:
      return Status(Error::kProtocol, std::string("unexpected ") + protocol::to_string(frame.type) + " from " +
                                          control_->peer());
  }
}

Status SenderSession::on_plan(const protocol::FilePlan& plan) {
  for (const auto& p : plan.entries) {
    if (p.file_id >= files_.size() || resolved_[p.file_id] != 0)
      return Status(Error::kProtocol, control_->peer() + " planned an unknown or already planned file id " +
                                          std::to_string(p.file_id));
    const FileEntry& entry = files_[p.file_id];
    FileReport& rep = report_.files[p.file_id];
    ++planned_entries_;
    switch (p.action) {
      case protocol::PlanAction::kSkip:
        resolved_[p.file_id] = 2;
        ++resolved_count_;
        if (entry.type == FileType::kRegular) ++report_.files_skipped;
        rep.action = entry.type == FileType::kRegular ? "skipped" : "ok";
        break;
      case protocol::PlanAction::kReject:
        resolved_[p.file_id] = 2;
        ++resolved_count_;
        ++report_.files_failed;
        rep.action = "failed";
        rep.error = p.reason;
        log::error("'" + entry.path + "': refused by " + control_->peer() + ": " + p.reason);
        break;
      case protocol::PlanAction::kSend: {
        if (entry.type != FileType::kRegular)
          return Status(Error::kProtocol, control_->peer() + " asked for the contents of non-file '" + entry.path + "'");
        resolved_[p.file_id] = 1;
        auto f = std::make_unique<SendFile>();
        uint32_t count = chunk_count_for(entry.size, options_.chunk_size);
        f->attempts.assign(count, 0);
        if (auto it = have_.find(p.file_id); it != have_.end()) {
          f->claimed.assign(count, 0);
          f->claim_hash.assign(count, 0);
          for (const auto& [index, hash] : it->second) {
            if (index >= count)
              return Status(Error::kProtocol, control_->peer() + " claims chunk " + std::to_string(index) + " of '" +
                                                  entry.path + "', which has only " + std::to_string(count));
            f->claimed[index] = 1;
            f->claim_hash[index] = hash;
          }
          have_.erase(it);
        }
        bytes_total_ += entry.size;
        send_files_[p.file_id] = std::move(f);
        if (count == 0) {
          // Nothing to read: the whole-file hash of an empty file is known now.
          send_files_[p.file_id]->finished = true;
          Hash128 h = xxh3_128(nullptr, 0);
          rep.xxh3_128 = h.hex();
          control_->send(protocol::encode(protocol::FileDone{p.file_id, 0, 0, h}));
        } else {
          scheduler_.add_file(p.file_id, count);
        }
        break;
      }
    }
  }
  pump();
  maybe_finish();
  return Status::ok();
}

Status SenderSession::on_have(protocol::HaveChunks have) {
  if (have.file_id >= files_.size() || resolved_[have.file_id] != 0 || files_[have.file_id].type != FileType::kRegular)
    return Status(Error::kProtocol, control_->peer() + " sent HAVE_CHUNKS for a file it cannot hold");
  auto& list = have_[have.file_id];
  list.insert(list.end(), have.chunks.begin(), have.chunks.end());
  return Status::ok();
}

void SenderSession::chunk_skipped(uint32_t len, uint64_t reserved) {
  budget_->release(reserved);
  ++report_.chunks_resumed;
  report_.bytes_resumed += len;
  pump();
}

Status SenderSession::on_nack(const protocol::ChunkNack& nack) {
  if (nack.file_id >= files_.size() || !send_files_[nack.file_id] ||
      nack.chunk_index >= send_files_[nack.file_id]->attempts.size())
    return Status(Error::kProtocol, control_->peer() + " sent CHUNK_NACK for an unknown chunk");
  SendFile& f = *send_files_[nack.file_id];
  if (f.aborted || resolved_[nack.file_id] == 2) return Status::ok();
  const std::string& path = files_[nack.file_id].path;
  if (++f.attempts[nack.chunk_index] >= protocol::kMaxChunkAttempts) {
    abort_file(nack.file_id, Status(Error::kIntegrity, "'" + path + "': chunk " + std::to_string(nack.chunk_index) +
                                                           " failed its checksum " +
                                                           std::to_string(protocol::kMaxChunkAttempts) + " times"));
    return Status::ok();
  }
  log::info("'" + path + "': chunk " + std::to_string(nack.chunk_index) + " arrived damaged at " + control_->peer() +
            ", sending it again");
  ++report_.chunks_resent;
  scheduler_.add_resend(nack.file_id, nack.chunk_index);
  pump();
  return Status::ok();
}

Status SenderSession::on_result(const protocol::FileResult& result) {
  if (result.file_id >= files_.size() || resolved_[result.file_id] != 1)
    return Status(Error::kProtocol, control_->peer() + " sent FILE_RESULT for a file it was not receiving");
  const FileEntry& entry = files_[result.file_id];
  FileReport& rep = report_.files[result.file_id];
  SendFile& f = *send_files_[result.file_id];
  resolved_[result.file_id] = 2;
  ++resolved_count_;
  bytes_acked_ += entry.size;
  if (!f.attempts.empty()) scheduler_.file_closed();
  if (result.status == 0) {
    ++report_.files_sent;
    report_.bytes_on_disk += entry.size;
    rep.action = "sent";
    rep.xxh3_128 = result.hash.hex();
  } else {
    ++report_.files_failed;
    rep.action = "failed";
    rep.error = result.message;
    log::error("'" + entry.path + "': " + result.message);
  }
  {
    // Done with this file: close its descriptor and drop its hash state now, not at the end.
    std::lock_guard lock(f.mu);
    f.source.reset();
    f.hasher.reset();
  }
  pump();
  maybe_finish();
  return Status::ok();
}

void SenderSession::maybe_finish() {
  if (done_ || finish_sent_ || planned_entries_ != files_.size() || resolved_count_ != files_.size()) return;
  // Sync deletes only after every file landed, so a failed transfer never leaves DEST with
  // less than it had.
  if (sync_ && !sync_->dry_run && !deletions_sent_ && !deletions_.empty()) {
    if (report_.files_failed == 0) {
      send_deletions();
      return;
    }
    // Like rsync after an I/O error: a run that could not mirror everything deletes nothing.
    log::warning("not deleting " + std::to_string(deletions_.size()) + " extraneous entries: " +
                 std::to_string(report_.files_failed) + " entries failed to transfer");
    deletions_sent_ = true;
  }
  if (delete_results_pending_ > 0) return;
  finish_sent_ = true;
  control_->send(protocol::encode_finish());
}

void SenderSession::pump() {
  if (done_ || !transport_) return;
  ChunkTask task;
  while (scheduler_.peek(&task)) {
    SendFile& f = *send_files_[task.file_id];
    if (f.aborted) {
      scheduler_.pop();
      continue;
    }
    uint32_t len = chunk_length(files_[task.file_id].size, options_.chunk_size, task.chunk_index);
    auto now = std::chrono::steady_clock::now();
    if (rate_limit_ && pace_next_ > now) {
      pump_later(pace_next_ - now);
      break;
    }
    task.compress = decide_compression();
    uint64_t need = chunk_reservation(len, task.compress);
    if (!budget_->try_acquire(need)) {
      // A shared budget may be full of other sessions' buffers: nothing of ours would call
      // pump() again, so look again shortly.
      if (budget_ != &own_budget_) pump_later(std::chrono::milliseconds(5));
      break;
    }
    if (rate_limit_) {
      // Token bucket with no burst beyond one chunk: the server-side cap wins.
      auto cost = std::chrono::nanoseconds(static_cast<int64_t>(len * 1e9 / static_cast<double>(rate_limit_)));
      pace_next_ = std::max(pace_next_, now) + std::chrono::duration_cast<std::chrono::steady_clock::duration>(cost);
    }
    scheduler_.pop();
    asio::post(pool_, [self = shared_from_this(), task, need] { self->produce(task, need); });
  }
}

void SenderSession::pump_later(std::chrono::steady_clock::duration delay) {
  if (pump_timer_armed_ || done_) return;
  pump_timer_armed_ = true;
  pump_timer_.expires_after(delay);
  pump_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (!self) return;
    self->pump_timer_armed_ = false;
    if (!ec) self->pump();
  });
}

Status SenderSession::open_source(uint32_t file_id) {
  SendFile& f = *send_files_[file_id];
  std::lock_guard lock(f.mu);
  if (f.opened) return f.open_status;
  f.opened = true;
  const FileEntry& e = files_[file_id];
  auto src = opener_ ? opener_(e) : SourceFile::open(e.source_path, e.size);
  if (!src) {
    f.open_status = src.status();
    return f.open_status;
  }
  f.source = *src;
  auto source = f.source;
  f.hasher = std::make_shared<OrderedFileHasher>(
      e.size, options_.chunk_size,
      [source](uint64_t off, uint8_t* dst, size_t len) { return source->read_at(off, dst, len); });
  return Status::ok();
}

void SenderSession::produce(ChunkTask task, uint64_t reserved) {
  auto fail_chunk = [&](const Status& st) {
    asio::post(io_, [self = shared_from_this(), task, reserved, st] {
      self->budget_->release(reserved);
      self->abort_file(task.file_id, st);
      self->pump();
    });
  };
  if (done_) {
    asio::post(io_, [self = shared_from_this(), reserved] { self->budget_->release(reserved); });
    return;
  }
  SendFile& f = *send_files_[task.file_id];
  if (Status st = open_source(task.file_id); !st) return fail_chunk(st);
  std::shared_ptr<SourceFile> source;
  std::shared_ptr<OrderedFileHasher> hasher;
  {
    std::lock_guard lock(f.mu);
    source = f.source;
    hasher = f.hasher;
  }
  if (!source) return fail_chunk(Status(Error::kInternal, "source closed while chunks were pending"));

  const FileEntry& e = files_[task.file_id];
  uint32_t len = chunk_length(e.size, options_.chunk_size, task.chunk_index);
  uint64_t offset = static_cast<uint64_t>(task.chunk_index) * options_.chunk_size;
  auto raw = std::make_shared<Buffer>(make_buffer(len));
  if (Status st = source->read_at(offset, raw->get(), len); !st) return fail_chunk(st);

  protocol::ChunkHeader header{task.file_id, task.chunk_index, len, static_cast<uint8_t>(Codec::kNone), 0};
  bool skip = false;
  bool file_hashed = false;
  if (task.resend) {
    header.xxh3_64 = xxh3_64(raw->get(), len);
  } else {
    // A chunk the receiver kept from an interrupted run travels only if our bytes differ
    // (the whole-file hash still covers it at the end).
    bool claimed = !f.claimed.empty() && f.claimed[task.chunk_index];
    if (claimed) {
      header.xxh3_64 = xxh3_64(raw->get(), len);
      skip = f.claim_hash[task.chunk_index] == header.xxh3_64;
    }
    if (!skip) ++f.sent_distinct;  // before the hasher can report completion
    std::shared_ptr<const uint8_t> bytes(raw, raw->get());  // shares ownership of the buffer
    // Unclaimed chunks get their own hash and the file hash in one pass.
    Status st = claimed ? hasher->add_chunk_shared(task.chunk_index, std::move(bytes), len)
                        : hasher->add_chunk_hashing64(task.chunk_index, std::move(bytes), len, &header.xxh3_64);
    if (!st) return fail_chunk(st);
    file_hashed = hasher->complete();
  }
  if (skip) {
    asio::post(io_, [self = shared_from_this(), task, len, reserved, file_hashed] {
      self->chunk_skipped(len, reserved);
      if (file_hashed) self->file_hashed(task.file_id);
    });
    return;
  }

  std::shared_ptr<Buffer> packed;
  uint32_t payload_len = len;
  if (task.compress) {
    packed = std::make_shared<Buffer>(make_buffer(len));
    auto t0 = std::chrono::steady_clock::now();
    CompressedChunk out = ChunkCodec::for_this_thread().compress(compression_, raw->get(), len, packed->get(), len);
    governor_.record_compression(len, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    if (out.codec == Codec::kNone) {
      packed.reset();
    } else {
      header.codec = static_cast<uint8_t>(out.codec);
      payload_len = static_cast<uint32_t>(out.size);
      raw.reset();  // only the compressed copy travels
    }
  }
  // TEST-ONLY FAULT (SendOptions::fault_corrupt_chunks): damage the payload after hashing.
  int left = corrupt_remaining_.load();
  while (left > 0 && !corrupt_remaining_.compare_exchange_weak(left, left - 1)) {
  }
  if (left > 0) {
    // Damage a copy: the hasher may still hold the original buffer.
    auto damaged = std::make_shared<Buffer>(make_buffer(payload_len));
    std::memcpy(damaged->get(), packed ? packed->get() : raw->get(), payload_len);
    damaged->get()[payload_len / 2] ^= 0x5A;
    packed = std::move(damaged);  // same codec, damaged bytes
  }
  asio::post(io_, [self = shared_from_this(), task, header, raw, packed, payload_len, reserved, file_hashed] {
    self->chunk_ready(task, header, raw, packed, payload_len, reserved);
    if (file_hashed) self->file_hashed(task.file_id);
  });
}

void SenderSession::chunk_ready(ChunkTask task, protocol::ChunkHeader header, std::shared_ptr<Buffer> raw,
                                std::shared_ptr<Buffer> packed, uint32_t payload_len, uint64_t reserved) {
  if (done_ || send_files_[task.file_id]->aborted) {
    budget_->release(reserved);
    pump();
    return;
  }
  const uint8_t* payload = packed ? packed->get() : raw->get();
  FileReport& rep = report_.files[task.file_id];
  if (rep.action == "pending") rep.action = "sending";  // its data is on the way
  transport_->send({header, payload, payload_len, [self = shared_from_this(), raw, packed, reserved, payload_len](bool ok) {
                      self->budget_->release(reserved);
                      if (!ok) return;
                      ++self->report_.chunks_sent;  // handed to the kernel
                      self->payload_bytes_sent_ += payload_len;
                      self->check_test_faults();
                      // Backlog: at least a chunk per stream still waits behind the sockets.
                      uint64_t mark = uint64_t{self->options_.chunk_size} *
                                      std::max<size_t>(1, self->data_streams_.size());
                      self->governor_.record_delivery(payload_len, self->transport_->queued_bytes() >= mark,
                                                      std::chrono::steady_clock::now());
                      self->pump();
                    }});
}

void SenderSession::check_test_faults() {
  // TEST-ONLY FAULTS (SendOptions): a kill -9, or a link that dies, after N chunks.
  uint64_t n = report_.chunks_sent;
  if (options_.fault_sigkill_after_chunks && n >= options_.fault_sigkill_after_chunks) ::raise(SIGKILL);
  if (options_.fault_drop_link_after_chunks && n == options_.fault_drop_link_after_chunks) {
    asio::post(io_, [self = shared_from_this()] {
      self->fail(Status(Error::kNetwork, "test fault: link to " + self->control_->peer() + " dropped"));
    });
  }
}

void SenderSession::file_hashed(uint32_t file_id) {
  SendFile& f = *send_files_[file_id];
  if (f.finished.exchange(true) || f.aborted || done_) return;
  std::shared_ptr<OrderedFileHasher> hasher;
  {
    std::lock_guard lock(f.mu);
    hasher = f.hasher;
  }
  if (!hasher) return;
  Hash128 digest = hasher->digest();
  report_.files[file_id].xxh3_128 = digest.hex();
  control_->send(protocol::encode(protocol::FileDone{file_id, hasher->chunk_count(), f.sent_distinct.load(), digest}));
}

void SenderSession::abort_file(uint32_t file_id, const Status& why) {
  SendFile& f = *send_files_[file_id];
  if (f.aborted || done_ || resolved_[file_id] == 2) return;
  f.aborted = true;
  f.finished = true;
  log::error(why.message());
  control_->send(protocol::encode(protocol::FileAbort{file_id, static_cast<uint16_t>(why.code()), why.message()}));
}

void SenderSession::fail(const Status& st) {
  if (done_) return;
  done_ = true;
  report_.status = st;
  if (transport_) report_.bytes_on_wire = transport_->wire_bytes();
  if (control_) control_->close();
  if (transport_) transport_->close();
  for (auto& s : data_streams_) s->close();
  progress_timer_.cancel();
  pump_timer_.cancel();
  work_.reset();
}

void SenderSession::report_progress() {
  if (done_ || !options_.on_progress) return;
  Progress p;
  p.bytes_total = bytes_total_;
  p.bytes_done = bytes_acked_;
  p.files_total = files_.size();
  p.files_done = resolved_count_;
  p.wire_bytes = transport_ ? transport_->wire_bytes() : 0;
  if (udp_) {
    UdpReport u = udp_->report();
    p.udp = true;
    p.rtt_ms = u.srtt_ms;
    p.loss = u.packets_sent ? static_cast<double>(u.packets_lost) / static_cast<double>(u.packets_sent) : 0;
    p.retransmitted_bytes = u.retransmitted_bytes;
  }
  p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  options_.on_progress(p);
  progress_timer_.expires_after(kProgressInterval);
  progress_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->report_progress();
  });
}

// ---------------------------------------------------------------------------------------
// Sync

void SenderSession::enable_sync(const SyncOptions& sync, PathFilter filter) {
  sync_ = sync;
  sync_filter_ = std::move(filter);
  options_.overwrite = Overwrite::kAlways;  // the sender decided what to send from the listing
  report_.is_sync = true;
  report_.sync.dry_run = sync.dry_run;
}

asio::awaitable<Status> SenderSession::read_destination_listing() {
  control_->send(protocol::encode(protocol::ListRequest{sync_->checksum}));
  for (;;) {
    auto frame = co_await control_->read_frame();
    if (!frame) co_return frame.status();
    if (frame->type == protocol::FrameType::kListEntries) {
      auto list = protocol::decode_list_entries(frame->payload);
      if (!list) co_return list.status();
      for (auto& e : list->entries) {
        if (Status st = validate_relative_path(e.entry.path); !st)
          co_return Status(Error::kProtocol, control_->peer() + " listed an invalid path: " + st.message());
        std::string path = e.entry.path;
        dest_listing_[path] = std::move(e);
      }
    } else if (frame->type == protocol::FrameType::kListEnd) {
      auto end = protocol::decode_list_end(frame->payload);
      if (!end) co_return end.status();
      listing_complete_ = end->status.is_ok() && end->total == dest_listing_.size();
      if (!listing_complete_)
        log::warning("the listing of the destination is incomplete (" + end->status.message() +
                     "); nothing will be deleted");
      co_return Status::ok();
    } else {
      co_return unexpected_frame(*frame, protocol::FrameType::kListEnd, control_->peer());
    }
  }
}

void SenderSession::plan_sync() {
  SyncCounts& c = report_.sync;
  const bool dry = sync_->dry_run;
  std::vector<FileEntry> to_send;
  std::vector<FileReport> others;
  std::set<std::string> in_source;
  for (auto& e : files_) {
    in_source.insert(e.path);
    auto it = dest_listing_.find(e.path);
    const FileEntry* d = it == dest_listing_.end() ? nullptr : &it->second.entry;
    bool conflict = d && d->type != e.type && (d->type == FileType::kDirectory || e.type == FileType::kDirectory);
    if (conflict) type_conflicts_.push_back(e.path);
    bool same = false;
    if (d && !conflict && d->type == e.type) {
      switch (e.type) {
        case FileType::kDirectory: same = d->mode == e.mode && d->mtime_ns == e.mtime_ns; break;
        case FileType::kSymlink: same = d->link_target == e.link_target; break;
        case FileType::kRegular:
          if (d->size != e.size) break;
          if (!sync_->checksum) {
            same = d->mtime_ns == e.mtime_ns;
          } else if (it->second.has_hash) {
            auto h = hash_source_file(e.source_path, e.size);
            same = h && *h == it->second.hash;
          }
          break;
      }
    }
    const char* action = same ? "skip" : d ? "update" : "send";
    if (same && e.type == FileType::kRegular && !dry) ++report_.files_skipped;
    if (same) ++c.skip;
    else if (d) ++c.update, c.update_bytes += e.size;
    else ++c.send, c.send_bytes += e.size;
    // Directories always travel (mkdir is idempotent; their mode and mtime are set last).
    if (!dry && (!same || e.type == FileType::kDirectory)) {
      to_send.push_back(e);
    } else if (dry || e.type != FileType::kDirectory) {
      others.push_back({e.path, report_type_name(e.type), e.size, dry ? action : "skipped", "", ""});
    }
  }
  if (sync_->delete_extraneous && listing_complete_) {
    // What a type conflict removes first takes its contents with it.
    std::set<std::string> removed_dirs(type_conflicts_.begin(), type_conflicts_.end());
    auto under_removed_or_protected = [&](const std::string& path) {
      for (size_t pos = path.find('/'); pos != std::string::npos; pos = path.find('/', pos + 1)) {
        std::string anc = path.substr(0, pos);
        if (removed_dirs.count(anc) || sync_filter_.excluded(anc, true)) return true;
      }
      return false;
    };
    for (const auto& [path, le] : dest_listing_) {  // std::map: parents before children
      bool is_dir = le.entry.type == FileType::kDirectory;
      if (in_source.count(path) || under_removed_or_protected(path) || sync_filter_.excluded(path, is_dir)) continue;
      deletions_.push_back(path);
      if (is_dir) removed_dirs.insert(path);
      ++c.remove;
      others.push_back({path, report_type_name(le.entry.type), le.entry.size, dry ? "delete" : "pending-delete", "", ""});
    }
  }
  files_ = std::move(to_send);
  send_files_.clear();
  send_files_.resize(files_.size());
  resolved_.assign(files_.size(), 0);
  report_.files.clear();
  report_.files_total = files_.size();
  for (const auto& f : files_) report_.files.push_back({f.path, report_type_name(f.type), f.size, "pending", "", ""});
  for (auto& o : others) {
    if (o.action == "pending-delete") delete_report_index_[o.path] = report_.files.size();
    report_.files.push_back(std::move(o));
  }
}

void SenderSession::send_deletions() {
  deletions_sent_ = true;
  protocol::DeleteRequest batch;
  size_t bytes = 0;
  for (const auto& p : deletions_) {
    if (bytes + p.size() + 2 > protocol::kMaxControlPayload - 16 * 1024 && !batch.paths.empty()) {
      control_->send(protocol::encode(batch));
      ++delete_results_pending_;
      batch.paths.clear();
      bytes = 0;
    }
    bytes += p.size() + 2;
    batch.paths.push_back(p);
  }
  if (!batch.paths.empty()) {
    control_->send(protocol::encode(batch));
    ++delete_results_pending_;
  }
}

asio::awaitable<Status> SenderSession::delete_now(std::vector<std::string> paths) {
  std::swap(deletions_, paths);
  send_deletions();
  std::swap(deletions_, paths);
  deletions_sent_ = false;
  while (delete_results_pending_ > 0) {
    auto frame = co_await control_->read_frame();
    if (!frame) co_return frame.status();
    if (frame->type != protocol::FrameType::kDeleteResult)
      co_return unexpected_frame(*frame, protocol::FrameType::kDeleteResult, control_->peer());
    auto result = protocol::decode_delete_result(frame->payload);
    if (!result) co_return result.status();
    if (Status st = on_delete_result(*result); !st) co_return st;
  }
  co_return Status::ok();
}

Status SenderSession::on_delete_result(const protocol::DeleteResult& result) {
  if (delete_results_pending_ == 0) return Status(Error::kProtocol, control_->peer() + " sent an unexpected DELETE_RESULT");
  --delete_results_pending_;
  for (const auto& o : result.outcomes) {
    auto at = delete_report_index_.find(o.path);
    FileReport* rep = at == delete_report_index_.end() ? nullptr : &report_.files[at->second];
    if (o.status == 0) {
      ++report_.sync.deleted;
      if (rep) rep->action = "deleted";
    } else {
      ++report_.files_failed;
      log::error("could not delete '" + o.path + "' on " + control_->peer() + ": " + o.message);
      if (rep) {
        rep->action = "failed";
        rep->error = o.message;
      }
    }
  }
  maybe_finish();
  return Status::ok();
}

}  // namespace ferry
