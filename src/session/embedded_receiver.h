// The embedded receiver (Receiver::create): accepts connections, runs TLS, negotiates the
// version, checks the bearer token, and routes each connection to a ReceiverSession (control)
// or to the session it joins (data stream); a GET_SESSION makes it the sender of a get or ls.
// Private to src/session: receiver.cc holds the connection handling and upload sessions,
// receiver_get.cc the get/ls serving. The invariants are listed at the top of receiver.cc.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/memory_budget.h"
#include "crypto/bearer_token.h"
#include "ferry/receiver.h"
#include "io/export_source.h"
#include "io/safe_path.h"
#include "protocol/frames.h"
#include "session/file_sink.h"
#include "session/receiver_session.h"
#include "session/sender_session.h"
#include "session/total_rate.h"
#include "transport/frame_socket.h"

namespace ferry {

class TlsContext;

// What new connections are served with; replaced whole by reload().
struct ServeConfig {
  std::map<std::string, std::shared_ptr<const RootDir>> exports;  // empty: single-root mode
  std::map<std::string, std::shared_ptr<FileSinkFactory>> sinks;  // exports whose files go to sinks
  TokenVerifier verify;                                           // null: own token (or none)
};

// A connection that passed AUTH: who it is and what it may do.
struct Authenticated {
  std::shared_ptr<const ServeConfig> config;
  std::vector<ExportAccess> grants;  // with a verifier
  TokenDigest token{};
};

class EmbeddedReceiver final : public Receiver {
 public:
  EmbeddedReceiver(ReceiveOptions options, std::shared_ptr<const RootDir> root, std::string host,
                   std::shared_ptr<TlsContext> tls, std::string token, std::shared_ptr<const ServeConfig> config);

  Status bind(uint16_t port);

  std::string url() const override;
  uint16_t port() const override { return port_; }
  std::string token() const override { return token_; }
  std::string fingerprint() const override;
  Status run() override;
  void stop() override;
  void stop_accepting() override;
  Status shutdown(std::chrono::milliseconds grace) override;
  ReceiverMetrics metrics() const override;
  Status reload(std::vector<ExportSpec> exports, TokenVerifier verify) override;

 private:
  struct LiveSession {
    std::weak_ptr<ReceiverSession> session;
    TokenDigest token{};
  };

  // A get session between SESSION_OPENED and the last JOIN_STREAM. Network thread.
  struct PendingGet {
    TokenDigest token{};
    std::vector<std::shared_ptr<FrameSocket>> streams;  // by stream index; null until joined
    size_t joined = 0;
    std::unique_ptr<asio::steady_timer> all_joined;  // cancelled when the last stream joins
  };

  // Where a GET_SESSION's paths lead: one export root and what to walk beneath it.
  struct GetPlan {
    std::shared_ptr<const RootDir> root;
    std::vector<ExportWalk> walks;
  };

  // --- receiver.cc: connections, handshake, upload sessions, shutdown ---------------------
  std::shared_ptr<const ServeConfig> config() const;
  void close_acceptor();
  // Network thread. Sessions run on for `grace`, then end as if their sender had vanished
  // (journals flushed, partial files kept for resume); run() returns once they are gone.
  void begin_shutdown(std::chrono::milliseconds grace);
  // A session (upload or get) named `name` ended with `outcome`: a failure is logged and (but
  // for kPartial) counted; with --once the receiver stops with that status. Then session_ended().
  void session_finished(const std::string& name, const Status& outcome);
  // Ends run() once shutdown is under way and no session is left.
  void session_ended();
  asio::awaitable<void> accept_loop();
  void refuse(FrameSocket& conn, Error code, const std::string& message);
  // Logged with the peer address, counted, answered with kRefused, closed.
  void refuse_auth(FrameSocket& conn, const std::string& message, const std::string& why);
  // A peer that connects and then says nothing must not hold a connection forever.
  asio::awaitable<Result<Frame>> read_handshake_frame(FrameSocket& conn);
  asio::awaitable<Status> tls_handshake(FrameSocket& conn);
  // AUTH: the receiver's own token, or the verifier's answer. With neither (plaintext ferry
  // recv) every token is accepted: there is no secret to protect on a plaintext link.
  Result<Authenticated> authenticate(const std::string& token);
  asio::awaitable<void> serve(std::shared_ptr<FrameSocket> conn);
  asio::awaitable<void> open_session(std::shared_ptr<FrameSocket> conn, Frame frame, Authenticated who);
  // total_rate_cap: every half second, split the total among the sessions that are moving
  // data (received bytes since the last look, or on UDP) and tell the UDP senders their new
  // share. TCP sessions need no telling: they all claim on the same clock.
  asio::awaitable<void> share_loop();
  size_t live_sessions() const;

  // --- receiver_get.cc: get and ls, this server in the sender role (docs/protocol.md "Roles")
  void join_get(std::shared_ptr<FrameSocket> conn, PendingGet& pg, const protocol::JoinStream& join,
                const TokenDigest& token);
  // Checks access and paths before anything is read. *auth_refusal: the refusal is an
  // authorization failure (logged and counted as one).
  Result<GetPlan> plan_get(const protocol::GetSession& req, const Authenticated& who, bool* auth_refusal);
  // Runs `fn` on the worker pool (disk work never runs on the network thread); its result is
  // posted back to the network thread into `*result`, and `done` is cancelled. Not a
  // coroutine on purpose: g++ 12 mishandles lambda temporaries passed into co_await
  // expressions (double destruction), so callers name the lambda and await `done`.
  template <typename T, typename Fn>
  void post_to_pool(Fn fn, std::shared_ptr<std::optional<T>> result, std::shared_ptr<asio::steady_timer> done);
  asio::awaitable<void> serve_get(std::shared_ptr<FrameSocket> conn, Frame frame, Authenticated who);
  // ls: the listing in LIST_ENTRIES batches, then LIST_END; the walk runs on the pool.
  // LIST_REQUEST's hash flag is for sync; a listing never carries hashes.
  asio::awaitable<void> serve_list(std::shared_ptr<FrameSocket> conn, GetPlan plan);

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

}  // namespace ferry
