#include "transport/frame_socket.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace ferry {

namespace {
// Frames coalesced into one writev: enough to batch many small-file chunks per syscall.
constexpr size_t kMaxBatchFrames = 64;
}  // namespace

std::string endpoint_text(const tcp::endpoint& ep) {
  auto a = ep.address();
  std::string h = a.is_v6() ? "[" + a.to_string() + "]" : a.to_string();
  return h + ":" + std::to_string(ep.port());
}

FrameSocket::FrameSocket(tcp::socket socket, std::string peer)
    : socket_(std::move(socket)), peer_(std::move(peer)) {}

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
  asio::async_write(socket_, bufs, [self = shared_from_this()](boost::system::error_code ec, size_t n) {
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
  });
}

void FrameSocket::fail(const Status& st) {
  if (closed_) return;
  close();
  if (on_error_) on_error_(st);
}

void FrameSocket::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
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
  auto [ec, n] = co_await asio::async_read(socket_, asio::buffer(header), asio::as_tuple(asio::use_awaitable));
  if (ec) {
    if (ec == asio::error::eof && n == 0) co_return Status(Error::kNetwork, "connection closed by " + peer_);
    co_return Status(Error::kNetwork, "receiving from " + peer_ + ": " + ec.message());
  }
  auto h = protocol::decode_header(header, max_chunk_size);
  if (!h) co_return Status(Error::kProtocol, "from " + peer_ + ": " + h.status().message());
  Frame f{h->type, std::vector<uint8_t>(h->length)};
  if (h->length) {
    auto [ec2, n2] = co_await asio::async_read(socket_, asio::buffer(f.payload), asio::as_tuple(asio::use_awaitable));
    if (ec2) co_return Status(Error::kNetwork, "receiving from " + peer_ + ": " + ec2.message());
  }
  co_return f;
}

}  // namespace ferry
