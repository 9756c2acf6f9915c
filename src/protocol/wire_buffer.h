// Bounds-checked big-endian writer/reader used by the frame codec.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/byte_order.h"

namespace ferry::protocol {

class WireWriter {
 public:
  void u8(uint8_t v) { buf_.push_back(v); }
  void u16(uint16_t v) { grow(2, [&](uint8_t* p) { store_be16(p, v); }); }
  void u32(uint32_t v) { grow(4, [&](uint8_t* p) { store_be32(p, v); }); }
  void u64(uint64_t v) { grow(8, [&](uint8_t* p) { store_be64(p, v); }); }
  void bytes(const uint8_t* p, size_t n) { buf_.insert(buf_.end(), p, p + n); }
  // Precondition: s.size() <= 65535 (callers validate paths before encoding).
  void str(std::string_view s) {
    u16(static_cast<uint16_t>(s.size()));
    bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  std::vector<uint8_t>& buffer() { return buf_; }

 private:
  template <typename F>
  void grow(size_t n, F f) {
    size_t at = buf_.size();
    buf_.resize(at + n);
    f(buf_.data() + at);
  }
  std::vector<uint8_t> buf_;
};

// Every read checks the remaining length first; after any failure ok() stays false and
// further reads return zeros, so decoders check ok() once at the end.
class WireReader {
 public:
  explicit WireReader(std::span<const uint8_t> p) : p_(p) {}
  uint8_t u8() { return take(1) ? p_[pos_ - 1] : 0; }
  uint16_t u16() { return take(2) ? load_be16(&p_[pos_ - 2]) : 0; }
  uint32_t u32() { return take(4) ? load_be32(&p_[pos_ - 4]) : 0; }
  uint64_t u64() { return take(8) ? load_be64(&p_[pos_ - 8]) : 0; }
  void bytes(uint8_t* out, size_t n) {
    if (take(n)) std::memcpy(out, &p_[pos_ - n], n);
  }
  std::string str() {
    uint16_t n = u16();
    if (!take(n)) return {};
    return std::string(reinterpret_cast<const char*>(&p_[pos_ - n]), n);
  }
  bool ok() const { return ok_; }
  bool at_end() const { return ok_ && pos_ == p_.size(); }
  size_t remaining() const { return ok_ ? p_.size() - pos_ : 0; }

 private:
  bool take(size_t n) {
    if (!ok_ || p_.size() - pos_ < n) {
      ok_ = false;
      return false;
    }
    pos_ += n;
    return true;
  }
  std::span<const uint8_t> p_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace ferry::protocol
