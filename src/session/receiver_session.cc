#include "session/receiver_session.h"

#include <sys/stat.h>

#include <csignal>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <openssl/rand.h>
#include <boost/asio/use_awaitable.hpp>
#include <cstring>

#include "codec/chunk_codec.h"
#include "core/log.h"
#include "core/units.h"
#include "transport/udp/udp_keys.h"
#include "io/batch_sync.h"
#include "io/tree_walk.h"
#include "transport/connect.h"

namespace ferry {

std::string hex_id(const protocol::Id128& id) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (uint8_t b : id) {
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

ReceiverSession::ReceiverSession(asio::io_context& io, asio::thread_pool& pool, const RootDir& root,
                                 MemoryBudget& budget, protocol::OpenSession open, protocol::Id128 id,
                                 std::string peer, std::unique_ptr<ReceiveJournal> journal,
                                 uint64_t fault_sigkill_after_chunks)
    : io_(io),
      pool_(pool),
      root_(root),
      budget_(budget),
      open_(std::move(open)),
      id_(id),
      peer_(std::move(peer)),
      tag_(hex_id(journal ? open_.transfer_id : id).substr(0, 16)),
      journal_(std::move(journal)),
      fault_sigkill_after_chunks_(fault_sigkill_after_chunks) {}

ReceiverSession::~ReceiverSession() {
  // Every task has finished (they hold the session). Partial files of an unfinished transfer
  // stay for the next run when a journal vouches for them; without one they are deleted.
  if (!journal_) return;
  for (auto& f : files_) {
    if (f && !f->resolved && f->staged && f->slot != RecvFile::kNoSlot) f->staged->keep();
  }
}

SessionStats ReceiverSession::stats() const {
  std::lock_guard lock(mu_);
  SessionStats s = stats_;
  s.chunk_bytes_written = chunk_bytes_written_.load();
  return s;
}

std::vector<FileReport> ReceiverSession::file_reports() const {
  std::lock_guard lock(mu_);
  return reports_;
}

void ReceiverSession::send_control(std::vector<uint8_t> frame) {
  asio::post(io_, [self = shared_from_this(), frame = std::move(frame)]() mutable {
    if (self->control_ && !self->aborted_) self->control_->send(std::move(frame));
  });
}

void ReceiverSession::abort(const Status& st) {
  if (aborted_.exchange(true)) return;
  outcome_ = st;
  log::error("session from " + peer_ + ": " + st.message());
  if (control_) {
    if (st.code() == Error::kProtocol || st.code() == Error::kRefused || st.code() == Error::kLocalIo) {
      control_->send(protocol::encode(protocol::ErrorFrame{static_cast<uint16_t>(st.code()), st.message()}));
      control_->close_after_flush();
    } else {
      control_->close();
    }
  }
  // The sender went away: what it already put on the data streams is still worth writing
  // and journaling, so they are read to their end. Anything else stops them now.
  if (st.code() != Error::kNetwork) close_streams();
}

void ReceiverSession::close_streams() {
  streams_closed_ = true;
  for (auto& s : streams_) s->close();
  if (udp_) udp_->close();
}

void ReceiverSession::supersede() { terminate(Status(Error::kNetwork, "superseded by a new connection of the same transfer")); }

void ReceiverSession::terminate(const Status& why) {
  abort(why);
  close_streams();
}

std::shared_ptr<ReceiverSession::RecvFile> ReceiverSession::lookup(uint32_t file_id) {
  std::lock_guard lock(mu_);
  return file_id < files_.size() ? files_[file_id] : nullptr;
}

// ---------------------------------------------------------------------------------------
// Control connection

asio::awaitable<Status> ReceiverSession::run_control(std::shared_ptr<FrameSocket> control) {
  auto self = shared_from_this();
  control_ = control;
  control_->on_write_error([weak = weak_from_this()](const Status& s) {
    if (auto self = weak.lock()) self->abort(s);
  });
  if (!client_role_) control_->send(protocol::encode(protocol::SessionOpened{id_}));
  while (!aborted_) {
    auto frame = co_await control_->read_frame();
    if (aborted_) break;
    if (!frame) {
      if (finish_received_) break;  // the sender closes after SUMMARY: normal end
      abort(Status(frame.status().code(), frame.status().message() + " before the transfer finished"));
      break;
    }
    if (Status st = handle_control_frame(*frame); !st) abort(st);
  }
  control_->close();
  if (udp_) {
    const auto& u = udp_->stats();
    std::string line = "session from " + peer_ + ": UDP " + std::to_string(u.datagrams) + " datagrams, " +
                       std::to_string(u.chunks) + " chunks, " + std::to_string(u.duplicates) + " duplicates, " +
                       std::to_string(u.budget_drops) + " dropped for memory, " + std::to_string(u.acks_sent) +
                       " ACKs";
    if (u.auth_failures) {
      log::warning(line + "; " + std::to_string(u.auth_failures) +
                   " datagrams failed authentication or were replays (dropped)");
    } else {
      log::info(line);
    }
  }
  if (finish_received_ || streams_closed_) {
    close_streams();
  } else {
    // The sender is gone: let the data streams drain what is already in flight (see abort),
    // but not forever.
    auto timer = std::make_shared<asio::steady_timer>(io_, std::chrono::seconds(10));
    timer->async_wait([weak = weak_from_this(), timer](boost::system::error_code) {
      if (auto s = weak.lock()) s->close_streams();
    });
  }
  if (!outcome_.is_ok()) co_return outcome_;
  SessionStats st = stats();
  if (st.files_failed > 0)
    co_return Status(Error::kPartial, std::to_string(st.files_failed) + " files from " + peer_ + " failed");
  co_return Status::ok();
}

Status ReceiverSession::handle_control_frame(const Frame& frame) {
  using protocol::FrameType;
  if (client_role_ && (frame.type == FrameType::kListRequest || frame.type == FrameType::kDelete ||
                       frame.type == FrameType::kUdpOpen))
    return Status(Error::kProtocol, peer_ + " sent " + protocol::to_string(frame.type) + ", which a server may not send");
  switch (frame.type) {
    case FrameType::kFileList: {
      auto list = protocol::decode_file_list(frame.payload);
      return list ? on_file_list(std::move(*list)) : list.status();
    }
    case FrameType::kFileListEnd: {
      auto end = protocol::decode_file_list_end(frame.payload);
      if (!end) return end.status();
      if (end->total_files != next_file_id_)
        return Status(Error::kProtocol, peer_ + " announced " + std::to_string(end->total_files) + " files but listed " +
                                            std::to_string(next_file_id_));
      list_ended_ = true;
      return Status::ok();
    }
    case FrameType::kFileDone: {
      auto done = protocol::decode_file_done(frame.payload);
      return done ? on_file_done(*done) : done.status();
    }
    case FrameType::kFileAbort: {
      auto ab = protocol::decode_file_abort(frame.payload);
      return ab ? on_file_abort(*ab) : ab.status();
    }
    case FrameType::kListRequest: {
      auto req = protocol::decode_list_request(frame.payload);
      if (!req) return req.status();
      asio::post(pool_, [self = shared_from_this(), with_hashes = req->with_hashes] { self->list_destination(with_hashes); });
      return Status::ok();
    }
    case FrameType::kDelete: {
      auto req = protocol::decode_delete(frame.payload);
      if (!req) return req.status();
      asio::post(pool_, [self = shared_from_this(), paths = std::move(req->paths)] { self->delete_paths(paths); });
      return Status::ok();
    }
    case FrameType::kUdpOpen: {
      auto req = protocol::decode_udp_open(frame.payload);
      return req ? on_udp_open(*req) : req.status();
    }
    case FrameType::kFinish:
      if (!list_ended_) return Status(Error::kProtocol, peer_ + " sent FINISH before the end of its file list");
      finish_received_ = true;
      asio::post(pool_, [self = shared_from_this()] { self->finish(); });
      return Status::ok();
    case FrameType::kError: {
      Status st = status_from_error_frame(frame, peer_);
      return st.is_ok() ? Status(Error::kProtocol, peer_ + " sent ERROR") : st;
    }
    default:
      return Status(Error::kProtocol, std::string("unexpected ") + protocol::to_string(frame.type) +
                                          " on the control connection from " + peer_);
  }
}

Status ReceiverSession::on_file_list(protocol::FileList list) {
  if (list_ended_) return Status(Error::kProtocol, peer_ + " sent FILE_LIST after FILE_LIST_END");
  for (const auto& e : list.entries) {
    if (e.file_id != next_file_id_)
      return Status(Error::kProtocol, peer_ + " sent file id " + std::to_string(e.file_id) + " where " +
                                          std::to_string(next_file_id_) + " was expected");
    if (++next_file_id_ > protocol::kMaxFilesPerSession)
      return Status(Error::kRefused, peer_ + " listed more than " + std::to_string(protocol::kMaxFilesPerSession) +
                                         " files in one session");
  }
  asio::post(pool_, [self = shared_from_this(), batch = std::move(list.entries)]() mutable {
    self->plan_batch(std::move(batch));
  });
  return Status::ok();
}

Status ReceiverSession::on_file_done(const protocol::FileDone& done) {
  auto file = lookup(done.file_id);
  if (!file) return Status(Error::kProtocol, peer_ + " sent FILE_DONE for a file it was not sending");
  std::unique_lock lock(file->mu);
  if (done.chunk_count != file->chunk_count)
    return Status(Error::kProtocol, peer_ + " says '" + file->entry.path + "' has " + std::to_string(done.chunk_count) +
                                        " chunks, its size gives " + std::to_string(file->chunk_count));
  if (file->done_known || file->resolved) return Status::ok();
  file->done_known = true;
  file->expected = done.hash;
  file->sent_expected = done.sent_chunks;
  if (ready_to_finalize(*file)) {
    file->finalizing = true;
    lock.unlock();
    asio::post(pool_, [self = shared_from_this(), file] { self->finalize(file); });
  }
  return Status::ok();
}

Status ReceiverSession::on_file_abort(const protocol::FileAbort& ab) {
  auto file = lookup(ab.file_id);
  if (!file) return Status(Error::kProtocol, peer_ + " sent FILE_ABORT for a file it was not sending");
  asio::post(pool_, [self = shared_from_this(), file, ab] {
    std::lock_guard lock(file->mu);
    if (file->resolved) return;
    Error code = ab.code >= 1 && ab.code <= 9 ? static_cast<Error>(ab.code) : Error::kLocalIo;
    self->resolve(*file, Status(code, "sender gave up: " + ab.message), Hash128{});
  });
  return Status::ok();
}

// ---------------------------------------------------------------------------------------
// Sync: listing and deleting (pool)

void ReceiverSession::list_destination(bool with_hashes) {
  protocol::ListEntries batch;
  size_t batch_bytes = 0;
  uint32_t total = 0;
  auto visit = [&](const FileEntry& e, const Hash128* h) {
    protocol::ListEntry le{e, h != nullptr, h ? *h : Hash128{}};
    size_t sz = protocol::encoded_size(le);
    if (batch_bytes + sz > protocol::kMaxControlPayload - 16 * 1024 && !batch.entries.empty()) {
      send_control(protocol::encode(batch));
      batch.entries.clear();
      batch_bytes = 0;
    }
    batch_bytes += sz;
    batch.entries.push_back(std::move(le));
    ++total;
  };
  Status st = sinks_ ? sinks_->list(open_.dest_path, with_hashes, visit)
                     : walk_beneath(root_, open_.dest_path, with_hashes, visit);
  if (!batch.entries.empty()) send_control(protocol::encode(batch));
  if (!st) log::warning("session from " + peer_ + ": listing the destination: " + st.message());
  send_control(protocol::encode(protocol::ListEnd{total, st}));
}

void ReceiverSession::delete_paths(const std::vector<std::string>& paths) {
  protocol::DeleteResult result;
  for (const auto& p : paths) {
    Status st = validate_relative_path(p);
    std::string rel = st ? join_relative(open_.dest_path, p) : p;
    if (st) st = sinks_ ? sinks_->remove(rel) : remove_beneath(root_, rel);
    if (st) log::info("session from " + peer_ + ": deleted '" + rel + "'");
    result.outcomes.push_back({p, static_cast<uint16_t>(st.code()), st.is_ok() ? "" : st.message()});
  }
  send_control(protocol::encode(result));
}

// ---------------------------------------------------------------------------------------
// Planning (pool)

void ReceiverSession::plan_batch(std::vector<protocol::FileListEntry> batch) {
  protocol::FilePlan plan;
  plan.entries.reserve(batch.size());
  std::vector<std::pair<uint32_t, std::shared_ptr<RecvFile>>> created;
  std::vector<protocol::HaveChunks> have;
  for (const auto& e : batch) {
    if (aborted_) return;
    std::shared_ptr<RecvFile> file;
    plan.entries.push_back(plan_entry(e, &file, &have));
    if (file) created.emplace_back(e.file_id, std::move(file));
  }
  {
    std::lock_guard lock(mu_);
    for (auto& [id, f] : created) {
      if (files_.size() <= id) files_.resize(id + 1);
      files_[id] = std::move(f);
    }
    for (const auto& p : plan.entries)
      if (p.action == protocol::PlanAction::kReject) ++stats_.files_failed;
    if (client_role_) {
      for (size_t i = 0; i < batch.size() && i < plan.entries.size(); ++i) {
        const FileEntry& en = batch[i].entry;
        const auto& p = plan.entries[i];
        const bool file = en.type == FileType::kRegular;
        std::string action = p.action == protocol::PlanAction::kReject ? "failed"
                             : p.action == protocol::PlanAction::kSend ? "pending"
                             : file                                    ? "skipped"
                                                                       : "ok";
        if (reports_.size() <= batch[i].file_id) reports_.resize(batch[i].file_id + 1);
        reports_[batch[i].file_id] = {en.path, report_type_name(en.type), en.size, std::move(action), "",
                                      p.action == protocol::PlanAction::kReject ? p.reason : ""};
      }
    }
  }
  // What the receiver already holds must reach the sender before the plan that asks for it.
  for (const auto& h : have) send_control(protocol::encode(h));
  // Reasons can make a plan longer than the list it answers: cut it under the frame limit.
  protocol::FilePlan part;
  size_t bytes = 0;
  for (auto& e : plan.entries) {
    if (e.reason.size() > 1024) e.reason.resize(1024);
    size_t sz = 7 + e.reason.size();
    if (bytes + sz > protocol::kMaxControlPayload - 16 * 1024 && !part.entries.empty()) {
      send_control(protocol::encode(part));
      part.entries.clear();
      bytes = 0;
    }
    bytes += sz;
    part.entries.push_back(std::move(e));
  }
  if (!part.entries.empty()) send_control(protocol::encode(part));
}

protocol::PlanEntry ReceiverSession::plan_entry(const protocol::FileListEntry& e, std::shared_ptr<RecvFile>* out,
                                                std::vector<protocol::HaveChunks>* have) {
  using protocol::PlanAction;
  auto reject = [&](const std::string& why) {
    log::warning("session from " + peer_ + ": refusing '" + e.entry.path + "': " + why);
    return protocol::PlanEntry{e.file_id, PlanAction::kReject, why};
  };
  if (Status st = validate_relative_path(e.entry.path); !st) return reject(st.message());
  std::string rel = join_relative(open_.dest_path, e.entry.path);
  if (rel.size() > kMaxPathBytes) return reject("path is longer than " + std::to_string(kMaxPathBytes) + " bytes");
  if (is_reserved_path(rel)) return reject("'.ferry' below the root is reserved for ferry's own state");
  if (sinks_) return plan_sink_entry(e, rel, out);

  struct stat st {};
  int err = root_.lstat_beneath(rel, &st);
  bool exists = err == 0;
  if (err != 0 && err != ENOENT)
    return reject("cannot use '" + rel + "' below the receiver's root: " + std::strerror(err) +
                  (err == ELOOP || err == ENOTDIR ? " (symlinks below the root are never followed)" : ""));
  auto overwrite = open_.overwrite;

  switch (e.entry.type) {
    case FileType::kDirectory: {
      if (exists && !S_ISDIR(st.st_mode)) return reject("'" + rel + "' exists on the receiver and is not a directory");
      if (Status s = make_directory(root_, rel); !s) return reject(s.message());
      std::lock_guard lock(mu_);
      dirs_.push_back({rel, e.entry.mode, e.entry.mtime_ns});
      return {e.file_id, PlanAction::kSkip, ""};
    }
    case FileType::kSymlink: {
      if (exists && S_ISDIR(st.st_mode)) return reject("'" + rel + "' exists on the receiver as a directory");
      if (exists && overwrite == protocol::OverwriteMode::kNever) return {e.file_id, PlanAction::kSkip, ""};
      if (Status s = create_symlink(root_, rel, e.entry.link_target, e.entry.mtime_ns); !s) return reject(s.message());
      return {e.file_id, PlanAction::kSkip, ""};
    }
    case FileType::kRegular: {
      if (exists && S_ISDIR(st.st_mode)) return reject("'" + rel + "' exists on the receiver as a directory");
      if (exists && overwrite == protocol::OverwriteMode::kNever) return {e.file_id, PlanAction::kSkip, ""};
      bool same_attrs = exists && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) == e.entry.size &&
                        st.st_mtim.tv_sec * 1'000'000'000ll + st.st_mtim.tv_nsec == e.entry.mtime_ns;
      if (same_attrs && overwrite == protocol::OverwriteMode::kDiff) return {e.file_id, PlanAction::kSkip, ""};
      // Committed by an earlier run of this same transfer: done, whatever --overwrite says.
      if (same_attrs && journal_ && journal_->committed_earlier(rel)) return {e.file_id, PlanAction::kSkip, ""};
      auto file = std::make_shared<RecvFile>();
      file->id = e.file_id;
      file->entry = e.entry;
      file->entry.path = rel;
      file->chunk_count = chunk_count_for(e.entry.size, open_.chunk_size);
      file->claimed.assign(file->chunk_count, 0);
      file->prior.assign(file->chunk_count, 0);
      if (journal_ && open_.resume != protocol::ResumeMode::kOff) try_resume(*file, have);
      *out = std::move(file);
      return {e.file_id, PlanAction::kSend, ""};
    }
  }
  return reject("unknown entry type");
}

void ReceiverSession::try_resume(RecvFile& file, std::vector<protocol::HaveChunks>* have) {
  const journal::PartialFile* p = journal_->partial(file.entry.path);
  if (!p) return;
  const std::string& rel = file.entry.path;
  auto give_up = [&](const std::string& why) {
    log::info("session from " + peer_ + ": not resuming '" + rel + "': " + why);
    journal_->discarded(p->file.slot);
  };
  if (p->file.size != file.entry.size || p->file.mtime_ns != file.entry.mtime_ns ||
      p->file.chunk_size != open_.chunk_size)
    return give_up("the source changed since the interrupted run");
  auto staged = StagedFile::reopen(root_, rel, file.entry.size, tag_, p->file.temp_dev, p->file.temp_ino);
  if (!staged) return give_up(staged.status().message());

  // Re-read what --resume asks for and compare with the journal before offering anything.
  std::vector<uint32_t> check;
  uint32_t last = file.chunk_count ? file.chunk_count - 1 : 0;
  for (const auto& [index, hash] : p->chunks) {
    if (index >= file.chunk_count) return give_up("the journal names a chunk past the end");
    bool sample = index == 0 || index == last || index % 8 == 0;
    if (open_.resume == protocol::ResumeMode::kFull || (open_.resume == protocol::ResumeMode::kSparse && sample))
      check.push_back(index);
  }
  Buffer buf = make_buffer(open_.chunk_size);
  for (uint32_t index : check) {
    uint32_t len = chunk_length(file.entry.size, open_.chunk_size, index);
    if (Status st = (*staged)->read_at(uint64_t{index} * open_.chunk_size, buf.get(), len); !st) {
      (*staged)->abort();
      return give_up(st.message());
    }
    if (xxh3_64(buf.get(), len) != p->chunks.at(index)) {
      (*staged)->abort();
      return give_up("chunk " + std::to_string(index) + " on disk does not match the journal");
    }
  }
  file.staged = std::move(*staged);
  file.slot = p->file.slot;
  RecvFile* fp = &file;
  file.hasher = std::make_unique<OrderedFileHasher>(
      file.entry.size, open_.chunk_size,
      [fp](uint64_t off, uint8_t* dst, size_t len) { return fp->staged->read_at(off, dst, len); });
  protocol::HaveChunks h{0, {}};  // file id filled in below
  for (const auto& [index, hash] : p->chunks) {
    file.prior[index] = 1;
    ++file.covered;
    h.chunks.emplace_back(index, hash);
    if (h.chunks.size() == protocol::kMaxHaveChunksPerFrame) {
      h.file_id = file.id;
      have->push_back(std::move(h));
      h = protocol::HaveChunks{0, {}};
    }
  }
  if (!h.chunks.empty()) {
    h.file_id = file.id;
    have->push_back(std::move(h));
  }
  {
    std::lock_guard lock(mu_);
    stats_.chunks_resumed += p->chunks.size();
  }
  log::info("session from " + peer_ + ": resuming '" + rel + "' with " + std::to_string(p->chunks.size()) + " of " +
            std::to_string(file.chunk_count) + " chunks already here");
}

// ---------------------------------------------------------------------------------------
// Data streams

asio::awaitable<void> ReceiverSession::acquire_budget(uint64_t bytes) {
  asio::steady_timer granted_signal(io_, asio::steady_timer::time_point::max());
  bool granted = false;
  budget_.acquire(bytes, [&] {
    asio::post(io_, [&] {
      granted = true;
      granted_signal.cancel();
    });
  });
  while (!granted) co_await granted_signal.async_wait(asio::as_tuple(asio::use_awaitable));
}

std::string ReceiverSession::check_chunk(const protocol::ChunkHeader& ch, uint32_t payload_len,
                                         std::shared_ptr<RecvFile>* out) {
  auto file = lookup(ch.file_id);
  if (!file) return "chunk for file id " + std::to_string(ch.file_id) + ", which is not being received";
  if (ch.chunk_index >= file->chunk_count)
    return "chunk index " + std::to_string(ch.chunk_index) + " beyond the end of '" + file->entry.path + "'";
  if (ch.raw_length != chunk_length(file->entry.size, open_.chunk_size, ch.chunk_index))
    return "chunk " + std::to_string(ch.chunk_index) + " of '" + file->entry.path + "' has the wrong length";
  if (ch.codec == static_cast<uint8_t>(Codec::kNone)
          ? payload_len != ch.raw_length
          : (ch.codec != static_cast<uint8_t>(Codec::kZstd) || payload_len == 0 || payload_len >= ch.raw_length))
    return "chunk " + std::to_string(ch.chunk_index) + " of '" + file->entry.path + "' has a bad codec or payload length";
  *out = std::move(file);
  return {};
}

// ---------------------------------------------------------------------------------------
// UDP data path (docs/udp.md)

Status ReceiverSession::on_udp_open(const protocol::UdpOpen& req) {
  if (open_.data_streams != 0) return Status(Error::kProtocol, peer_ + " asked for UDP on a session with TCP streams");
  if (udp_) return Status(Error::kProtocol, peer_ + " sent UDP_OPEN twice");
  // Each chunk being reassembled from datagrams holds room for its record and its decoded
  // payload (udp_chunk_receiver.cc). With room for fewer than two, every fragment of the next
  // chunk is dropped while one is incomplete, and the sender's rate collapses to a crawl
  // (measured: 128 MiB with --memory 12M and 4 MiB chunks did not finish in 60 s). Refuse
  // at once instead, saying what would work.
  const uint64_t per_chunk = protocol::kChunkHeaderSize + 2ull * open_.chunk_size;
  if (budget_.limit() < 2 * per_chunk)
    return Status(Error::kRefused, "the receiver's memory budget " + format_bytes(budget_.limit()) +
                                     " is too small for UDP with " + format_bytes(open_.chunk_size) +
                                     " chunks: it needs at least " + format_bytes(2 * per_chunk) +
                                     " (use a smaller --chunk-size, --transport tcp, or give the receiver more memory)");
  crypto::KeyExchange kx;
  if (!kx.ok()) return Status(Error::kInternal, "X25519 key generation failed");
  auto keys = udp::udp_session_keys(*control_, kx, req.public_key, udp::key_context(id_, req.public_key, kx.public_key()),
                               /*is_sender=*/false);
  if (!keys) return keys.status();
  boost::system::error_code ec;
  auto local = control_->tcp_socket().local_endpoint(ec);
  if (ec) return Status(Error::kNetwork, "control connection from " + peer_ + ": " + ec.message());
  std::unique_ptr<udp::DatagramSocket> sock;
  if (udp_port_first_ == 0) {
    sock = std::make_unique<udp::DatagramSocket>(io_);
    if (Status st = sock->open(udp::udp_endpoint(local.address(), 0), "UDP data path for " + peer_); !st) return st;
  } else {
    // The configured range (firewalls open only it): start at a random port so concurrent
    // sessions rarely collide, and take the first one that binds.
    const uint32_t count = uint32_t{udp_port_last_} - udp_port_first_ + 1;
    uint32_t start = 0;
    RAND_bytes(reinterpret_cast<unsigned char*>(&start), sizeof start);
    Status last_error;
    for (uint32_t i = 0; i < count && !sock; ++i) {
      const auto port = static_cast<uint16_t>(udp_port_first_ + (start + i) % count);
      auto s = std::make_unique<udp::DatagramSocket>(io_);
      if (Status st = s->open(udp::udp_endpoint(local.address(), port), "UDP data path for " + peer_); st)
        sock = std::move(s);
      else
        last_error = st;
    }
    if (!sock)  // like max_sessions: the server is full, the sender may try again later
      return Status(Error::kRefused, "busy: no free UDP port in " + std::to_string(udp_port_first_) + "-" +
                                         std::to_string(udp_port_last_) + " for " + peer_ + " (last: " +
                                         last_error.message() + "); try again later");
  }
  udp::UdpReceiverConfig cfg;
  cfg.max_datagram = std::min<uint16_t>(req.max_datagram, protocol::kMaxUdpDatagram);
  cfg.chunk_size = open_.chunk_size;
  cfg.faults = udp_faults_;
  cfg.peer = peer_ + " (UDP)";
  auto weak = weak_from_this();
  udp_ = std::make_shared<udp::UdpChunkReceiver>(
      io_, std::move(sock), *keys, budget_, cfg,
      [weak](const protocol::ChunkHeader& h, Buffer payload, uint32_t len, uint64_t reserved) {
        if (auto self = weak.lock()) self->accept_udp_chunk(h, std::move(payload), len, reserved);
        // else: the budget object outlives sessions; nothing holds these bytes any more
      },
      [weak](const Status& st) {
        if (auto self = weak.lock()) self->abort(st);
      });
  udp_->start();
  protocol::UdpAccept accept;
  accept.port = udp_->port();
  auto pub = kx.public_key();
  std::copy(pub.begin(), pub.end(), accept.public_key.begin());
  accept.max_datagram = cfg.max_datagram;
  accept.max_rate = udp_cap();  // the server-side cap wins over what the sender asked for
  udp_cap_sent_ = accept.max_rate;
  control_->send(protocol::encode(accept));
  log::debug("session from " + peer_ + ": UDP data on port " + std::to_string(accept.port));
  return Status::ok();
}

void ReceiverSession::accept_udp_chunk(const protocol::ChunkHeader& h, Buffer payload, uint32_t payload_len,
                                       uint64_t reserved) {
  std::shared_ptr<RecvFile> file;
  bytes_received_ += payload_len;
  if (total_rate_) total_rate_->charge(payload_len, std::chrono::steady_clock::now());
  if (streams_closed_) {
    budget_.release(reserved);
    return;
  }
  if (std::string bad = check_chunk(h, payload_len, &file); !bad.empty()) {
    budget_.release(reserved);
    abort(Status(Error::kProtocol, "UDP data from " + peer_ + ": " + bad));
    close_streams();
    return;
  }
  asio::post(pool_, [self = shared_from_this(), file, h, p = std::move(payload), payload_len, reserved]() mutable {
    self->process_chunk(std::move(file), h, std::move(p), payload_len, reserved);
  });
}

// The receiver's rate caps: the session's own virtual clock advances by each payload's
// transmission time at the session cap, the shared one (TotalRate) at the server-wide cap.
// Reading stops until both say so, so TCP flow control slows the sender; idle time earns no
// credit beyond the present.
asio::awaitable<void> ReceiverSession::pace(uint32_t payload_len) {
  auto now = std::chrono::steady_clock::now();
  auto until = now;
  if (rate_limit_) {
    until = std::max(pace_next_, now);
    auto cost = std::chrono::nanoseconds(static_cast<int64_t>(static_cast<double>(payload_len) * 1e9 /
                                                              static_cast<double>(rate_limit_)));
    pace_next_ = until + std::chrono::duration_cast<std::chrono::steady_clock::duration>(cost);
  }
  if (total_rate_) until = std::max(until, total_rate_->claim(payload_len, now));
  if (until > now) {
    asio::steady_timer t(io_, until - now);
    co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

uint64_t ReceiverSession::udp_cap() const {
  uint64_t cap = rate_limit_;
  if (total_rate_ && (cap == 0 || total_rate_->share() < cap)) cap = total_rate_->share();
  return cap;
}

void ReceiverSession::update_udp_share() {
  if (!udp_ || !control_ || aborted_ || streams_closed_) return;
  const uint64_t cap = udp_cap();
  const uint64_t was = udp_cap_sent_;
  const bool moved = (cap == 0) != (was == 0) ||
                     (cap != 0 && (cap * 20 < was * 19 || cap * 20 > was * 21));  // more than 5%
  if (!moved) return;
  udp_cap_sent_ = cap;
  control_->send(protocol::encode(protocol::RateLimit{cap}));
}

asio::awaitable<void> ReceiverSession::run_data(std::shared_ptr<FrameSocket> stream, uint16_t index) {
  auto self = shared_from_this();
  streams_.push_back(stream);
  if (streams_closed_) stream->close();
  const std::string where = "data stream " + std::to_string(index) + " from " + peer_;
  uint8_t prefix[protocol::kChunkPrefixSize];
  while (!streams_closed_) {
    auto [ec, n] = co_await stream->read_exact(prefix, protocol::kFrameHeaderSize);
    if (streams_closed_) break;
    if (ec) {
      if (finish_received_ || aborted_) break;  // the sender closed its streams (after SUMMARY, or gone)
      abort(Status(Error::kNetwork, where + ": " + (ec == asio::error::eof ? "closed" : ec.message()) +
                                                               " before the transfer finished"));
      break;
    }
    auto header = protocol::decode_header(prefix, open_.chunk_size);
    if (!header) {
      abort(Status(Error::kProtocol, where + ": " + header.status().message()));
      break;
    }
    if (header->type != protocol::FrameType::kChunk) {
      abort(Status(Error::kProtocol, where + ": unexpected " + protocol::to_string(header->type) + " frame"));
      break;
    }
    auto [ec2, n2] = co_await stream->read_exact(prefix + protocol::kFrameHeaderSize, protocol::kChunkHeaderSize);
    if (ec2 || streams_closed_) {
      if (!aborted_) abort(Status(Error::kNetwork, where + ": " + ec2.message()));
      break;
    }
    auto ch = protocol::decode_chunk_header({prefix + protocol::kFrameHeaderSize, protocol::kChunkHeaderSize});
    if (!ch) {
      abort(Status(Error::kProtocol, where + ": " + ch.status().message()));
      break;
    }
    // Validate everything the header claims before reserving memory or reading the payload.
    uint32_t payload_len = header->length - static_cast<uint32_t>(protocol::kChunkHeaderSize);
    std::shared_ptr<RecvFile> file;
    if (std::string bad = check_chunk(*ch, payload_len, &file); !bad.empty()) {
      abort(Status(Error::kProtocol, where + ": " + bad));
      break;
    }
    bytes_received_ += payload_len;
    if (sinks_) co_await wait_admitted(*file, ch->chunk_index);
    if (rate_limit_ || total_rate_) co_await pace(payload_len);
    uint64_t reserve = payload_len + (ch->codec == static_cast<uint8_t>(Codec::kZstd) ? ch->raw_length : 0);
    if (sinks_) co_await acquire_sink_budget(*file, ch->chunk_index, reserve);
    else co_await acquire_budget(reserve);
    Buffer payload = make_buffer(std::max<uint32_t>(payload_len, 1));
    auto [ec3, n3] = co_await stream->read_exact(payload.get(), payload_len);
    if (ec3 || streams_closed_) {
      budget_.release(reserve);
      if (!aborted_) abort(Status(Error::kNetwork, where + ": " + ec3.message()));
      break;
    }
    asio::post(pool_, [self, file, h = *ch, p = std::move(payload), payload_len, reserve]() mutable {
      self->process_chunk(std::move(file), h, std::move(p), payload_len, reserve);
    });
  }
}

// ---------------------------------------------------------------------------------------
// Chunk processing, commits (pool)

Status ReceiverSession::open_staged(RecvFile& file) {
  auto staged = StagedFile::create(root_, file.entry.path, file.entry.size, tag_);
  if (!staged) return staged.status();
  file.staged = std::move(*staged);
  RecvFile* fp = &file;
  file.hasher = std::make_unique<OrderedFileHasher>(
      file.entry.size, open_.chunk_size,
      [fp](uint64_t off, uint8_t* dst, size_t len) { return fp->staged->read_at(off, dst, len); });
  // A one-chunk file has nothing to resume (it is re-sent whole), so it costs the journal
  // nothing: small-file trees stay as fast as without resume.
  if (journal_ && file.chunk_count > 1) {
    journal::FileRecord rec;
    rec.size = file.entry.size;
    rec.mtime_ns = file.entry.mtime_ns;
    rec.chunk_size = open_.chunk_size;
    rec.rel_path = file.entry.path;
    rec.temp_name = file.staged->temp_name();
    if (file.staged->identity(&rec.temp_dev, &rec.temp_ino)) file.slot = journal_->begin_file(std::move(rec));
  }
  return Status::ok();
}

void ReceiverSession::process_chunk(std::shared_ptr<RecvFile> file, protocol::ChunkHeader h, Buffer payload,
                                    uint32_t payload_len, uint64_t reserved) {
  struct Release {
    MemoryBudget& b;
    uint64_t n;
    ~Release() { b.release(n); }
  } release{budget_, reserved};
  // Runs even after the session broke: a verified chunk written and journaled now is one the
  // next run does not have to send.

  const uint8_t* raw = payload.get();
  std::shared_ptr<uint8_t[]> decoded;
  uint16_t nack_reason = 0;
  if (h.codec == static_cast<uint8_t>(Codec::kZstd)) {
    decoded = std::shared_ptr<uint8_t[]>(make_buffer(h.raw_length));
    if (!ChunkCodec::for_this_thread().decompress(Codec::kZstd, payload.get(), payload_len, decoded.get(), h.raw_length)) nack_reason = 2;
    raw = decoded.get();
  }
  if (sinks_) return sink_chunk(std::move(file), h, raw, nack_reason, &release.n);
  std::shared_ptr<StagedFile> staged;
  std::shared_ptr<OrderedFileHasher> hasher;
  std::shared_ptr<uint8_t[]> owner;  // keeps `raw` alive until it is written
  bool add_after_write = false;      // an early chunk joins the file hash once it is on disk
  if (!nack_reason) {
    {
      std::lock_guard lock(file->mu);
      if (file->resolved || file->claimed[h.chunk_index]) return;  // failed already, or a repeat
      if (!file->staged) {
        if (Status st = open_staged(*file); !st) return resolve(*file, st, Hash128{});
      }
      staged = file->staged;
      hasher = file->hasher;
    }
    if (file->prior[h.chunk_index]) {
      // Held from an earlier run and sent again: verified now, hashed from disk at finalize.
      if (xxh3_64(raw, h.raw_length) != h.xxh3_64) nack_reason = 1;
    } else {
      // Verify and fold into the file hash in one pass; the hasher may keep an early
      // chunk's buffer instead of reading it back later.
      owner = decoded ? decoded : std::shared_ptr<uint8_t[]>(std::move(payload));
      auto check = hasher->add_chunk_if_matches(h.chunk_index, std::shared_ptr<const uint8_t>(owner, raw),
                                                     h.raw_length, h.xxh3_64);
      if (!check) {
        std::lock_guard lock(file->mu);
        return resolve(*file, check.status(), Hash128{});
      }
      if (*check == OrderedFileHasher::Check::kDuplicate) return;
      if (*check == OrderedFileHasher::Check::kMismatch) nack_reason = 1;
      add_after_write = *check == OrderedFileHasher::Check::kVerified;
    }
  }
  if (nack_reason) {
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
  }
  // Chunks of one file are written concurrently: pwrite at distinct offsets.
  uint64_t offset = static_cast<uint64_t>(h.chunk_index) * open_.chunk_size;
  Status st = staged->write_at(offset, raw, h.raw_length);
  if (st && add_after_write)
    st = hasher->add_chunk_shared(h.chunk_index, std::shared_ptr<const uint8_t>(owner, raw), h.raw_length);
  if (st && journal_ && file->slot != RecvFile::kNoSlot) journal_->chunk_done(file->slot, h.chunk_index, h.xxh3_64);
  if (st) chunk_bytes_written_ += h.raw_length;
  if (st && fault_sigkill_after_chunks_ && ++chunks_written_ >= fault_sigkill_after_chunks_) ::raise(SIGKILL);
  std::unique_lock lock(file->mu);
  if (!st) return resolve(*file, st, Hash128{});
  ++file->written;
  if (!file->prior[h.chunk_index]) ++file->covered;
  if (ready_to_finalize(*file)) {
    file->finalizing = true;
    lock.unlock();
    finalize(file);
  }
}

void ReceiverSession::finalize(std::shared_ptr<RecvFile> file) {
  if (sinks_) return commit_to_sink(std::move(file));
  std::lock_guard lock(file->mu);
  if (file->resolved) return;
  if (!file->staged) {  // an empty file: no chunk created it
    auto staged = StagedFile::create(root_, file->entry.path, 0, tag_);
    if (!staged) return resolve(*file, staged.status(), Hash128{});
    file->staged = std::move(*staged);
  }
  if (file->hasher) {
    // Chunks kept from an earlier run and not replaced: hash them from disk now.
    for (uint32_t i = 0; i < file->chunk_count; ++i) {
      if (!file->prior[i] || file->claimed[i]) continue;
      if (Status st = file->hasher->add_chunk_on_disk(i); !st) return resolve(*file, st, Hash128{});
    }
  }
  Hash128 got = file->hasher ? file->hasher->digest() : xxh3_128(nullptr, 0);
  if (got != file->expected)
    return resolve(*file,
                   Status(Error::kIntegrity, "'" + file->entry.path + "': whole-file checksum mismatch after assembly (sender " +
                                                 file->expected.hex() + ", received " + got.hex() + ")"),
                   got);
  if (Status st = file->staged->prepare_commit(file->entry.mode, file->entry.mtime_ns); !st)
    return resolve(*file, st, got);
  std::lock_guard commit_lock(commit_mu_);
  commit_queue_.push_back({file, got});
  if (!committer_running_) {
    committer_running_ = true;
    asio::post(pool_, [self = shared_from_this()] { self->run_committer(); });
  }
}

void ReceiverSession::run_committer() {
  for (;;) {
    std::vector<PendingCommit> batch;
    {
      std::lock_guard lock(commit_mu_);
      if (commit_queue_.empty()) {
        committer_running_ = false;
        return;
      }
      batch.swap(commit_queue_);
    }
    // 1. Data of every file in the batch, all at once (the filesystem groups the commits).
    std::vector<SyncTarget> targets;
    for (auto& c : batch) targets.push_back({c.file->staged->data_fd(), "'" + c.file->entry.path + "'"});
    std::vector<size_t> failed;
    (void)sync_all(targets, /*data_only=*/false, &failed);
    std::vector<uint8_t> ok(batch.size(), 1);
    for (size_t i : failed) {
      ok[i] = 0;
      std::lock_guard lock(batch[i].file->mu);
      resolve(*batch[i].file, errno_status(Error::kLocalIo, "sync '" + batch[i].file->entry.path + "'", EIO), Hash128{});
    }
    // 2. Only synced files get their final names.
    std::vector<SyncTarget> dirs;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!ok[i]) continue;
      std::lock_guard lock(batch[i].file->mu);
      if (Status st = batch[i].file->staged->publish(); !st) {
        ok[i] = 0;
        resolve(*batch[i].file, st, Hash128{});
        continue;
      }
      dirs.push_back({batch[i].file->staged->parent_fd(), "directory of '" + batch[i].file->entry.path + "'"});
    }
    // 3. The renames themselves, durable; then report.
    if (Status st = sync_all(dirs, false); !st) log::warning("session from " + peer_ + ": " + st.message());
    for (size_t i = 0; i < batch.size(); ++i) {
      if (!ok[i]) continue;
      std::lock_guard lock(batch[i].file->mu);
      resolve(*batch[i].file, Status::ok(), batch[i].hash);
    }
  }
}

void ReceiverSession::resolve(RecvFile& file, const Status& st, const Hash128& hash) {
  if (file.resolved) return;
  file.resolved = true;
  if (journal_ && file.slot != RecvFile::kNoSlot) {
    if (st) journal_->committed(file.slot);
    else if (aborted_ && file.staged) file.staged->keep();  // the session broke: resume it later
    else journal_->discarded(file.slot);
  }
  file.staged.reset();  // unlinks the temporary file unless it was committed or kept
  file.sink.reset();    // discards what a sink stored unless it committed
  file.hasher.reset();
  {
    std::lock_guard lock(mu_);
    if (st) {
      ++stats_.files_committed;
      stats_.bytes_written += file.entry.size;
    } else {
      ++stats_.files_failed;
    }
    if (client_role_ && file.id < reports_.size()) {
      FileReport& r = reports_[file.id];
      r.action = st ? "sent" : "failed";
      r.xxh3_128 = st ? hash.hex() : "";
      r.error = st ? "" : st.message();
    }
  }
  if (!st) log::error("session from " + peer_ + ": " + st.message());
  send_control(protocol::encode(
      protocol::FileResult{file.id, static_cast<uint16_t>(st.code()), hash, st.is_ok() ? "" : st.message()}));
}

void ReceiverSession::finish() {
  std::vector<DirAttrs> dirs;
  {
    std::lock_guard lock(mu_);
    dirs = dirs_;
  }
  // Deepest first, so setting a parent's mtime comes after its children changed it.
  std::sort(dirs.begin(), dirs.end(), [](const DirAttrs& a, const DirAttrs& b) {
    return std::count(a.path.begin(), a.path.end(), '/') > std::count(b.path.begin(), b.path.end(), '/');
  });
  for (const auto& d : dirs) {
    if (Status st = set_directory_attributes(root_, d.path, d.mode, d.mtime_ns); !st)
      log::warning("session from " + peer_ + ": " + st.message());
  }
  SessionStats s = stats();
  if (journal_) {
    if (s.files_failed == 0) journal_->remove();  // every file landed: nothing left to resume
    else (void)journal_->flush();
  }
  log::info("session from " + peer_ + " finished: " + std::to_string(s.files_committed) + " files written, " +
            std::to_string(s.files_failed) + " failed");
  send_control(protocol::encode(protocol::Summary{s.files_committed, s.files_failed, s.bytes_written}));
}

}  // namespace ferry
