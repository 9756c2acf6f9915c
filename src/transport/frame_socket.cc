#include "transport/frame_socket.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "crypto/tls_context.h"

namespace ferry {

namespace {
// Frames coalesced into one writev: enough to batch many small-file chunks per syscall.
constexpr size_t kMaxBatchFrames = 64;
// A peer that refuses this side's certificate (or its lack of one) says so with a TLS alert,
// which under TLS 1.3 may arrive after the handshake, on the first read. Those become
// kRefused with a hint; anything else is a network error.
Status io_error(const boost::system::error_code& ec, const std::string& what, const std::string& peer) {
  if (ec.category() == asio::error::get_ssl_category()) {
    int reason = ERR_GET_REASON(static_cast<unsigned long>(ec.value()));
    if (reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED)
      return Status(Error::kRefused, peer + " requires a client certificate (--cert, --key): " + ec.message());
    if (reason == SSL_R_TLSV1_ALERT_UNKNOWN_CA || reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
        reason == SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN || reason == SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE ||
        reason == SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED || reason == SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED)
      return Status(Error::kRefused, peer + " did not accept the certificate presented: " + ec.message());
  }
  return Status(Error::kNetwork, what + peer + ": " + ec.message());
}

}  // namespace

std::string endpoint_text(const tcp::endpoint& ep) {
  auto a = ep.address();
  std::string h = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
  return h + ":" + std::to_string(ep.port());
}

FrameSocket::FrameSocket(tcp::socket socket, std::string peer)
    : stream_(std::in_place_index<0>, std::move(socket)), peer_(std::move(peer)) {}

FrameSocket::FrameSocket(tcp::socket socket, std::string peer, std::shared_ptr<TlsContext> tls)
    : tls_(std::move(tls)),
      stream_(std::in_place_index<1>, std::move(socket), tls_->native()),
      peer_(std::move(peer)) {}

tcp::socket& FrameSocket::tcp_socket() {
  if (auto* s = std::get_if<0>(&stream_)) return *s;
  return std::get<1>(stream_).next_layer();
}

asio::awaitable<Status> FrameSocket::handshake(const std::string& host) {
  auto* tls = std::get_if<1>(&stream_);
  if (!tls) co_return Status::ok();
  SSL* ssl = tls->native_handle();
  bool server = tls_->is_server();
  if (!server && !host.empty()) {
    boost::system::error_code ec;
    asio::ip::make_address(host, ec);
    bool is_ip = !ec;
    // SNI carries names only.
    if (!is_ip && SSL_set_tlsext_host_name(ssl, host.c_str()) != 1)
      co_return Status(Error::kInternal, "TLS: cannot set the server name for " + peer_);
    if (tls_->checks_host_name()) tls->set_verify_callback(asio::ssl::host_name_verification(host));
  }
  auto [ec] = co_await tls->async_handshake(server ? asio::ssl::stream_base::server : asio::ssl::stream_base::client,
                                            asio::as_tuple(asio::use_awaitable));
  if (ec) {
    long verify = SSL_get_verify_result(ssl);
    std::string detail = ec.message() + drain_openssl_errors();
    if (verify == X509_V_ERR_APPLICATION_VERIFICATION && tls_->pinned())
      co_return Status(Error::kRefused, "TLS: " + tls_->mismatch_message(ssl, peer_));
    if (verify != X509_V_OK)
      co_return Status(Error::kRefused, "TLS: " + peer_ + "'s certificate was not accepted: " +
                                            X509_verify_cert_error_string(verify) +
                                            (server ? "" : " (check --ca-file or --fingerprint)"));
    if (server && SSL_get_verify_mode(ssl) & SSL_VERIFY_FAIL_IF_NO_PEER_CERT &&
        !SSL_get0_peer_certificate(ssl))
      co_return Status(Error::kRefused, "TLS: " + peer_ + " presented no client certificate");
    if (Status st = io_error(ec, "", peer_); st.code() == Error::kRefused) co_return Status(st.code(), "TLS: " + st.message());
    co_return Status(Error::kNetwork, "TLS handshake with " + peer_ + " failed: " + detail +
                                          (server ? "" : " (a receiver started with --plaintext needs --plaintext here too)"));
  }
  co_return tls_->check_peer(ssl, peer_);
}

Result<std::vector<uint8_t>> FrameSocket::export_keying_material(std::string_view label,
                                                                 std::span<const uint8_t> context, size_t len) {
  auto* tls = std::get_if<1>(&stream_);
  if (!tls) return Status(Error::kUsage, "no keying material on the plaintext connection to " + peer_);
  std::vector<uint8_t> out(len);
  if (SSL_export_keying_material(tls->native_handle(), out.data(), len, label.data(), label.size(),
                                 context.data(), context.size(), /*use_context=*/1) != 1)
    return Status(Error::kInternal, "TLS exporter failed on the connection to " + peer_ + drain_openssl_errors());
  return out;
}

asio::awaitable<std::tuple<boost::system::error_code, size_t>> FrameSocket::read_exact(void* data, size_t n) {
  co_return co_await std::visit(
      [&](auto& s) { return asio::async_read(s, asio::buffer(data, n), asio::as_tuple(asio::use_awaitable)); },
      stream_);
}

void FrameSocket::send(std::vector<uint8_t> frame) {
  Pending p;
  p.owned = std::move(frame);
  enqueue(std::move(p));
}

void FrameSocket::send_chunk(const uint8_t (&prefix)[protocol::kChunkPrefixSize], const uint8_t* payload,
                             size_t payload_len, std::function<void(bool)> written) {
  Pending p;
  std::memcpy(p.prefix, prefix, sizeof prefix);
  p.prefix_len = sizeof prefix;
  p.payload = payload;
  p.payload_len = payload_len;
  p.written = std::move(written);
  enqueue(std::move(p));
}

void FrameSocket::enqueue(Pending p) {
  if (closed_) {
    if (p.written) p.written(false);
    return;
  }
  queued_bytes_ += p.size();
  queue_.push_back(std::move(p));
  if (!writing_) start_write();
}

void FrameSocket::close_after_flush() {
  close_when_flushed_ = true;
  if (!writing_ && queue_.empty()) close();
}

void FrameSocket::start_write() {
  if (closed_) return;
  if (queue_.empty()) {
    if (close_when_flushed_) close();
    return;
  }
  writing_ = true;
  std::vector<asio::const_buffer> bufs;
  in_flight_ = std::min(queue_.size(), kMaxBatchFrames);
  bufs.reserve(in_flight_ * 2);
  for (size_t i = 0; i < in_flight_; ++i) {
    const Pending& p = queue_[i];
    if (!p.owned.empty()) bufs.emplace_back(p.owned.data(), p.owned.size());
    if (p.prefix_len) bufs.emplace_back(p.prefix, p.prefix_len);
    if (p.payload_len) bufs.emplace_back(p.payload, p.payload_len);
  }
  auto done = [self = shared_from_this()](boost::system::error_code ec, size_t n) {
    self->writing_ = false;
    if (ec) {
      self->in_flight_ = 0;
      if (self->closed_) self->drain_queue();
      else self->fail(Status(Error::kNetwork, "sending to " + self->peer_ + ": " + ec.message()));
      return;
    }
    self->bytes_written_ += n;
    for (size_t i = 0; i < self->in_flight_; ++i) {
      Pending p = std::move(self->queue_.front());
      self->queue_.pop_front();
      self->queued_bytes_ -= p.size();
      if (p.written) p.written(true);
    }
    self->in_flight_ = 0;
    self->start_write();
  };
  std::visit([&](auto& s) { asio::async_write(s, bufs, std::move(done)); }, stream_);
}

void FrameSocket::fail(const Status& st) {
  if (closed_) return;
  close();
  if (on_error_) on_error_(st);
}

void FrameSocket::close() {
  if (closed_) return;
  closed_ = true;
  // No TLS close_notify: every ferry conversation ends with its own frames (SUMMARY, ERROR),
  // so a truncated stream is always detected at the protocol level.
  boost::system::error_code ignored;
  tcp_socket().shutdown(tcp::socket::shutdown_both, ignored);
  tcp_socket().close(ignored);
  // Entries being written are completed by the write handler; the rest now.
  drain_queue();
}

void FrameSocket::drain_queue() {
  std::deque<Pending> rest;
  while (queue_.size() > in_flight_) {
    rest.push_front(std::move(queue_.back()));
    queue_.pop_back();
  }
  for (auto& p : rest) {
    queued_bytes_ -= p.size();
    if (p.written) p.written(false);
  }
}

asio::awaitable<Result<Frame>> FrameSocket::read_frame(uint32_t max_chunk_size) {
  uint8_t header[protocol::kFrameHeaderSize];
  auto [ec, n] = co_await read_exact(header, sizeof header);
  if (ec) {
    if ((ec == asio::error::eof || ec == asio::ssl::error::stream_truncated) && n == 0)
      co_return Status(Error::kNetwork, "connection closed by " + peer_);
    co_return io_error(ec, "receiving from ", peer_);
  }
  auto h = protocol::decode_header(header, max_chunk_size);
  if (!h) co_return Status(Error::kProtocol, "from " + peer_ + ": " + h.status().message());
  Frame f{h->type, std::vector<uint8_t>(h->length)};
  if (h->length) {
    auto [ec2, n2] = co_await read_exact(f.payload.data(), f.payload.size());
    if (ec2) co_return io_error(ec2, "receiving from ", peer_);
  }
  co_return f;
}

}  // namespace ferry
