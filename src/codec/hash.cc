// XXH3 hashing helpers and the out-of-order whole-file hasher (see hash.h).
#include "codec/hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "codec/xxh3_kernels.h"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <utility>

namespace ferry {

namespace {

XXH3_state_t* state_of(void* p) { return static_cast<XXH3_state_t*>(p); }

// Index/length mistakes are bugs in the caller, not I/O failures.
Status bad_index(uint32_t index, uint32_t count) {
  return Status(Error::kInternal, "hash: chunk index " + std::to_string(index) +
                                      " out of range (file has " + std::to_string(count) +
                                      " chunks)");
}

Hash128 from_xxh(XXH128_hash_t h) { return Hash128{h.high64, h.low64}; }
XXH128_hash_t to_xxh(const Hash128& h) {
  XXH128_hash_t x;
  x.high64 = h.high;
  x.low64 = h.low;
  return x;
}

}  // namespace

// xxh128sum prints the canonical (big-endian) representation byte by byte, which is the
// high 64 bits then the low 64 bits, each most significant nibble first.
std::string Hash128::hex() const {
  uint8_t bytes[16];
  to_bytes(bytes);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(32, '0');
  for (int i = 0; i < 16; ++i) {
    out[2 * i] = kDigits[bytes[i] >> 4];
    out[2 * i + 1] = kDigits[bytes[i] & 0x0f];
  }
  return out;
}

bool Hash128::from_hex(std::string_view text, Hash128* out) {
  if (text.size() != 32) return false;
  uint8_t bytes[16];
  for (int i = 0; i < 32; ++i) {
    char c = text[static_cast<size_t>(i)];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0) return false;
    if (i % 2 == 0) bytes[i / 2] = static_cast<uint8_t>(v << 4);
    else bytes[i / 2] |= static_cast<uint8_t>(v);
  }
  *out = from_bytes(bytes);
  return true;
}

void Hash128::to_bytes(uint8_t out[16]) const {
  XXH128_canonical_t c;
  XXH128_canonicalFromHash(&c, to_xxh(*this));
  static_assert(sizeof(c.digest) == 16);
  for (int i = 0; i < 16; ++i) out[i] = c.digest[i];
}

Hash128 Hash128::from_bytes(const uint8_t in[16]) {
  XXH128_canonical_t c;
  for (int i = 0; i < 16; ++i) c.digest[i] = in[i];
  return from_xxh(XXH128_hashFromCanonical(&c));
}

uint64_t xxh3_64(const void* data, size_t len) { return xxh3::kernels().hash64(data, len); }

Hash128 xxh3_128(const void* data, size_t len) {
  Hash128 h;
  xxh3::kernels().hash128(data, len, &h.high, &h.low);
  return h;
}

// ---------------------------------------------------------------------------------------------

StreamingHash128::StreamingHash128() : state_(XXH3_createState()) {
  // The state is ~600 bytes; failing to allocate it leaves no sane way to continue, and the
  // constructor cannot return a Status (no exceptions in the data path).
  if (state_ == nullptr) {
    std::fputs("ferry: out of memory allocating XXH3 state\n", stderr);
    std::abort();
  }
  XXH3_128bits_reset(state_of(state_));
}

StreamingHash128::~StreamingHash128() { XXH3_freeState(state_of(state_)); }

void StreamingHash128::update(const void* data, size_t len) {
  if (len == 0) return;  // also keeps a null `data` away from the library
  xxh3::kernels().update128(state_, data, len);
}

// XXH3 digest does not modify the state, so more data may still be fed afterwards.
Hash128 StreamingHash128::digest() const { return from_xxh(XXH3_128bits_digest(state_of(state_))); }

// ---------------------------------------------------------------------------------------------

OrderedFileHasher::OrderedFileHasher(uint64_t file_size, uint32_t chunk_size, ReadBack read_back)
    : file_size_(file_size),
      chunk_size_(chunk_size),
      // A zero chunk size is a caller bug; treat it as "no chunks" rather than divide by zero
      // (add_chunk then rejects every index, so the bug surfaces as an error, not a crash).
      chunk_count_(chunk_size == 0 ? 0 : chunk_count_for(file_size, chunk_size)),
      read_back_(std::move(read_back)),
      present_(chunk_count_, false) {}

Status OrderedFileHasher::add_chunk(uint32_t index, const uint8_t* data, size_t len) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= chunk_count_) {
    return bad_index(index, chunk_count_);
  }
  const uint32_t expect = chunk_length(file_size_, chunk_size_, index);
  if (len != expect) {
    return Status(Error::kInternal, "hash: chunk " + std::to_string(index) + " has " +
                                        std::to_string(len) + " bytes, expected " +
                                        std::to_string(expect));
  }
  // A duplicate (e.g. a resend) is not hashed again, but it still retries a catch-up that an
  // earlier read-back failure left pending.
  if (present_[index]) return advance_locked();
  present_[index] = true;
  if (index == cursor_) {
    // In order: hash straight from the caller's buffer, no read-back needed.
    hasher_.update(data, len);
    ++cursor_;
  }
  // Either this chunk unblocked earlier arrivals, or an earlier read-back failed and the
  // cursor is parked on a present chunk: catch up now.
  return advance_locked();
}

Status OrderedFileHasher::add_chunk_shared(uint32_t index, std::shared_ptr<const uint8_t> data, size_t len) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (index < chunk_count_ && index != cursor_ && !present_[index] &&
        len == chunk_length(file_size_, chunk_size_, index) && held_.size() < kMaxHeldChunks) {
      present_[index] = true;
      held_.emplace(index, std::move(data));
      return Status::ok();
    }
  }
  return add_chunk(index, data.get(), len);
}

Status OrderedFileHasher::add_chunk_hashing64(uint32_t index, std::shared_ptr<const uint8_t> data, size_t len,
                                              uint64_t* hash64) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (index < chunk_count_ && index == cursor_ && !present_[index] &&
        len == chunk_length(file_size_, chunk_size_, index)) {
      constexpr size_t kSlice = 64 << 10;
      XXH3_state_t chunk_state;
      XXH3_64bits_reset(&chunk_state);
      const uint8_t* p = data.get();
      const auto& k = xxh3::kernels();
      for (size_t off = 0; off < len; off += kSlice) {
        size_t n = len - off < kSlice ? len - off : kSlice;
        k.update64(&chunk_state, p + off, n);
        hasher_.update(p + off, n);
      }
      *hash64 = XXH3_64bits_digest(&chunk_state);
      present_[index] = true;
      ++cursor_;
      return advance_locked();
    }
  }
  *hash64 = xxh3_64(data.get(), len);
  return add_chunk_shared(index, std::move(data), len);
}

Result<OrderedFileHasher::Check> OrderedFileHasher::add_chunk_if_matches(uint32_t index,
                                                                        std::shared_ptr<const uint8_t> data,
                                                                        size_t len, uint64_t expected) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (index >= chunk_count_) return bad_index(index, chunk_count_);
    if (len != chunk_length(file_size_, chunk_size_, index))
      return Status(Error::kInternal, "hash: chunk " + std::to_string(index) + " has the wrong length");
    if (present_[index]) return Check::kDuplicate;
    if (index == cursor_) {
      XXH3_state_t* file_state = state_of(hasher_.state_);
      XXH3_state_t saved;
      XXH3_copyState(&saved, file_state);
      XXH3_state_t chunk_state;
      XXH3_64bits_reset(&chunk_state);
      constexpr size_t kSlice = 64 << 10;
      const uint8_t* p = data.get();
      const auto& k = xxh3::kernels();
      for (size_t off = 0; off < len; off += kSlice) {
        size_t n = len - off < kSlice ? len - off : kSlice;
        k.update64(&chunk_state, p + off, n);
        k.update128(file_state, p + off, n);
      }
      if (XXH3_64bits_digest(&chunk_state) != expected) {
        XXH3_copyState(file_state, &saved);  // the damaged bytes never count
        return Check::kMismatch;
      }
      present_[index] = true;
      ++cursor_;
      if (Status st = advance_locked(); !st) return st;
      return Check::kAdded;
    }
  }
  return xxh3_64(data.get(), len) == expected ? Check::kVerified : Check::kMismatch;
}

Status OrderedFileHasher::add_chunk_on_disk(uint32_t index) {
  std::lock_guard<std::mutex> lock(mu_);
  if (index >= chunk_count_) {
    return bad_index(index, chunk_count_);
  }
  present_[index] = true;  // idempotent: a duplicate only retries a pending catch-up
  return advance_locked();
}

// Hashes every present chunk from the cursor on, reading each back from the file. The scratch
// buffer lives only for the duration of one catch-up, so a hasher waiting on a missing chunk
// holds no chunk-sized memory. On a read error the cursor stays on the failed chunk (still
// marked present), so a later add_chunk()/add_chunk_on_disk() retries it.
Status OrderedFileHasher::advance_locked() {
  std::unique_ptr<uint8_t[]> scratch;
  while (cursor_ < chunk_count_ && present_[cursor_]) {
    const uint64_t offset = static_cast<uint64_t>(cursor_) * chunk_size_;
    const uint32_t len = chunk_length(file_size_, chunk_size_, cursor_);
    if (auto it = held_.find(cursor_); it != held_.end()) {
      hasher_.update(it->second.get(), len);  // kept in memory: no read-back
      held_.erase(it);
      ++cursor_;
      continue;
    }
    if (!scratch) scratch = std::make_unique_for_overwrite<uint8_t[]>(chunk_size_);
    Status st = read_back_ ? read_back_(offset, scratch.get(), len)
                           : Status(Error::kInternal, "no read-back function");
    if (!st.is_ok()) {
      return Status(st.code(), "hash read-back of chunk " + std::to_string(cursor_) +
                                   " (offset " + std::to_string(offset) + "): " + st.message());
    }
    hasher_.update(scratch.get(), len);
    ++cursor_;
  }
  return Status::ok();
}

bool OrderedFileHasher::complete() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cursor_ == chunk_count_;
}

// Before completion the running state is a prefix hash that means nothing to callers; return
// an all-zero value instead so misuse cannot pass for a real digest by accident.
Hash128 OrderedFileHasher::digest() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (cursor_ != chunk_count_) return Hash128{};
  return hasher_.digest();
}

}  // namespace ferry
