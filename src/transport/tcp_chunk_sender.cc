#include "transport/chunk_transport.h"

namespace ferry {

TcpChunkSender::TcpChunkSender(std::vector<std::shared_ptr<FrameSocket>> streams) : streams_(std::move(streams)) {}

void TcpChunkSender::send(OutgoingChunk chunk) {
  FrameSocket* best = streams_.front().get();
  for (auto& s : streams_)
    if (s->queued_bytes() < best->queued_bytes()) best = s.get();
  uint8_t prefix[protocol::kChunkPrefixSize];
  protocol::encode_chunk_prefix(chunk.header, chunk.payload_len, prefix);
  best->send_chunk(prefix, chunk.payload, chunk.payload_len, std::move(chunk.sent));
}

uint64_t TcpChunkSender::wire_bytes() const {
  uint64_t n = 0;
  for (const auto& s : streams_) n += s->bytes_written();
  return n;
}

uint64_t TcpChunkSender::queued_bytes() const {
  uint64_t n = 0;
  for (const auto& s : streams_) n += s->queued_bytes();
  return n;
}

void TcpChunkSender::close() {
  for (auto& s : streams_) s->close();
}

}  // namespace ferry
