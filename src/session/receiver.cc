// The embedded receiver: accepts connections, negotiates the version, and routes each one to
// a ReceiverSession (control) or to the session it joins (data stream).
#include "ferry/receiver.h"

#include <openssl/rand.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <map>

#include "core/log.h"
#include "core/memory_budget.h"
#include "ferry/url.h"
#include "io/safe_path.h"
#include "session/process_limits.h"
#include "session/receiver_session.h"

namespace ferry {
namespace {

using namespace asio::experimental::awaitable_operators;

class EmbeddedReceiver final : public Receiver {
 public:
  EmbeddedReceiver(ReceiveOptions options, RootDir root, std::string host)
      : options_(std::move(options)),
        root_(std::move(root)),
        host_(std::move(host)),
        pool_(worker_threads()),
        acceptor_(io_),
        budget_(options_.memory) {}

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
    std::string h = host_;
    if (h == "0.0.0.0" || h == "::") {
      char name[256] = {};
      if (gethostname(name, sizeof name - 1) == 0 && name[0]) h = name;
    }
    if (h.find(':') != std::string::npos) h = "[" + h + "]";
    return "ferry://" + h + ":" + std::to_string(port_) + "/";
  }
  uint16_t port() const override { return port_; }

  Status run() override {
    tune_allocator_for_chunks();
    raise_open_file_limit();
    asio::co_spawn(io_, accept_loop(), asio::detached);
    io_.run();
    pool_.join();
    return result_;
  }

  void stop() override {
    asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      io_.stop();
    });
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec == asio::error::operation_aborted) co_return;
        log::warning("accept: " + ec.message());
        continue;
      }
      boost::system::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      auto remote = socket.remote_endpoint(ignored);
      auto conn = std::make_shared<FrameSocket>(std::move(socket), "sender " + endpoint_text(remote));
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
    conn.send(protocol::encode(protocol::ErrorFrame{static_cast<uint16_t>(code), message}));
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

  asio::awaitable<void> serve(std::shared_ptr<FrameSocket> conn) {
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

    auto frame = co_await read_handshake_frame(*conn);
    if (!frame) co_return;
    if (frame->type == protocol::FrameType::kOpenSession) {
      auto open = protocol::decode_open_session(frame->payload);
      if (!open) co_return refuse(*conn, Error::kProtocol, open.status().message());
      if (!open->dest_path.empty()) {
        if (Status st = validate_relative_path(open->dest_path); !st)
          co_return refuse(*conn, Error::kRefused, "destination: " + st.message());
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
        auto j = ReceiveJournal::open(root_, hex_id(tid));
        for (int wait = 0; !j && j.status().code() == Error::kRefused && wait < 100; ++wait) {
          asio::steady_timer t(io_, std::chrono::milliseconds(100));
          co_await t.async_wait(asio::as_tuple(asio::use_awaitable));
          j = ReceiveJournal::open(root_, hex_id(tid));
        }
        if (!j) co_return refuse(*conn, j.status().code(), j.status().message());
        journal = std::move(*j);
      }
      auto session = std::make_shared<ReceiverSession>(io_, pool_, root_, budget_, std::move(*open), id, conn->peer(),
                                                       std::move(journal), options_.fault_sigkill_after_chunks);
      session->set_udp_faults(options_.udp_faults);  // TEST-ONLY (no-op unless set)
      sessions_[id] = session;
      if (tid != protocol::Id128{}) by_transfer_[tid] = session;
      log::info("session " + hex_id(id).substr(0, 8) + " from " + conn->peer());
      Status outcome = co_await session->run_control(conn);
      sessions_.erase(id);
      if (auto it = by_transfer_.find(tid); it != by_transfer_.end() && it->second.lock() == session)
        by_transfer_.erase(it);
      if (!outcome) log::warning("session " + hex_id(id).substr(0, 8) + ": " + outcome.to_string());
      if (options_.once && !once_done_) {
        once_done_ = true;
        result_ = outcome;
        stop();
      }
    } else if (frame->type == protocol::FrameType::kJoinStream) {
      auto join = protocol::decode_join_stream(frame->payload);
      if (!join) co_return refuse(*conn, Error::kProtocol, join.status().message());
      auto it = sessions_.find(join->session_id);
      auto session = it == sessions_.end() ? nullptr : it->second.lock();
      if (!session) co_return refuse(*conn, Error::kRefused, "no such session");
      conn->send(protocol::encode_stream_joined());
      co_await session->run_data(conn, join->stream_index);
    } else {
      refuse(*conn, Error::kProtocol, std::string("expected OPEN_SESSION or JOIN_STREAM, got ") +
                                          protocol::to_string(frame->type));
    }
  }

  ReceiveOptions options_;
  RootDir root_;
  std::string host_;
  uint16_t port_ = 0;
  asio::io_context io_{1};
  asio::thread_pool pool_;
  tcp::acceptor acceptor_;
  MemoryBudget budget_;
  std::map<protocol::Id128, std::weak_ptr<ReceiverSession>> sessions_;
  std::map<protocol::Id128, std::weak_ptr<ReceiverSession>> by_transfer_;  // by transfer id
  bool once_done_ = false;
  Status result_;
};

}  // namespace

Result<std::unique_ptr<Receiver>> Receiver::create(const ReceiveOptions& options) {
  if (options.root.empty()) return Status(Error::kUsage, "a receive root is required (--root DIR)");
  std::string host;
  uint16_t port = kDefaultPort;
  if (Status st = parse_host_port(options.listen, &host, &port); !st) return st;
  auto root = RootDir::open(options.root, /*create=*/true);
  if (!root) return root.status();
  auto receiver = std::make_unique<EmbeddedReceiver>(options, std::move(*root), host);
  if (Status st = receiver->bind(port); !st) return st;
  return std::unique_ptr<Receiver>(std::move(receiver));
}

}  // namespace ferry
