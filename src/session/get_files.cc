// The client side of `ferry get` and `ferry ls`: GET_SESSION on a control connection, then
// the receiver state machine (ReceiverSession, unchanged) on this client's own connections,
// with LOCAL_DIR as its root. Nothing is created locally before the server accepted the
// request (SESSION_OPENED), so a refused token leaves no trace.
#include "ferry/get.h"

#include <map>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>

#include "codec/chunk_codec.h"
#include "core/memory_budget.h"
#include "core/units.h"
#include "crypto/tls_context.h"
#include "io/safe_path.h"
#include "manifest/journal.h"
#include "session/process_limits.h"
#include "session/receiver_session.h"
#include "session/retry_loop.h"
#include "transport/connect.h"

namespace ferry {
namespace {

constexpr auto kProgressInterval = std::chrono::milliseconds(500);

Result<protocol::ResumeMode> resume_mode(const std::string& s) {
  if (s == "off") return protocol::ResumeMode::kOff;
  if (s == "attrs") return protocol::ResumeMode::kAttrs;
  if (s == "sparse") return protocol::ResumeMode::kSparse;
  if (s == "full") return protocol::ResumeMode::kFull;
  return Status(Error::kUsage, "invalid --resume value '" + s + "' (expected off, attrs, sparse or full)");
}

uint8_t compression_request(const CompressionSetting& c) {
  switch (c.mode) {
    case CompressionSetting::Mode::kNone: return 0;
    case CompressionSetting::Mode::kLevel: return static_cast<uint8_t>(c.level);
    case CompressionSetting::Mode::kAuto: break;
  }
  return protocol::kCompressionAuto;
}

// Same command, same id (as for send): the server, the chunk size and the requested paths.
// A file that changed on the server is caught per file by the journal, as for send.
protocol::Id128 derive_get_id(const std::vector<GetSource>& sources, const SendOptions& o) {
  StreamingHash128 h;
  std::string head = o.transfer_id.empty() ? "ferry-get-v1" : "ferry-transfer-id";
  h.update(head.data(), head.size() + 1);
  if (!o.transfer_id.empty()) {
    h.update(o.transfer_id.data(), o.transfer_id.size());
  } else {
    std::string fixed = sources[0].url.host + '\0' + std::to_string(sources[0].url.port) + '\0' +
                        std::to_string(o.chunk_size) + '\0';
    h.update(fixed.data(), fixed.size());
    for (const auto& s : sources) {
      std::string p = std::string(s.contents ? "1" : "0") + s.url.path;
      h.update(p.data(), p.size() + 1);
    }
  }
  protocol::Id128 id{};
  h.digest().to_bytes(id.data());
  return id;
}

std::shared_ptr<TlsContext> no_tls() { return nullptr; }

// TLS context and token for a connection to `url`, as send does it.
Result<std::shared_ptr<TlsContext>> client_tls(const FerryUrl& url, const SendOptions& o) {
  if (o.tls.plaintext) return no_tls();
  TlsClientSettings ts = o.tls;
  if (ts.fingerprint.empty()) ts.fingerprint = url.fingerprint;
  return TlsContext::client(ts);
}

// Connect, TLS, HELLO/AUTH, and check that the server speaks GET_SESSION.
asio::awaitable<Result<std::pair<std::shared_ptr<FrameSocket>, protocol::Welcome>>> connect_for_get(
    const FerryUrl& url, const SendOptions& o, std::shared_ptr<TlsContext> tls, const std::string& token) {
  auto conn = co_await connect_frame_socket(url.host, url.port, o.connect_timeout, tls);
  if (!conn) co_return conn.status();
  auto welcome = co_await client_handshake(**conn, token);
  if (!welcome) {
    (*conn)->close();
    co_return welcome.status();
  }
  if (welcome->version < protocol::kVersionGet) {
    (*conn)->close();
    co_return Status(Error::kProtocol, (*conn)->peer() + " speaks protocol " + std::to_string(welcome->version) +
                                           "; ferry get/ls need protocol " + std::to_string(protocol::kVersionGet) +
                                           " (upgrade ferryd or ferry on the server)");
  }
  co_return std::make_pair(*conn, *welcome);
}

// One data stream for a get: connected by this client (only client -> server gets through
// NAT), HELLO/AUTH, JOIN_STREAM; the server then sends CHUNKs on it.
asio::awaitable<Result<std::shared_ptr<FrameSocket>>> join_stream(const FerryUrl& url, const SendOptions& o,
                                                               std::shared_ptr<TlsContext> tls, std::string token,
                                                               protocol::Id128 session_id, uint16_t index) {
  auto c = co_await connect_for_get(url, o, tls, token);
  if (!c) co_return c.status();
  auto sock = c->first;
  sock->send(protocol::encode(protocol::JoinStream{session_id, index}));
  auto joined = co_await sock->read_frame();
  if (!joined || joined->type != protocol::FrameType::kStreamJoined) {
    sock->close();
    if (!joined) co_return joined.status();
    co_return unexpected_frame(*joined, protocol::FrameType::kStreamJoined, sock->peer());
  }
  co_return sock;
}

struct Attempt {
  Status status = Status(Error::kInternal, "get did not run");
  bool established = false;
  bool encrypted = true;
  SessionStats stats;
  std::vector<FileReport> files;  // what this attempt's session reported, by file id
};

class GetAttempt : public std::enable_shared_from_this<GetAttempt> {
 public:
  GetAttempt(asio::io_context& io, asio::thread_pool& pool, MemoryBudget& budget, const std::vector<GetSource>& sources,
             const std::string& local_dir, const SendOptions& o, protocol::Id128 id, protocol::ResumeMode resume)
      : io_(io), pool_(pool), budget_(budget), sources_(sources), local_dir_(local_dir), o_(o), id_(id),
        resume_(resume), progress_(io) {}

  asio::awaitable<void> run() {
    auto self = shared_from_this();
    start_ = std::chrono::steady_clock::now();
    result_.status = co_await transfer();
    progress_.cancel();
    if (session_) {
      result_.stats = session_->stats();
      result_.files = session_->file_reports();
    }
  }
  const Attempt& result() const { return result_; }

 private:
  asio::awaitable<Status> transfer() {
    const FerryUrl& url = sources_[0].url;
    auto tls = client_tls(url, o_);
    if (!tls) co_return tls.status();
    result_.encrypted = *tls != nullptr;
    const std::string token = o_.token.empty() ? url.token : o_.token;
    auto c = co_await connect_for_get(url, o_, *tls, token);
    if (!c) co_return c.status();
    auto control = c->first;
    if (o_.chunk_size > c->second.max_chunk_size)
      co_return Status(Error::kUsage, "chunk size " + format_bytes(o_.chunk_size) + " is larger than " + control->peer() +
                                          " accepts (" + format_bytes(c->second.max_chunk_size) + ")");
    uint16_t streams = std::min<uint16_t>(o_.streams, c->second.max_streams);
    protocol::GetSession req;
    req.chunk_size = o_.chunk_size;
    req.data_streams = streams;
    req.compression = compression_request(*CompressionSetting::parse(o_.compress));
    req.transfer_id = id_;
    for (const auto& s : sources_) req.paths.push_back({s.contents, s.url.path});
    control->send(protocol::encode(req));
    auto frame = co_await control->read_frame();
    if (!frame) co_return frame.status();
    if (frame->type != protocol::FrameType::kSessionOpened)
      co_return unexpected_frame(*frame, protocol::FrameType::kSessionOpened, control->peer());
    auto opened = protocol::decode_session_opened(frame->payload);
    if (!opened) co_return opened.status();
    result_.established = true;

    // The server accepted: only now does anything appear under LOCAL_DIR.
    auto root = RootDir::open(local_dir_, /*create=*/true);
    if (!root) {
      control->close();
      co_return root.status();
    }
    auto shared_root = std::make_shared<const RootDir>(std::move(*root));
    auto journal = ReceiveJournal::open(*shared_root, hex_id(id_));
    if (!journal) {
      control->close();
      co_return journal.status();
    }
    protocol::OpenSession as_receiver{o_.chunk_size, streams, static_cast<protocol::OverwriteMode>(o_.overwrite),
                                      resume_, id_, ""};
    session_ = std::make_shared<ReceiverSession>(io_, pool_, *shared_root, budget_, std::move(as_receiver),
                                                 opened->session_id, control->peer(), std::move(*journal),
                                                 o_.fault_sigkill_after_chunks);
    session_->keep_alive(shared_root);
    session_->set_client_role();

    // Every data stream at once, as send does; the first failure (in stream order) wins.
    const JoinOne join_one = [&, tls = *tls, token, sid = opened->session_id](uint16_t i) {
      return join_stream(url, o_, tls, token, sid, i);
    };
    auto joined = co_await join_streams(streams, join_one);
    if (!joined) {
      control->close();
      co_return joined.status();
    }
    for (uint16_t i = 0; i < streams; ++i) asio::co_spawn(io_, session_->run_data((*joined)[i], i), asio::detached);
    report_progress();
    co_return co_await session_->run_control(control);
  }

  void report_progress() {
    if (!o_.on_progress || !session_) return;
    SessionStats st = session_->stats();
    Progress p;
    p.bytes_done = st.chunk_bytes_written;
    p.wire_bytes = st.chunk_bytes_written;
    p.files_done = st.files_committed + st.files_failed;
    p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    o_.on_progress(p);
    progress_.expires_after(kProgressInterval);
    progress_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) self->report_progress();
    });
  }

  asio::io_context& io_;
  asio::thread_pool& pool_;
  MemoryBudget& budget_;
  const std::vector<GetSource>& sources_;
  const std::string& local_dir_;
  const SendOptions& o_;
  const protocol::Id128 id_;
  const protocol::ResumeMode resume_;
  asio::steady_timer progress_;
  std::chrono::steady_clock::time_point start_;
  std::shared_ptr<ReceiverSession> session_;
  Attempt result_;
};

Attempt run_attempt(const std::vector<GetSource>& sources, const std::string& local_dir, const SendOptions& o,
                    protocol::Id128 id, protocol::ResumeMode resume) {
  MemoryBudget budget(o.memory);  // outlives io and pool: queued handlers may release into it
  Attempt out;
  std::string crashed;
  {
    asio::io_context io(1);
    asio::thread_pool pool(worker_threads());
    auto attempt = std::make_shared<GetAttempt>(io, pool, budget, sources, local_dir, o, id, resume);
    asio::co_spawn(io, attempt->run(), [&crashed](std::exception_ptr e) {
      if (!e) return;
      try {
        std::rethrow_exception(e);
      } catch (const std::exception& ex) {
        crashed = ex.what();
      }
    });
    io.run();
    pool.join();
    out = attempt->result();
  }
  if (!crashed.empty()) out.status = Status(Error::kInternal, "get stopped: " + crashed);
  return out;
}

Status check_sources(const std::vector<GetSource>& sources, const SendOptions& o) {
  if (sources.empty()) return Status(Error::kUsage, "nothing to get: give ferry://HOST/EXPORT/PATH... before LOCAL_DIR");
  if (sources.size() > protocol::kMaxGetPaths)
    return Status(Error::kUsage, "at most " + std::to_string(protocol::kMaxGetPaths) + " sources per get");
  for (const auto& s : sources) {
    if (s.url.host != sources[0].url.host || s.url.port != sources[0].url.port)
      return Status(Error::kUsage, "every source of one get must be on the same server (" + sources[0].url.host + ":" +
                                       std::to_string(sources[0].url.port) + ")");
  }
  if (o.transport == Transport::kUdp)
    return Status(Error::kUsage,
                  "ferry get --transport udp is not supported: the UDP data path is bound by the receiver, and a "
                  "downloading client behind NAT would have to open it towards the server first; use tcp");
  return validate_send_options(o);
}

}  // namespace

namespace {
// A retry lists every entry again and finds what the earlier attempt committed already there
// ("skipped"): keep the earlier outcome for those, take the latest for the rest.
void merge_file_reports(const std::vector<FileReport>& attempt, std::vector<FileReport>* total) {
  std::map<std::string, size_t> at;
  for (size_t i = 0; i < total->size(); ++i) at[(*total)[i].path] = i;
  for (const FileReport& r : attempt) {
    if (r.path.empty()) continue;  // an id the plan never reached
    auto it = at.find(r.path);
    if (it == at.end()) {
      at[r.path] = total->size();
      total->push_back(r);
    } else if (!(r.action == "skipped" && (*total)[it->second].action == "sent")) {
      (*total)[it->second] = r;
    }
  }
}
}  // namespace

TransferReport get_files(const std::vector<GetSource>& sources, const std::string& local_dir,
                         const SendOptions& options) {
  TransferReport total;
  if (Status st = check_sources(sources, options); !st) {
    total.status = st;
    return total;
  }
  tune_allocator_for_chunks();
  raise_open_file_limit();
  protocol::ResumeMode resume = *resume_mode(options.resume);
  protocol::Id128 id = derive_get_id(sources, options);
  auto start = std::chrono::steady_clock::now();
  auto attempt = [&]() -> AttemptOutcome {
    Attempt a = run_attempt(sources, local_dir, options, id, resume);
    total.status = a.status;
    total.encrypted = a.encrypted;
    total.files_sent += a.stats.files_committed;
    total.files_failed = a.stats.files_failed;  // a retry re-plans the failed ones
    total.bytes_on_disk += a.stats.bytes_written;
    total.chunks_resumed += a.stats.chunks_resumed;
    total.chunks_resent += a.stats.chunks_rejected;
    total.bytes_on_wire += a.stats.chunk_bytes_written;
    merge_file_reports(a.files, &total.files);
    return {a.status, a.established};
  };
  // As for send: only a lost connection, once the server had accepted, is retried.
  ReconnectPolicy policy;
  policy.retry_timeout = options.retry_timeout;
  policy.on_reconnect = [&] {
    if (options.on_progress) {
      Progress p;
      p.reconnecting = true;
      options.on_progress(p);
    }
    ++total.reconnects;
  };
  total.status = run_with_reconnects(attempt, policy);
  total.files_total = total.files_sent + total.files_failed;
  total.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return total;
}

Result<std::vector<RemoteEntry>> list_remote(const FerryUrl& url, bool recursive, const SendOptions& options) {
  Result<std::vector<RemoteEntry>> out = Status(Error::kInternal, "ls did not run");
  asio::io_context io(1);
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        auto tls = client_tls(url, options);
        if (!tls) {
          out = tls.status();
          co_return;
        }
        const std::string token = options.token.empty() ? url.token : options.token;
        auto c = co_await connect_for_get(url, options, *tls, token);
        if (!c) {
          out = c.status();
          co_return;
        }
        auto conn = c->first;
        protocol::GetSession req;
        req.list_only = true;
        req.data_streams = 0;
        req.paths.push_back({false, url.path});
        // LIST_REQUEST goes right behind GET_SESSION (the server reads both before answering).
        conn->send(protocol::encode(req));
        conn->send(protocol::encode(protocol::ListRequest{false, !recursive}));
        auto frame = co_await conn->read_frame();
        if (!frame || frame->type != protocol::FrameType::kSessionOpened) {
          out = frame ? unexpected_frame(*frame, protocol::FrameType::kSessionOpened, conn->peer()) : frame.status();
          conn->close();
          co_return;
        }
        std::vector<RemoteEntry> entries;
        for (;;) {
          auto f = co_await conn->read_frame();
          if (!f) {
            out = f.status();
            break;
          }
          if (f->type == protocol::FrameType::kListEntries) {
            auto list = protocol::decode_list_entries(f->payload);
            if (!list) {
              out = list.status();
              break;
            }
            for (auto& e : list->entries) {
              if (Status st = validate_relative_path(e.entry.path); !st) {
                out = Status(Error::kProtocol, conn->peer() + " listed an invalid path: " + st.message());
                conn->close();
                co_return;
              }
              entries.push_back({std::move(e.entry.path), to_string(e.entry.type), e.entry.mode, e.entry.mtime_ns,
                                 e.entry.size, std::move(e.entry.link_target)});
            }
          } else if (f->type == protocol::FrameType::kListEnd) {
            auto end = protocol::decode_list_end(f->payload);
            if (!end) out = end.status();
            else if (!end->status) out = end->status;
            else if (end->total != entries.size())
              out = Status(Error::kProtocol, conn->peer() + " listed " + std::to_string(entries.size()) +
                                                 " entries but announced " + std::to_string(end->total));
            else out = std::move(entries);
            break;
          } else {
            out = unexpected_frame(*f, protocol::FrameType::kListEnd, conn->peer());
            break;
          }
        }
        conn->close();
      },
      [&out](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          out = Status(Error::kInternal, std::string("ls stopped: ") + ex.what());
        }
      });
  io.run();
  return out;
}

}  // namespace ferry
