// The embedded receiver: accepts connections, runs TLS, negotiates the version, checks the
// bearer token, and routes each connection to a ReceiverSession (control) or to the session
// it joins (data stream). ferryd drives it through the Receiver hooks (exports, token
// verifier, limits, metrics, reload, graceful shutdown).
//
// Invariants:
//  - nothing touches the disk for a connection before its AUTH succeeded (no session, no
//    journal, no directory) and, with exports, before its token was found to grant write
//    access to the export its destination names;
//  - a data stream joins only a session opened with the same token (compared by digest, in
//    constant time);
//  - sessions keep the exports and verifier they were opened under (reload() swaps a shared
//    snapshot for new connections only);
//  - a get (GET_SESSION) reads nothing before its token was found to grant read access to
//    the export, and reads only beneath that export's root, never through a symlink
//    (io/export_source.h); the server then plays the sender role on the client's connections.
#include "ferry/receiver.h"

#include <openssl/rand.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "core/log.h"
#include "core/memory_budget.h"
#include "crypto/bearer_token.h"
#include "crypto/tls_context.h"
#include "ferry/url.h"
#include "io/safe_path.h"
#include "io/export_source.h"
#include "session/process_limits.h"
#include "session/receiver_session.h"
#include "session/sender_session.h"

namespace ferry {
namespace {

using namespace asio::experimental::awaitable_operators;

constexpr const char* kAuthFailed = "authentication failed: unknown or revoked token";

// What new connections are served with; replaced whole by reload().
struct ServeConfig {
  std::map<std::string, std::shared_ptr<const RootDir>> exports;  // empty: single-root mode
  std::map<std::string, std::shared_ptr<FileSinkFactory>> sinks;  // exports whose files go to sinks
  TokenVerifier verify;                                           // null: own token (or none)
};

Result<std::shared_ptr<const ServeConfig>> make_config(const std::vector<ExportSpec>& exports, TokenVerifier verify) {
  auto c = std::make_shared<ServeConfig>();
  c->verify = std::move(verify);
  for (const auto& e : exports) {
    if (e.name.empty() || e.name == "." || e.name == ".." || e.name.find('/') != std::string::npos ||
        e.name.find('\0') != std::string::npos)
      return Status(Error::kUsage, "export name '" + e.name + "' is not a single path component");
    if (c->exports.count(e.name)) return Status(Error::kUsage, "export '" + e.name + "' is defined twice");
    auto root = RootDir::open(e.root, /*create=*/false);
    if (!root) return Status(root.status().code(), "export '" + e.name + "': " + root.status().message());
    c->exports[e.name] = std::make_shared<const RootDir>(std::move(*root));
    if (e.sinks) c->sinks[e.name] = e.sinks;
  }
  return std::shared_ptr<const ServeConfig>(std::move(c));
}

// A connection that passed AUTH: who it is and what it may do.
struct Authenticated {
  std::shared_ptr<const ServeConfig> config;
  std::vector<ExportAccess> grants;  // with a verifier
  TokenDigest token{};
};

class EmbeddedReceiver final : public Receiver {
 public:
  EmbeddedReceiver(ReceiveOptions options, std::shared_ptr<const RootDir> root, std::string host,
                   std::shared_ptr<TlsContext> tls, std::string token, std::shared_ptr<const ServeConfig> config)
      : options_(std::move(options)),
        root_(std::move(root)),
        host_(std::move(host)),
        tls_(std::move(tls)),
        token_(std::move(token)),
        token_digest_(token_digest(token_)),
        config_(std::move(config)),
        budget_(options_.memory),
        pool_(worker_threads()),
        acceptor_(io_) {}

  Status bind(uint16_t port) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(host_, ec);
    if (ec) return Status(Error::kUsage, "--listen: '" + host_ + "' is not an IP address");
    tcp::endpoint ep(addr, port);
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(tcp::acceptor::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return Status(Error::kNetwork, "listen on " + endpoint_text(ep) + ": " + ec.message());
    port_ = acceptor_.local_endpoint().port();
    return Status::ok();
  }

  std::string url() const override {
    FerryUrl u;
    u.host = host_;
    if (u.host == "0.0.0.0" || u.host == "::") {
      char name[256] = {};
      if (gethostname(name, sizeof name - 1) == 0 && name[0]) u.host = name;
    }
    u.port = port_;
    u.token = token_;
    u.fingerprint = fingerprint();
    return u.to_string();
  }
  uint16_t port() const override { return port_; }
  std::string token() const override { return token_; }
  std::string fingerprint() const override { return tls_ ? tls_->fingerprint() : std::string(); }

  Status run() override {
    {
      std::lock_guard lock(run_mu_);
      if (stopped_) return result_;
      running_ = true;
    }
    tune_allocator_for_chunks();
    raise_open_file_limit();
    asio::co_spawn(io_, accept_loop(), asio::detached);
    if (total_rate_) asio::co_spawn(io_, share_loop(), asio::detached);
    io_.run();
    pool_.join();
    std::lock_guard lock(run_mu_);
    running_ = false;
    stopped_ = true;
    run_cv_.notify_all();
    return result_;
  }

  void stop() override {
    asio::post(io_, [this] {
      close_acceptor();
      io_.stop();
    });
  }

  void stop_accepting() override {
    asio::post(io_, [this] { close_acceptor(); });
  }

  Status shutdown(std::chrono::milliseconds grace) override {
    {
      std::lock_guard lock(run_mu_);
      if (!running_) {
        stopped_ = true;  // a later run() returns at once
        return Status::ok();
      }
    }
    asio::post(io_, [this, grace] { begin_shutdown(grace); });
    std::unique_lock lock(run_mu_);
    // Sessions get `grace`; ending them and draining their pool work is bounded too.
    if (!run_cv_.wait_for(lock, grace + std::chrono::seconds(30), [this] { return !running_; }))
      return Status(Error::kInternal, "receiver did not stop within " + std::to_string(grace.count()) + " ms + 30 s");
    return Status::ok();
  }

  ReceiverMetrics metrics() const override {
    ReceiverMetrics m;
    m.sessions_total = sessions_total_;
    m.auth_failures = auth_failures_;
    m.errors = errors_;
    std::lock_guard lock(sessions_mu_);
    m.bytes_received = ended_bytes_;
    m.files_committed = ended_committed_;
    m.files_failed = ended_failed_;
    m.bytes_sent = ended_bytes_sent_;
    m.get_sessions_total = get_sessions_total_;
    for (const auto& [id, weak] : gets_) {
      auto g = weak.lock();
      if (!g) continue;
      ++m.sessions_active;
      ++m.get_sessions_active;
      m.bytes_sent += g->payload_bytes_sent();
    }
    for (const auto& [id, live] : sessions_) {
      auto s = live.session.lock();
      if (!s) continue;
      ++m.sessions_active;
      SessionStats st = s->stats();
      m.bytes_received += st.bytes_written;
      m.files_committed += st.files_committed;
      m.files_failed += st.files_failed;
    }
    return m;
  }

  Status reload(std::vector<ExportSpec> exports, TokenVerifier verify) override {
    if (exports.empty() && !root_)
      return Status(Error::kUsage, "reload: a receiver started with exports needs at least one");
    auto config = make_config(exports, std::move(verify));
    if (!config) return config.status();
    std::lock_guard lock(config_mu_);
    config_ = std::move(*config);
    return Status::ok();
  }

 private:
  struct LiveSession {
    std::weak_ptr<ReceiverSession> session;
    TokenDigest token{};
  };

  std::shared_ptr<const ServeConfig> config() const {
    std::lock_guard lock(config_mu_);
    return config_;
  }

  void close_acceptor() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
  }

  // Network thread. Sessions run on for `grace`, then end as if their sender had vanished
  // (journals flushed, partial files kept for resume); run() returns once they are gone.
  void begin_shutdown(std::chrono::milliseconds grace) {
    close_acceptor();
    shutting_down_ = true;
    log::info("shutting down: " + std::to_string(sessions_.size()) + " sessions, grace " +
              std::to_string(grace.count()) + " ms");
    if (sessions_.empty() && gets_.empty()) {
      io_.stop();
      return;
    }
    shutdown_timer_ = std::make_unique<asio::steady_timer>(io_, grace);
    shutdown_timer_->async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      for (auto& [id, live] : sessions_)
        if (auto s = live.session.lock()) s->terminate(Status(Error::kInterrupted, "receiver shutting down"));
      for (auto& [id, weak] : gets_)
        if (auto g = weak.lock()) g->terminate(Status(Error::kInterrupted, "server shutting down"));
    });
  }

  void session_ended() {
    if (shutting_down_ && sessions_.empty() && gets_.empty()) {
      if (shutdown_timer_) shutdown_timer_->cancel();
      io_.stop();
    }
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec == asio::error::operation_aborted || !acceptor_.is_open()) co_return;
        log::warning("accept: " + ec.message());
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto remote = socket.remote_endpoint(ignored);
      std::string peer = "sender " + endpoint_text(remote);
      auto conn = tls_ ? std::make_shared<FrameSocket>(std::move(socket), peer, tls_)
                       : std::make_shared<FrameSocket>(std::move(socket), peer);
      asio::co_spawn(io_, serve(conn), [](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          log::error(std::string("connection handler failed: ") + ex.what());
        }
      });
    }
  }

  void refuse(FrameSocket& conn, Error code, const std::string& message) {
    log::warning(conn.peer() + ": " + message);
    ++errors_;
    conn.send(protocol::encode(protocol::ErrorFrame{static_cast<uint16_t>(code), message}));
    conn.close_after_flush();
  }

  // Logged with the peer address, counted, answered with kRefused, closed.
  void refuse_auth(FrameSocket& conn, const std::string& message, const std::string& why) {
    log::warning("auth failure from " + conn.peer() + ": " + why);
    ++auth_failures_;
    conn.send(protocol::encode(protocol::ErrorFrame{static_cast<uint16_t>(Error::kRefused), message}));
    conn.close_after_flush();
  }

  // A peer that connects and then says nothing must not hold a connection forever.
  asio::awaitable<Result<Frame>> read_handshake_frame(FrameSocket& conn) {
    asio::steady_timer timer(io_, options_.handshake_timeout);
    auto outcome = co_await (conn.read_frame() || timer.async_wait(asio::use_awaitable));
    if (outcome.index() == 1) {
      log::warning(conn.peer() + ": no handshake within " + std::to_string(options_.handshake_timeout.count()) +
                   " ms; closing");
      conn.close();
      co_return Status(Error::kNetwork, "handshake timed out");
    }
    co_return std::get<0>(std::move(outcome));
  }

  asio::awaitable<Status> tls_handshake(FrameSocket& conn) {
    asio::steady_timer timer(io_, options_.handshake_timeout);
    auto outcome = co_await (conn.handshake() || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
    if (outcome.index() == 1) co_return Status(Error::kNetwork, "no TLS handshake within " +
                                                                    std::to_string(options_.handshake_timeout.count()) + " ms");
    co_return std::get<0>(std::move(outcome));
  }

  // AUTH: the receiver's own token, or the verifier's answer. With neither (plaintext ferry
  // recv) every token is accepted: there is no secret to protect on a plaintext link.
  Result<Authenticated> authenticate(const std::string& token) {
    Authenticated a;
    a.config = config();
    a.token = token_digest(token);
    if (a.config->verify) {
      auto grants = a.config->verify(token);
      if (!grants) return grants.status();
      a.grants = std::move(*grants);
    } else if (!token_.empty() && !digests_equal(a.token, token_digest_)) {
      return Status(Error::kRefused, token.empty() ? "no token" : "wrong token");
    }
    return a;
  }

  asio::awaitable<void> serve(std::shared_ptr<FrameSocket> conn) {
    if (Status st = co_await tls_handshake(*conn); !st) {
      // Port scanners land here too; a client that rejected our certificate (wrong pin or
      // CA) as well, which is why failed handshakes count as authentication failures.
      log::warning("auth failure from " + conn->peer() + ": " + st.message());
      ++auth_failures_;
      conn->close();
      co_return;
    }
    auto hello_frame = co_await read_handshake_frame(*conn);
    if (!hello_frame) co_return;
    if (hello_frame->type != protocol::FrameType::kHello) co_return refuse(*conn, Error::kProtocol, "expected HELLO");
    auto hello = protocol::decode_hello(hello_frame->payload);
    if (!hello) co_return refuse(*conn, Error::kProtocol, hello.status().message());
    uint16_t version = std::min(hello->max_version, protocol::kMaxVersion);
    if (version < hello->min_version || version < protocol::kMinVersion)
      co_return refuse(*conn, Error::kProtocol,
                       "unsupported protocol version; this receiver speaks " + std::to_string(protocol::kMinVersion) +
                           ".." + std::to_string(protocol::kMaxVersion));
    conn->send(protocol::encode(protocol::Welcome{version, protocol::kMaxChunkSize, protocol::kMaxStreams}));

    auto auth_frame = co_await read_handshake_frame(*conn);
    if (!auth_frame) co_return;
    if (auth_frame->type != protocol::FrameType::kAuth) {
      log::warning("auth failure from " + conn->peer() + ": expected AUTH, got " + protocol::to_string(auth_frame->type));
      ++auth_failures_;
      conn->send(protocol::encode(protocol::ErrorFrame{static_cast<uint16_t>(Error::kRefused), kAuthFailed}));
      conn->close_after_flush();
      co_return;
    }
    auto auth = protocol::decode_auth(auth_frame->payload);
    if (!auth) co_return refuse(*conn, Error::kProtocol, auth.status().message());
    auto who = authenticate(auth->token);
    if (!who) co_return refuse_auth(*conn, kAuthFailed, who.status().message());
    conn->send(protocol::encode_auth_ok());

    auto frame = co_await read_handshake_frame(*conn);
    if (!frame) co_return;
    if (frame->type == protocol::FrameType::kOpenSession) {
      co_await open_session(conn, std::move(*frame), std::move(*who));
    } else if (frame->type == protocol::FrameType::kGetSession && version >= protocol::kVersionGet) {
      co_await serve_get(conn, std::move(*frame), std::move(*who));
    } else if (frame->type == protocol::FrameType::kJoinStream) {
      auto join = protocol::decode_join_stream(frame->payload);
      if (!join) co_return refuse(*conn, Error::kProtocol, join.status().message());
      if (auto pg = pending_gets_.find(join->session_id); pg != pending_gets_.end()) {
        co_return join_get(conn, *pg->second, *join, who->token);
      }
      auto it = sessions_.find(join->session_id);
      auto session = it == sessions_.end() ? nullptr : it->second.session.lock();
      // The same answer for "no such session" and "another token's session": no probing.
      if (!session || !digests_equal(it->second.token, who->token))
        co_return refuse(*conn, Error::kRefused, "no such session");
      conn->send(protocol::encode_stream_joined());
      co_await session->run_data(conn, join->stream_index);
    } else {
      refuse(*conn, Error::kProtocol, std::string("expected OPEN_SESSION, GET_SESSION or JOIN_STREAM, got ") +
                                          protocol::to_string(frame->type));
    }
  }

  asio::awaitable<void> open_session(std::shared_ptr<FrameSocket> conn, Frame frame, Authenticated who) {
    auto open = protocol::decode_open_session(frame.payload);
    if (!open) co_return refuse(*conn, Error::kProtocol, open.status().message());
    if (!open->dest_path.empty()) {
      if (Status st = validate_relative_path(open->dest_path); !st)
        co_return refuse(*conn, Error::kRefused, "destination: " + st.message());
    }
    if (options_.max_sessions && live_sessions() >= options_.max_sessions)
      co_return refuse(*conn, Error::kRefused,
                       "busy: this receiver serves at most " + std::to_string(options_.max_sessions) +
                           " sessions at once; try again later");
    // Exports: the destination's first component names the export, the rest is below it.
    std::shared_ptr<const RootDir> root = root_;
    std::string export_name;
    if (!who.config->exports.empty()) {
      std::string name = open->dest_path.substr(0, open->dest_path.find('/'));
      if (name.empty())
        co_return refuse(*conn, Error::kRefused, "no export named in the destination (ferry://HOST/EXPORT/PATH)");
      if (who.config->verify) {
        bool writable = false;
        for (const auto& g : who.grants) writable |= g.export_name == name && g.write;
        if (!writable)
          co_return refuse_auth(*conn, "token has no write access to export '" + name + "'",
                                "token has no write access to export '" + name + "'");
      }
      auto e = who.config->exports.find(name);
      if (e == who.config->exports.end()) co_return refuse(*conn, Error::kRefused, "no export named '" + name + "'");
      root = e->second;
      export_name = name;
      open->dest_path = name.size() < open->dest_path.size() ? open->dest_path.substr(name.size() + 1) : "";
    }

    protocol::Id128 id{};
    if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1)
      co_return refuse(*conn, Error::kInternal, "no randomness for a session id");
    std::unique_ptr<ReceiveJournal> journal;
    protocol::Id128 tid = open->transfer_id;
    if (tid != protocol::Id128{}) {
      // A sender reconnecting after a dropped link may find its old session still here
      // (the receiver had not noticed the drop): the new connection wins.
      if (auto old = by_transfer_[tid].lock()) old->supersede();
      auto j = ReceiveJournal::open(*root, hex_id(tid));
      for (int wait = 0; !j && j.status().code() == Error::kRefused && wait < 100; ++wait) {
        asio::steady_timer t(io_, std::chrono::milliseconds(100));
        co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
        j = ReceiveJournal::open(*root, hex_id(tid));
      }
      if (!j) co_return refuse(*conn, j.status().code(), j.status().message());
      journal = std::move(*j);
    }
    auto session = std::make_shared<ReceiverSession>(io_, pool_, *root, budget_, std::move(*open), id, conn->peer(),
                                                     std::move(journal), options_.fault_sigkill_after_chunks);
    session->keep_alive(root);
    if (auto s = who.config->sinks.find(export_name); s != who.config->sinks.end()) session->set_sinks(s->second);
    session->set_rate_limit(options_.max_session_rate);
    session->set_total_rate(total_rate_);
    session->set_udp_ports(options_.udp_port_first, options_.udp_port_last);
    session->set_udp_faults(options_.udp_faults);  // TEST-ONLY (no-op unless set)
    {
      std::lock_guard lock(sessions_mu_);
      sessions_[id] = LiveSession{session, who.token};
    }
    ++sessions_total_;
    if (tid != protocol::Id128{}) by_transfer_[tid] = session;
    log::info("session " + hex_id(id).substr(0, 8) + " from " + conn->peer());
    Status outcome = co_await session->run_control(conn);
    {
      std::lock_guard lock(sessions_mu_);
      sessions_.erase(id);
      SessionStats st = session->stats();
      ended_bytes_ += st.bytes_written;
      ended_committed_ += st.files_committed;
      ended_failed_ += st.files_failed;
    }
    if (auto it = by_transfer_.find(tid); it != by_transfer_.end() && it->second.lock() == session)
      by_transfer_.erase(it);
    if (!outcome) {
      log::warning("session " + hex_id(id).substr(0, 8) + ": " + outcome.to_string());
      if (outcome.code() != Error::kPartial) ++errors_;
    }
    if (options_.once && !once_done_) {
      once_done_ = true;
      result_ = outcome;
      stop();
    }
    session_ended();
  }

  // total_rate_cap: every half second, split the total among the sessions that are moving data
  // (received bytes since the last look, or on UDP) and tell the UDP senders their new share.
  // TCP sessions need no telling: they all claim on the same clock.
  asio::awaitable<void> share_loop() {
    asio::steady_timer tick(io_);
    std::map<protocol::Id128, uint64_t> seen;  // bytes received at the last look
    for (;;) {
      tick.expires_after(std::chrono::milliseconds(500));
      co_await tick.async_wait(asio::as_tuple(asio::use_awaitable));
      std::vector<std::shared_ptr<ReceiverSession>> live;
      {
        std::lock_guard lock(sessions_mu_);
        for (auto& [id, entry] : sessions_)
          if (auto s = entry.session.lock()) live.push_back(std::move(s));
      }
      std::map<protocol::Id128, uint64_t> now_seen;
      size_t active = 0;
      for (const auto& s : live) {
        const uint64_t got = s->bytes_received();
        auto it = seen.find(s->id());
        if (s->uses_udp() || it == seen.end() || it->second != got) ++active;
        now_seen[s->id()] = got;
      }
      seen = std::move(now_seen);
      total_rate_->set_share(TotalRate::share_of(total_rate_->rate(), active));
      for (const auto& s : live)
        if (s->uses_udp()) s->update_udp_share();
    }
  }

  size_t live_sessions() const {
    size_t n = pending_gets_.size();
    for (const auto& [id, live] : sessions_) n += !live.session.expired();
    for (const auto& [id, weak] : gets_) n += !weak.expired();
    return n;
  }

  // --- get and ls: this server in the sender role (docs/protocol.md "Roles") -----------------

  // A get session between SESSION_OPENED and the last JOIN_STREAM. Network thread.
  struct PendingGet {
    TokenDigest token{};
    std::vector<std::shared_ptr<FrameSocket>> streams;  // by stream index; null until joined
    size_t joined = 0;
    std::unique_ptr<asio::steady_timer> all_joined;  // cancelled when the last stream joins
  };

  void join_get(std::shared_ptr<FrameSocket> conn, PendingGet& pg, const protocol::JoinStream& join,
                const TokenDigest& token) {
    // The same answer as for an unknown session: no probing of other tokens' sessions.
    if (!digests_equal(pg.token, token)) return refuse(*conn, Error::kRefused, "no such session");
    if (join.stream_index >= pg.streams.size() || pg.streams[join.stream_index])
      return refuse(*conn, Error::kProtocol, "data stream index " + std::to_string(join.stream_index) +
                                                 " is out of range or already joined");
    conn->send(protocol::encode_stream_joined());
    pg.streams[join.stream_index] = std::move(conn);
    if (++pg.joined == pg.streams.size()) pg.all_joined->cancel();
  }

  // Where a GET_SESSION's paths lead: one export root and what to walk beneath it.
  struct GetPlan {
    std::shared_ptr<const RootDir> root;
    std::vector<ExportWalk> walks;
  };

  // Checks access and paths before anything is read. *auth_refusal: the refusal is an
  // authorization failure (logged and counted as one).
  Result<GetPlan> plan_get(const protocol::GetSession& req, const Authenticated& who, bool* auth_refusal) {
    GetPlan plan;
    plan.root = root_;
    std::string export_name;
    for (const auto& gp : req.paths) {
      if (!gp.path.empty()) {
        if (Status st = validate_relative_path(gp.path); !st) return Status(Error::kRefused, "source: " + st.message());
      }
      ExportWalk w;
      w.rel = gp.path;
      if (!who.config->exports.empty()) {
        std::string name = gp.path.substr(0, gp.path.find('/'));
        if (name.empty()) return Status(Error::kRefused, "no export named in the source (ferry://HOST/EXPORT/PATH)");
        if (!export_name.empty() && name != export_name)
          return Status(Error::kUsage, "every path of one get must be in the same export ('" + export_name + "', '" +
                                           name + "')");
        export_name = name;
        if (who.config->verify) {
          bool readable = false;
          for (const auto& g : who.grants) readable |= g.export_name == name && g.read;
          if (!readable) {
            *auth_refusal = true;
            return Status(Error::kRefused, "token has no read access to export '" + name + "'");
          }
        }
        auto e = who.config->exports.find(name);
        if (e == who.config->exports.end()) return Status(Error::kRefused, "no export named '" + name + "'");
        plan.root = e->second;
        w.rel = name.size() < gp.path.size() ? gp.path.substr(name.size() + 1) : "";
      }
      // rsync naming: "dir" arrives as dir/..., "dir/" as its contents; an export root by
      // its export's name, ferry recv's root ("") as its contents.
      if (!req.list_only && !gp.contents) w.name = gp.path.substr(gp.path.rfind('/') + 1);
      w.max_entries = protocol::kMaxFilesPerSession;
      plan.walks.push_back(std::move(w));
    }
    return plan;
  }

  // Runs `fn` on the worker pool (disk work never runs on the network thread); its result is
  // posted back to the network thread into `*result`, and `done` is cancelled. Not a
  // coroutine on purpose: g++ 12 mishandles lambda temporaries passed into co_await
  // expressions (double destruction), so callers name the lambda and await `done`.
  template <typename T, typename Fn>
  void post_to_pool(Fn fn, std::shared_ptr<std::optional<T>> result, std::shared_ptr<asio::steady_timer> done) {
    asio::post(pool_, [this, fn = std::move(fn), result, done]() mutable {
      auto r = std::make_shared<T>(fn());
      asio::post(io_, [result, done, r] {
        result->emplace(std::move(*r));
        done->cancel();
      });
    });
  }

  asio::awaitable<void> serve_get(std::shared_ptr<FrameSocket> conn, Frame frame, Authenticated who) {
    auto req = protocol::decode_get_session(frame.payload);
    if (!req) co_return refuse(*conn, Error::kProtocol, req.status().message());
    protocol::ListRequest list_req;
    if (req->list_only) {
      // ls sends LIST_REQUEST right behind GET_SESSION; read it before answering so a refusal
      // never closes a connection with unread bytes (which would reset it under the ERROR).
      auto lr = co_await read_handshake_frame(*conn);
      if (!lr) co_return;
      if (lr->type != protocol::FrameType::kListRequest)
        co_return refuse(*conn, Error::kProtocol, std::string("expected LIST_REQUEST, got ") + protocol::to_string(lr->type));
      auto decoded = protocol::decode_list_request(lr->payload);
      if (!decoded) co_return refuse(*conn, Error::kProtocol, decoded.status().message());
      list_req = *decoded;
    }
    bool auth_refusal = false;
    auto plan = plan_get(*req, who, &auth_refusal);
    if (!plan) {
      if (auth_refusal) co_return refuse_auth(*conn, plan.status().message(), plan.status().message());
      co_return refuse(*conn, plan.status().code(), plan.status().message());
    }
    if (options_.max_sessions && live_sessions() >= options_.max_sessions)
      co_return refuse(*conn, Error::kRefused,
                       "busy: this server serves at most " + std::to_string(options_.max_sessions) +
                           " sessions at once; try again later");
    if (req->list_only) {
      plan->walks[0].recursive = !list_req.one_level;
      co_return co_await serve_list(conn, std::move(*plan));
    }

    // Scan on the pool: every requested path beneath the export root, no symlink followed.
    // A path named twice (or inside another) is sent once.
    auto scan = [root = plan->root, walks = plan->walks, contents = req->paths]() -> Result<std::vector<FileEntry>> {
      std::vector<FileEntry> out;
      std::set<std::string> seen;
      for (size_t i = 0; i < walks.size(); ++i) {
        FileType top = FileType::kRegular;
        Status st = walk_export(*root, walks[i], [&](FileEntry e) {
          if (seen.insert(e.path).second) out.push_back(std::move(e));
        }, &top);
        if (!st) return st;
        if (contents[i].contents && top != FileType::kDirectory)
          return Status(Error::kUsage, "'" + contents[i].path + "/' is not a directory");
        if (out.size() > protocol::kMaxFilesPerSession)
          return Status(Error::kRefused, "more than " + std::to_string(protocol::kMaxFilesPerSession) + " entries requested");
      }
      return out;
    };
    using Files = Result<std::vector<FileEntry>>;
    auto scanned = std::make_shared<std::optional<Files>>();
    auto scan_done = std::make_shared<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
    post_to_pool<Files>(std::move(scan), scanned, scan_done);
    while (!*scanned) co_await scan_done->async_wait(asio::as_tuple(asio::use_awaitable));
    Files files = std::move(**scanned);
    if (!files) co_return refuse(*conn, files.status().code(), files.status().message());

    protocol::Id128 id{};
    if (RAND_bytes(id.data(), static_cast<int>(id.size())) != 1)
      co_return refuse(*conn, Error::kInternal, "no randomness for a session id");
    auto pending = std::make_shared<PendingGet>();
    pending->token = who.token;
    pending->streams.resize(req->data_streams);
    pending->all_joined = std::make_unique<asio::steady_timer>(io_, options_.handshake_timeout);
    pending_gets_[id] = pending;
    conn->send(protocol::encode(protocol::SessionOpened{id}));
    // The client connects the data streams (only client -> server gets through NAT); the
    // sender starts once all have joined.
    co_await pending->all_joined->async_wait(asio::as_tuple(asio::use_awaitable));
    pending_gets_.erase(id);
    if (pending->joined < pending->streams.size()) {
      for (auto& s : pending->streams)
        if (s) s->close();
      co_return refuse(*conn, Error::kNetwork,
                       "only " + std::to_string(pending->joined) + " of " + std::to_string(pending->streams.size()) +
                           " data streams joined within " + std::to_string(options_.handshake_timeout.count()) + " ms");
    }

    SendOptions so;
    so.chunk_size = req->chunk_size;
    so.streams = req->data_streams;
    CompressionSetting compression;
    if (req->compression == 0) compression.mode = CompressionSetting::Mode::kNone;
    else if (req->compression != protocol::kCompressionAuto) compression = {CompressionSetting::Mode::kLevel, req->compression};
    auto session = std::make_shared<SenderSession>(io_, pool_, std::move(*files), FerryUrl{}, so, compression,
                                                   req->transfer_id, protocol::ResumeMode::kOff);
    session->use_budget(budget_);
    session->set_rate_limit(options_.max_session_rate);
    session->set_source_opener([root = plan->root](const FileEntry& e) {
      return open_source_beneath(*root, e.source_path, e.size);
    });
    {
      std::lock_guard lock(sessions_mu_);
      gets_[id] = session;
    }
    ++sessions_total_;
    ++get_sessions_total_;
    log::info("get session " + hex_id(id).substr(0, 8) + " from " + conn->peer() + ": " +
              std::to_string(session->report().files_total) + " entries");
    co_await session->run_on(conn, std::move(pending->streams));
    Status outcome = session->report().status;
    {
      std::lock_guard lock(sessions_mu_);
      gets_.erase(id);
      ended_bytes_sent_ += session->payload_bytes_sent();
    }
    if (!outcome) {
      log::warning("get session " + hex_id(id).substr(0, 8) + ": " + outcome.to_string());
      if (outcome.code() != Error::kPartial) ++errors_;
    }
    if (options_.once && !once_done_) {
      once_done_ = true;
      result_ = outcome;
      stop();
    }
    session_ended();
  }

  // ls: the listing in LIST_ENTRIES batches, then LIST_END; the walk runs on the pool.
  // LIST_REQUEST's hash flag is for sync; a listing never carries hashes.
  asio::awaitable<void> serve_list(std::shared_ptr<FrameSocket> conn, GetPlan plan) {
    auto list = [root = plan.root, walk = plan.walks[0]]() -> Result<std::vector<protocol::ListEntry>> {
      std::vector<protocol::ListEntry> out;
      Status st = walk_export(*root, walk, [&](FileEntry e) {
        protocol::ListEntry le;
        le.entry = std::move(e);
        le.entry.source_path.clear();
        out.push_back(std::move(le));
      });
      if (!st) return st;
      return out;
    };
    using Entries = Result<std::vector<protocol::ListEntry>>;
    auto listed = std::make_shared<std::optional<Entries>>();
    auto list_done = std::make_shared<asio::steady_timer>(io_, asio::steady_timer::time_point::max());
    post_to_pool<Entries>(std::move(list), listed, list_done);
    while (!*listed) co_await list_done->async_wait(asio::as_tuple(asio::use_awaitable));
    Entries entries = std::move(**listed);
    if (!entries) co_return refuse(*conn, entries.status().code(), entries.status().message());
    protocol::Id128 id{};
    RAND_bytes(id.data(), static_cast<int>(id.size()));  // names nothing: a listing joins no streams
    conn->send(protocol::encode(protocol::SessionOpened{id}));
    protocol::ListEntries batch;
    size_t bytes = 0;
    for (auto& e : *entries) {
      size_t sz = protocol::encoded_size(e);
      if (bytes + sz > protocol::kMaxControlPayload - 16 * 1024 && !batch.entries.empty()) {
        conn->send(protocol::encode(batch));
        batch.entries.clear();
        bytes = 0;
      }
      bytes += sz;
      batch.entries.push_back(std::move(e));
    }
    if (!batch.entries.empty()) conn->send(protocol::encode(batch));
    conn->send(protocol::encode(protocol::ListEnd{static_cast<uint32_t>(entries->size()), Status::ok()}));
    conn->close_after_flush();
  }

  ReceiveOptions options_;
  std::shared_ptr<const RootDir> root_;  // single-root mode; null with exports
  std::string host_;
  uint16_t port_ = 0;
  std::shared_ptr<TlsContext> tls_;  // null: plaintext
  const std::string token_;          // ferry recv's own token; "" with a verifier or plaintext
  const TokenDigest token_digest_;

  mutable std::mutex config_mu_;
  std::shared_ptr<const ServeConfig> config_;

  // Declared before io_: handlers still queued when io_ is destroyed may hold sessions whose
  // destruction touches the budget.
  MemoryBudget budget_;
  asio::io_context io_{1};
  asio::thread_pool pool_;
  // total_rate_cap (null = none); sessions share it. Created before any session exists.
  std::shared_ptr<TotalRate> total_rate_ =
      options_.max_total_rate ? std::make_shared<TotalRate>(options_.max_total_rate) : nullptr;
  tcp::acceptor acceptor_;
  // Written on the network thread only; sessions_mu_ lets metrics() read it from others.
  mutable std::mutex sessions_mu_;
  std::map<protocol::Id128, LiveSession> sessions_;
  uint64_t ended_bytes_ = 0, ended_committed_ = 0, ended_failed_ = 0;  // sessions_mu_
  // Get sessions (this server sending), by session id; written on the network thread under
  // sessions_mu_ so metrics() can read them.
  std::map<protocol::Id128, std::weak_ptr<SenderSession>> gets_;
  std::map<protocol::Id128, std::shared_ptr<PendingGet>> pending_gets_;  // network thread
  uint64_t ended_bytes_sent_ = 0;                                        // sessions_mu_
  std::atomic<uint64_t> get_sessions_total_{0};
  std::map<protocol::Id128, std::weak_ptr<ReceiverSession>> by_transfer_;  // by transfer id
  std::atomic<uint64_t> sessions_total_{0}, auth_failures_{0}, errors_{0};
  bool once_done_ = false;
  bool shutting_down_ = false;  // network thread
  std::unique_ptr<asio::steady_timer> shutdown_timer_;
  Status result_;

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool running_ = false, stopped_ = false;  // run_mu_
};

}  // namespace

Result<std::unique_ptr<Receiver>> Receiver::create(const ReceiveOptions& options) {
  std::shared_ptr<const RootDir> root;
  if (options.exports.empty()) {
    if (options.root.empty()) return Status(Error::kUsage, "a receive root is required (--root DIR)");
    auto r = RootDir::open(options.root, /*create=*/true);
    if (!r) return r.status();
    root = std::make_shared<const RootDir>(std::move(*r));
  }
  std::string host;
  uint16_t port = kDefaultPort;
  if (Status st = parse_host_port(options.listen, &host, &port); !st) return st;
  auto config = make_config(options.exports, options.verify_token);
  if (!config) return config.status();
  std::shared_ptr<TlsContext> tls;
  if (!options.tls.plaintext) {
    auto ctx = TlsContext::server(options.tls);
    if (!ctx) return ctx.status();
    tls = *ctx;
  }
  // ferry recv's zero-setup secret: a random 128-bit token for the life of this receiver.
  std::string token;
  if (!options.verify_token && !options.tls.plaintext) {
    auto t = generate_token(16);
    if (!t) return t.status();
    token = *t;
  }
  auto receiver = std::make_unique<EmbeddedReceiver>(options, std::move(root), host, std::move(tls), std::move(token),
                                                     std::move(*config));
  if (Status st = receiver->bind(port); !st) return st;
  return std::unique_ptr<Receiver>(std::move(receiver));
}

}  // namespace ferry
