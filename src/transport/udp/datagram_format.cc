#include "transport/udp/datagram_format.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/byte_order.h"

namespace ferry::udp {

namespace {
Status malformed(const std::string& what) { return Status(Error::kProtocol, "malformed udp datagram: " + what); }
}  // namespace

void encode_header(DatagramKind kind, uint64_t pn, uint8_t* out) {
  out[0] = static_cast<uint8_t>(kind);
  store_be64(out + 1, pn);
}

Result<DatagramHeader> decode_header(std::span<const uint8_t> datagram) {
  if (datagram.size() < kHeaderSize + kTagSize) {
    return malformed(std::to_string(datagram.size()) + " bytes is shorter than header + tag");
  }
  const uint8_t kind = datagram[0];
  if (kind < static_cast<uint8_t>(DatagramKind::kData) || kind > static_cast<uint8_t>(DatagramKind::kProbe)) {
    return malformed("unknown kind " + std::to_string(kind));
  }
  return DatagramHeader{static_cast<DatagramKind>(kind), load_be64(datagram.data() + 1)};
}

size_t encode_data_body(uint32_t chunk_ref, uint32_t offset, std::span<const uint8_t> fragment, uint8_t* out) {
  store_be32(out, chunk_ref);
  store_be32(out + 4, offset);
  if (!fragment.empty()) std::memcpy(out + kDataPrefix, fragment.data(), fragment.size());
  return kDataPrefix + fragment.size();
}

Result<DataBody> decode_data_body(std::span<const uint8_t> body) {
  if (body.size() <= kDataPrefix) return malformed("DATA body of " + std::to_string(body.size()) + " bytes has no fragment");
  DataBody d;
  d.chunk_ref = load_be32(body.data());
  d.offset = load_be32(body.data() + 4);
  d.fragment = body.subspan(kDataPrefix);
  if (static_cast<uint64_t>(d.offset) + d.fragment.size() > 0xFFFFFFFFull) {
    return malformed("DATA fragment at offset " + std::to_string(d.offset) + " runs past 4 GiB");
  }
  return d;
}

size_t ack_body_size(const AckFrame& f) {
  return kAckFixedSize + kAckRangeSize * std::min<size_t>(f.ranges.size(), 0xFFFF);
}

void encode_ack_body(const AckFrame& f, std::vector<uint8_t>& out) {
  const size_t at = out.size();
  out.resize(at + ack_body_size(f));
  encode_ack_body(f, out.data() + at);
}

std::vector<uint8_t> encode_ack_body(const AckFrame& f) {
  std::vector<uint8_t> out;
  encode_ack_body(f, out);
  return out;
}

size_t encode_ack_body(const AckFrame& f, uint8_t* out) {
  const size_t count = std::min<size_t>(f.ranges.size(), 0xFFFF);
  uint8_t* p = out;
  store_be64(p, f.largest_acked);
  store_be32(p + 8, f.ack_delay_us);
  store_be64(p + 12, f.largest_recv_time_us);
  store_be64(p + 20, f.floor);
  store_be16(p + 28, static_cast<uint16_t>(count));
  p += kAckFixedSize;
  for (size_t i = 0; i < count; ++i, p += kAckRangeSize) {
    store_be64(p, f.ranges[i].first);
    store_be64(p + 8, f.ranges[i].last);
  }
  return static_cast<size_t>(p - out);
}

Result<AckFrame> decode_ack_body(std::span<const uint8_t> body) {
  if (body.size() < kAckFixedSize) return malformed("ACK body of " + std::to_string(body.size()) + " bytes is truncated");
  const uint8_t* p = body.data();
  AckFrame f;
  f.largest_acked = load_be64(p);
  f.ack_delay_us = load_be32(p + 8);
  f.largest_recv_time_us = load_be64(p + 12);
  f.floor = load_be64(p + 20);
  const size_t count = load_be16(p + 28);
  if (count == 0) return malformed("ACK with no ranges");
  if (body.size() != kAckFixedSize + kAckRangeSize * count) {
    return malformed("ACK claims " + std::to_string(count) + " ranges but has " + std::to_string(body.size()) + " bytes");
  }
  f.ranges.resize(count);
  p += kAckFixedSize;
  for (size_t i = 0; i < count; ++i, p += kAckRangeSize) {
    AckRange r{load_be64(p), load_be64(p + 8)};
    if (r.first > r.last) return malformed("ACK range " + std::to_string(i) + " has first > last");
    // Strictly descending with at least one missing pn between neighbours would be the
    // canonical form; we only require no overlap so that a coalescing-lazy peer still works.
    if (i > 0 && r.last >= f.ranges[i - 1].first) {
      return malformed("ACK range " + std::to_string(i) + " overlaps or is not below the previous one");
    }
    f.ranges[i] = r;
  }
  if (f.ranges.front().last != f.largest_acked) return malformed("ACK largest_acked does not match its first range");
  return f;
}

}  // namespace ferry::udp
