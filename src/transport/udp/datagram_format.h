// The UDP datagram wire format (spec: docs/udp.md). Pure encode/decode, no I/O, fuzzable.
// All integers big-endian.
//
//   header (AAD, not encrypted): u8 kind | u64 packet_number                    = 9 bytes
//   body (AES-256-GCM ciphertext + 16-byte tag), plaintext by kind:
//     DATA : u32 chunk_ref | u32 offset | fragment bytes (>= 1, to the end)
//     ACK  : u64 largest_acked | u32 ack_delay_us | u64 largest_recv_time_us | u64 floor
//            | u16 range_count | range_count x (u64 first, u64 last), descending
//     PROBE: padding (any bytes; elicits an ACK)
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "ferry/status.h"
#include "transport/udp/ack_ranges.h"

namespace ferry::udp {

enum class DatagramKind : uint8_t { kData = 0x01, kAck = 0x02, kProbe = 0x03 };

inline constexpr size_t kHeaderSize = 9;
inline constexpr size_t kTagSize = 16;
inline constexpr size_t kDataPrefix = 8;  // chunk_ref + offset
// Bit 31 of a DATA offset marks the last fragment of its chunk record (which gives the
// record's length); offsets themselves stay below 64 MiB + 32.
inline constexpr uint32_t kLastFragmentFlag = 0x80000000u;
// The receiver acknowledges after 16 datagrams, on a gap, or within this long (docs/udp.md).
inline constexpr uint64_t kMaxAckDelayUs = 4000;
inline constexpr size_t kDefaultMaxDatagram = 1472;  // 1500-byte MTU - IPv4 - UDP headers
inline constexpr size_t kMinDatagram = 512;
inline constexpr size_t kMaxDatagram = 65507;  // largest IPv4 UDP payload
inline constexpr size_t kAckFixedSize = 8 + 4 + 8 + 8 + 2;
inline constexpr size_t kAckRangeSize = 16;

// Ranges that fit in one ACK datagram of max_datagram bytes.
constexpr size_t max_ack_ranges(size_t max_datagram) {
  return (max_datagram - kHeaderSize - kTagSize - kAckFixedSize) / kAckRangeSize;
}
inline constexpr size_t kMaxAckRangesDefault = max_ack_ranges(kDefaultMaxDatagram);
static_assert(max_ack_ranges(kMinDatagram) >= 16, "a minimum-size datagram must carry a useful ACK");
static_assert(max_ack_ranges(kMaxDatagram) <= 0xFFFF, "range_count is a u16");
// Room for fragment bytes in a DATA datagram of max_datagram bytes.
constexpr size_t max_fragment(size_t max_datagram) { return max_datagram - kHeaderSize - kTagSize - kDataPrefix; }

struct DatagramHeader {
  DatagramKind kind;
  uint64_t packet_number;
};

struct DataBody {
  uint32_t chunk_ref;
  uint32_t offset;
  std::span<const uint8_t> fragment;  // points into the decoded buffer
};

struct AckFrame {
  uint64_t largest_acked = 0;
  uint32_t ack_delay_us = 0;
  uint64_t largest_recv_time_us = 0;
  uint64_t floor = 0;
  std::vector<AckRange> ranges;  // descending; ranges.front().last == largest_acked
  bool operator==(const AckFrame&) const = default;
};

// Writes kHeaderSize bytes.
void encode_header(DatagramKind kind, uint64_t pn, uint8_t* out);
// Fails (kProtocol) on a short buffer or an unknown kind.
Result<DatagramHeader> decode_header(std::span<const uint8_t> datagram);

// Writes kDataPrefix + fragment.size() bytes; returns that length.
size_t encode_data_body(uint32_t chunk_ref, uint32_t offset, std::span<const uint8_t> fragment, uint8_t* out);
Result<DataBody> decode_data_body(std::span<const uint8_t> body);

size_t ack_body_size(const AckFrame& f);
// Appends the ACK plaintext to out. Ranges beyond 0xFFFF are not written (callers cap them at
// max_ack_ranges()).
void encode_ack_body(const AckFrame& f, std::vector<uint8_t>& out);
std::vector<uint8_t> encode_ack_body(const AckFrame& f);
// Writes ack_body_size(f) bytes to out (e.g. straight into a send buffer); returns that size.
size_t encode_ack_body(const AckFrame& f, uint8_t* out);
// Validates: at least one range, count consistent with length, first <= last, ranges strictly
// descending and non-overlapping, ranges.front().last == largest_acked.
Result<AckFrame> decode_ack_body(std::span<const uint8_t> body);

}  // namespace ferry::udp
