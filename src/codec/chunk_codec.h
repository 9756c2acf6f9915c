// Per-chunk zstd compression with an "auto" mode that never makes a fast link slower:
// chunks that do not compress (plates: EXR/DPX with noise, already-compressed media) are
// sent as they are, decided from a cheap probe of the chunk's first 64 KiB.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "ferry/status.h"

namespace ferry {

// Wire value of the CHUNK frame's codec field (docs/protocol.md).
enum class Codec : uint8_t { kNone = 0, kZstd = 1 };

struct CompressionSetting {
  enum class Mode { kNone, kAuto, kLevel };
  Mode mode = Mode::kAuto;
  int level = 1;  // zstd level for kLevel (1..19); kAuto uses kAutoLevel
  static constexpr int kAutoLevel = 1;
  // "auto", "none", or "1".."19". Anything else: kUsage error naming the value.
  static Result<CompressionSetting> parse(std::string_view text);
  std::string to_string() const;  // "auto", "none", "3"
};

struct CompressedChunk {
  Codec codec;  // kNone: send the source bytes unchanged (dst is unused)
  size_t size;  // bytes to send: the compressed size, or the source length for kNone
};

// One per worker thread: owns a ZSTD_CCtx and ZSTD_DCtx (not thread-safe, reused across chunks).
class ChunkCodec {
 public:
  ChunkCodec();
  ~ChunkCodec();
  ChunkCodec(const ChunkCodec&) = delete;
  ChunkCodec& operator=(const ChunkCodec&) = delete;

  // The calling thread's codec (workers reuse their zstd contexts across chunks).
  static ChunkCodec& for_this_thread() {
    thread_local ChunkCodec codec;
    return codec;
  }

  // Compresses src[0..len) into dst (capacity dst_cap, at least len) following `setting`:
  //  - kNone: returns {kNone, len} without touching dst.
  //  - kAuto: compress the first min(len, 64 KiB) at kAutoLevel; if that saves less than 10%,
  //    return {kNone, len}. Otherwise compress the whole chunk at kAutoLevel.
  //  - kLevel: compress the whole chunk at `level`.
  //  In every mode, a result that is not at least 3% smaller than len returns {kNone, len}
  //  (so a compressed payload is always shorter than the raw chunk).
  CompressedChunk compress(const CompressionSetting& setting, const uint8_t* src, size_t len,
                           uint8_t* dst, size_t dst_cap);

  // Decompresses src[0..len) (codec kZstd) into dst, which must receive exactly raw_len bytes.
  // A corrupt frame, or output of another length, is a kIntegrity error (never a crash).
  Status decompress(Codec codec, const uint8_t* src, size_t len, uint8_t* dst, size_t raw_len);

 private:
  void* cctx_;  // ZSTD_CCtx*
  void* dctx_;  // ZSTD_DCtx*
};

}  // namespace ferry
