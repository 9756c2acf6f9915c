// The get/ls side of the embedded receiver (session/embedded_receiver.h): a GET_SESSION makes
// this server the sender on connections the client opened. Invariants: nothing is read
// before the token was found to grant read access to the export, and only beneath that
// export's root, never through a symlink (io/export_source.h).
#include <openssl/rand.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <set>

#include "core/log.h"
#include "ferry/url.h"
#include "session/embedded_receiver.h"

namespace ferry {
namespace {

// accept_loop names every peer "sender ADDR" before it knows the role; a connection that
// carries a get or ls comes from a downloading client, and the server's messages about it
// (its log, the get session's errors) say so.
void name_as_client(FrameSocket& conn) {
  boost::system::error_code ec;
  auto remote = conn.tcp_socket().remote_endpoint(ec);
  if (!ec) conn.set_peer("client " + endpoint_text(remote));
}

}  // namespace

void EmbeddedReceiver::join_get(std::shared_ptr<FrameSocket> conn, PendingGet& pg, const protocol::JoinStream& join,
                                const TokenDigest& token) {
  name_as_client(*conn);
  // The same answer as for an unknown session: no probing of other tokens' sessions.
  if (!digests_equal(pg.token, token)) return refuse(*conn, Error::kRefused, "no such session");
  if (join.stream_index >= pg.streams.size() || pg.streams[join.stream_index])
    return refuse(*conn, Error::kProtocol, "data stream index " + std::to_string(join.stream_index) +
                                               " is out of range or already joined");
  conn->send(protocol::encode_stream_joined());
  pg.streams[join.stream_index] = std::move(conn);
  if (++pg.joined == pg.streams.size()) pg.all_joined->cancel();
}

Result<EmbeddedReceiver::GetPlan> EmbeddedReceiver::plan_get(const protocol::GetSession& req, const Authenticated& who,
                                                             bool* auth_refusal) {
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

template <typename T, typename Fn>
void EmbeddedReceiver::post_to_pool(Fn fn, std::shared_ptr<std::optional<T>> result,
                                    std::shared_ptr<asio::steady_timer> done) {
  asio::post(pool_, [this, fn = std::move(fn), result, done]() mutable {
    auto r = std::make_shared<T>(fn());
    asio::post(io_, [result, done, r] {
      result->emplace(std::move(*r));
      done->cancel();
    });
  });
}

asio::awaitable<void> EmbeddedReceiver::serve_get(std::shared_ptr<FrameSocket> conn, Frame frame,
                                                Authenticated who) {
  name_as_client(*conn);
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
  session_finished("get session " + hex_id(id).substr(0, 8), outcome);
}

asio::awaitable<void> EmbeddedReceiver::serve_list(std::shared_ptr<FrameSocket> conn, GetPlan plan) {
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

}  // namespace ferry
