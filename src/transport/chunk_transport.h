// The data plane seen by the sessions. The session logic hands chunks to a ChunkSender and
// receives them through a ChunkSink; whether they travel over N TCP streams (this file's
// TcpChunkSender) or, later, over UDP with ferry's own congestion control does not leak into
// the session code.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "protocol/frames.h"
#include "transport/frame_socket.h"

namespace ferry {

struct OutgoingChunk {
  protocol::ChunkHeader header;
  const uint8_t* payload;  // borrowed until `sent` runs
  uint32_t payload_len;
  std::function<void(bool ok)> sent;  // network thread; ok=false if the transport failed
};

// Sender side. Network thread only.
class ChunkSender {
 public:
  virtual ~ChunkSender() = default;
  virtual void send(OutgoingChunk chunk) = 0;
  virtual uint64_t wire_bytes() const = 0;  // bytes handed to the kernel so far
  virtual uint64_t queued_bytes() const = 0;  // bytes accepted but not yet handed to the kernel
  virtual void close() = 0;
};

// Spreads chunks over N established TCP data streams: each chunk goes to the stream with the
// fewest bytes queued, so a slow stream gets less work and one large file uses all streams.
class TcpChunkSender final : public ChunkSender {
 public:
  explicit TcpChunkSender(std::vector<std::shared_ptr<FrameSocket>> streams);
  void send(OutgoingChunk chunk) override;
  uint64_t wire_bytes() const override;
  uint64_t queued_bytes() const override;
  void close() override;

 private:
  std::vector<std::shared_ptr<FrameSocket>> streams_;
};

}  // namespace ferry
