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
//
// This file: connections, the handshake, upload sessions (OPEN_SESSION, JOIN_STREAM),
// limits, metrics, reload and shutdown. The get/ls serving is in receiver_get.cc.
#include "ferry/receiver.h"

#include <openssl/rand.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/log.h"
#include "crypto/tls_context.h"
#include "ferry/url.h"
#include "session/embedded_receiver.h"
#include "session/process_limits.h"

namespace ferry {
namespace {

using namespace asio::experimental::awaitable_operators;

constexpr const char* kAuthFailed = "authentication failed: unknown or revoked token";

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

}  // namespace

EmbeddedReceiver::EmbeddedReceiver(ReceiveOptions options, std::shared_ptr<const RootDir> root, std::string host,
                                   std::shared_ptr<TlsContext> tls, std::string token,
                                   std::shared_ptr<const ServeConfig> config)
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

Status EmbeddedReceiver::bind(uint16_t port) {
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

std::string EmbeddedReceiver::url() const {
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

std::string EmbeddedReceiver::fingerprint() const { return tls_ ? tls_->fingerprint() : std::string(); }

Status EmbeddedReceiver::run() {
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

void EmbeddedReceiver::stop() {
  asio::post(io_, [this] {
    close_acceptor();
    io_.stop();
  });
}

void EmbeddedReceiver::stop_accepting() {
  asio::post(io_, [this] { close_acceptor(); });
}

Status EmbeddedReceiver::shutdown(std::chrono::milliseconds grace) {
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

ReceiverMetrics EmbeddedReceiver::metrics() const {
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

Status EmbeddedReceiver::reload(std::vector<ExportSpec> exports, TokenVerifier verify) {
  if (exports.empty() && !root_)
    return Status(Error::kUsage, "reload: a receiver started with exports needs at least one");
  auto config = make_config(exports, std::move(verify));
  if (!config) return config.status();
  std::lock_guard lock(config_mu_);
  config_ = std::move(*config);
  return Status::ok();
}

std::shared_ptr<const ServeConfig> EmbeddedReceiver::config() const {
  std::lock_guard lock(config_mu_);
  return config_;
}

void EmbeddedReceiver::close_acceptor() {
  boost::system::error_code ignored;
  acceptor_.close(ignored);
}

void EmbeddedReceiver::begin_shutdown(std::chrono::milliseconds grace) {
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

void EmbeddedReceiver::session_finished(const std::string& name, const Status& outcome) {
  if (!outcome) {
    log::warning(name + ": " + outcome.to_string());
    if (outcome.code() != Error::kPartial) ++errors_;
  }
  if (options_.once && !once_done_) {
    once_done_ = true;
    result_ = outcome;
    stop();
  }
  session_ended();
}

void EmbeddedReceiver::session_ended() {
  if (shutting_down_ && sessions_.empty() && gets_.empty()) {
    if (shutdown_timer_) shutdown_timer_->cancel();
    io_.stop();
  }
}

asio::awaitable<void> EmbeddedReceiver::accept_loop() {
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

void EmbeddedReceiver::refuse(FrameSocket& conn, Error code, const std::string& message) {
  log::warning(conn.peer() + ": " + message);
  ++errors_;
  conn.send(protocol::encode(protocol::ErrorFrame{static_cast<uint16_t>(code), message}));
  conn.close_after_flush();
}

void EmbeddedReceiver::refuse_auth(FrameSocket& conn, const std::string& message, const std::string& why) {
  log::warning("auth failure from " + conn.peer() + ": " + why);
  ++auth_failures_;
  conn.send(protocol::encode(protocol::ErrorFrame{static_cast<uint16_t>(Error::kRefused), message}));
  conn.close_after_flush();
}

asio::awaitable<Result<Frame>> EmbeddedReceiver::read_handshake_frame(FrameSocket& conn) {
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

asio::awaitable<Status> EmbeddedReceiver::tls_handshake(FrameSocket& conn) {
  asio::steady_timer timer(io_, options_.handshake_timeout);
  auto outcome = co_await (conn.handshake() || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (outcome.index() == 1) co_return Status(Error::kNetwork, "no TLS handshake within " +
                                                                  std::to_string(options_.handshake_timeout.count()) + " ms");
  co_return std::get<0>(std::move(outcome));
}

Result<Authenticated> EmbeddedReceiver::authenticate(const std::string& token) {
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

asio::awaitable<void> EmbeddedReceiver::serve(std::shared_ptr<FrameSocket> conn) {
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

asio::awaitable<void> EmbeddedReceiver::open_session(std::shared_ptr<FrameSocket> conn, Frame frame,
                                                   Authenticated who) {
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
  session_finished("session " + hex_id(id).substr(0, 8), outcome);
}

asio::awaitable<void> EmbeddedReceiver::share_loop() {
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

size_t EmbeddedReceiver::live_sessions() const {
  size_t n = pending_gets_.size();
  for (const auto& [id, live] : sessions_) n += !live.session.expired();
  for (const auto& [id, weak] : gets_) n += !weak.expired();
  return n;
}

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
