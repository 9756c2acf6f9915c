// libFuzzer target: the control-connection frame decoder (protocol/frame_codec.cc).
// Input: one frame as it arrives on a connection, 8-byte header then payload. The header is
// validated as the receiver does; the payload (the rest of the input, whatever the header's
// length says, so every decoder sees every size) goes to the decoder for the header's type.
// Property: a frame the decoder accepts re-encodes into a frame the decoder accepts again.
#include <cstddef>
#include <cstdint>
#include <span>

#include "fuzz_check.h"
#include "protocol/frames.h"

namespace {

using namespace ferry::protocol;
using Payload = std::span<const uint8_t>;

template <typename T, typename Decoder>
void check(const ferry::Result<T>& first, Decoder decode) {
  if (!first) return;
  std::vector<uint8_t> frame = encode(first.value());
  FUZZ_CHECK(frame.size() >= kFrameHeaderSize);
  auto header = decode_header(frame.data(), kMaxChunkSize);
  FUZZ_CHECK(header.is_ok());
  FUZZ_CHECK(header->length == frame.size() - kFrameHeaderSize);
  FUZZ_CHECK(decode(Payload(frame).subspan(kFrameHeaderSize)).is_ok());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kFrameHeaderSize) return 0;
  auto header = decode_header(data, kMaxChunkSize);
  if (!header) return 0;
  Payload p(data + kFrameHeaderSize, size - kFrameHeaderSize);
  switch (header->type) {
    case FrameType::kHello: check(decode_hello(p), decode_hello); break;
    case FrameType::kWelcome: check(decode_welcome(p), decode_welcome); break;
    case FrameType::kOpenSession: check(decode_open_session(p), decode_open_session); break;
    case FrameType::kSessionOpened: check(decode_session_opened(p), decode_session_opened); break;
    case FrameType::kJoinStream: check(decode_join_stream(p), decode_join_stream); break;
    case FrameType::kUdpOpen: check(decode_udp_open(p), decode_udp_open); break;
    case FrameType::kUdpAccept: check(decode_udp_accept(p), decode_udp_accept); break;
    case FrameType::kAuth: check(decode_auth(p), decode_auth); break;
    case FrameType::kAuthOk: (void)decode_auth_ok(p); break;
    case FrameType::kFileList: check(decode_file_list(p), decode_file_list); break;
    case FrameType::kFileListEnd: check(decode_file_list_end(p), decode_file_list_end); break;
    case FrameType::kFilePlan: check(decode_file_plan(p), decode_file_plan); break;
    case FrameType::kHaveChunks: check(decode_have_chunks(p), decode_have_chunks); break;
    case FrameType::kChunk: {
      // The receiver decodes the first 32 payload bytes; the rest is the chunk's data.
      if (p.size() < kChunkHeaderSize) break;
      auto h = decode_chunk_header(p.first(kChunkHeaderSize));
      if (!h) break;
      uint8_t prefix[kChunkPrefixSize];
      encode_chunk_prefix(*h, 0, prefix);
      FUZZ_CHECK(decode_header(prefix, kMaxChunkSize).is_ok());
      FUZZ_CHECK(decode_chunk_header(Payload(prefix + kFrameHeaderSize, kChunkHeaderSize)).is_ok());
      break;
    }
    case FrameType::kChunkNack: check(decode_chunk_nack(p), decode_chunk_nack); break;
    case FrameType::kFileDone: check(decode_file_done(p), decode_file_done); break;
    case FrameType::kFileResult: check(decode_file_result(p), decode_file_result); break;
    case FrameType::kFileAbort: check(decode_file_abort(p), decode_file_abort); break;
    case FrameType::kSummary: check(decode_summary(p), decode_summary); break;
    case FrameType::kError: check(decode_error(p), decode_error); break;
    case FrameType::kListRequest: check(decode_list_request(p), decode_list_request); break;
    case FrameType::kListEntries: check(decode_list_entries(p), decode_list_entries); break;
    case FrameType::kListEnd: check(decode_list_end(p), decode_list_end); break;
    case FrameType::kDelete: check(decode_delete(p), decode_delete); break;
    case FrameType::kDeleteResult: check(decode_delete_result(p), decode_delete_result); break;
    case FrameType::kStreamJoined:
    case FrameType::kFinish:
      break;  // no payload, no decoder
  }
  return 0;
}
