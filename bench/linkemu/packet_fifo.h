// A bounded FIFO of packets, each stamped with its departure time, stored in one
// preallocated byte ring so the forwarding thread never allocates per packet.
//
// Layout: records of [Header | payload padded to kAlign] written back to back. A
// record never wraps: when it does not fit before the end of the ring, the rest of
// the ring is skipped (marked with a kWrapMarker header if there is room for one)
// and the record starts at offset 0. `used_` counts skipped bytes too, so
// push() refuses exactly when the ring cannot take the record.
// Single-threaded: only the direction's forwarding thread touches it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace linkemu {

class PacketFifo {
 public:
  struct Packet {
    int64_t depart_ns;
    const uint8_t* data;
    uint32_t len;
  };

  explicit PacketFifo(size_t capacity_bytes) : buf_(round_up(capacity_bytes)) {}

  bool empty() const { return count_ == 0; }
  size_t size() const { return count_; }

  // False (and nothing stored) when the ring is full.
  bool push(int64_t depart_ns, const uint8_t* data, uint32_t len) {
    const size_t need = kHeader + round_up(len);
    const size_t cap = buf_.size();
    const size_t skip = tail_ + need > cap ? cap - tail_ : 0;
    if (used_ + skip + need > cap) return false;
    if (skip > 0) {
      if (skip >= kHeader) write_header(tail_, Header{0, kWrapMarker, 0});
      used_ += skip;
      tail_ = 0;
    }
    write_header(tail_, Header{depart_ns, len, 0});
    std::memcpy(&buf_[tail_ + kHeader], data, len);
    tail_ = (tail_ + need) % cap;
    used_ += need;
    ++count_;
    return true;
  }

  // Precondition: !empty().
  Packet front() {
    skip_wrap();
    const Header h = read_header(head_);
    return {h.depart_ns, &buf_[head_ + kHeader], h.len};
  }

  // Precondition: !empty().
  void pop() {
    skip_wrap();
    const Header h = read_header(head_);
    const size_t n = kHeader + round_up(h.len);
    head_ = (head_ + n) % buf_.size();
    used_ -= n;
    if (--count_ == 0) head_ = tail_ = used_ = 0;  // an empty ring restarts at 0
  }

 private:
  struct Header {
    int64_t depart_ns;
    uint32_t len;
    uint32_t reserved;
  };
  static constexpr size_t kAlign = 16;
  static constexpr size_t kHeader = sizeof(Header);
  static constexpr uint32_t kWrapMarker = 0xFFFFFFFFu;
  static_assert(kHeader % kAlign == 0, "records must stay aligned");

  static size_t round_up(size_t n) { return (n + kAlign - 1) / kAlign * kAlign; }

  void write_header(size_t at, const Header& h) { std::memcpy(&buf_[at], &h, sizeof h); }
  Header read_header(size_t at) const {
    Header h;
    std::memcpy(&h, &buf_[at], sizeof h);
    return h;
  }
  // Moves head_ past the skipped end of the ring, if it is there.
  void skip_wrap() {
    const size_t cap = buf_.size();
    if (cap - head_ < kHeader || read_header(head_).len == kWrapMarker) {
      used_ -= cap - head_;
      head_ = 0;
    }
  }

  std::vector<uint8_t> buf_;
  size_t head_ = 0, tail_ = 0, used_ = 0, count_ = 0;
};

}  // namespace linkemu
