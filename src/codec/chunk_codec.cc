// Per-chunk zstd compression with an incompressibility probe (see chunk_codec.h).
#include "codec/chunk_codec.h"

#include <zstd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace ferry {

namespace {

constexpr size_t kProbeBytes = 64 * 1024;

ZSTD_CCtx* cctx_of(void* p) { return static_cast<ZSTD_CCtx*>(p); }
ZSTD_DCtx* dctx_of(void* p) { return static_cast<ZSTD_DCtx*>(p); }

// True when `out` saves at least `percent` % of `in` bytes. Written as a multiplication so a
// result larger than the input (negative saving) is simply "not enough".
bool saves_at_least(size_t in, size_t out, size_t percent) {
  return out <= in && (in - out) * 100 >= in * percent;
}

Status integrity(const std::string& what) {
  return Status(Error::kIntegrity, "chunk decompression: " + what);
}

}  // namespace

Result<CompressionSetting> CompressionSetting::parse(std::string_view text) {
  CompressionSetting s;
  if (text == "auto") {
    s.mode = Mode::kAuto;
    s.level = kAutoLevel;
    return s;
  }
  if (text == "none") {
    s.mode = Mode::kNone;
    return s;
  }
  // Only the canonical spellings "1".."19": no sign, spaces or leading zeros, so that
  // to_string() gives back exactly what was accepted.
  bool digits_ok = !text.empty() && text.size() <= 2 && text[0] >= '1' && text[0] <= '9';
  if (digits_ok && text.size() == 2) digits_ok = text[1] >= '0' && text[1] <= '9';
  if (digits_ok) {
    int level = text[0] - '0';
    if (text.size() == 2) level = level * 10 + (text[1] - '0');
    if (level >= 1 && level <= 19) {
      s.mode = Mode::kLevel;
      s.level = level;
      return s;
    }
  }
  return Status(Error::kUsage, "invalid --compress value '" + std::string(text) +
                                   "' (expected auto, none or 1..19)");
}

std::string CompressionSetting::to_string() const {
  switch (mode) {
    case Mode::kNone: return "none";
    case Mode::kAuto: return "auto";
    case Mode::kLevel: return std::to_string(level);
  }
  return "auto";
}

// ---------------------------------------------------------------------------------------------

ChunkCodec::ChunkCodec() : cctx_(ZSTD_createCCtx()), dctx_(ZSTD_createDCtx()) {
  // Contexts are a few hundred KiB; without them the worker cannot run at all, and a
  // constructor cannot return a Status.
  if (cctx_ == nullptr || dctx_ == nullptr) {
    std::fputs("ferry: out of memory allocating zstd contexts\n", stderr);
    std::abort();
  }
}

ChunkCodec::~ChunkCodec() {
  ZSTD_freeCCtx(cctx_of(cctx_));
  ZSTD_freeDCtx(dctx_of(dctx_));
}

CompressedChunk ChunkCodec::compress(const CompressionSetting& setting, const uint8_t* src,
                                     size_t len, uint8_t* dst, size_t dst_cap) {
  const CompressedChunk raw{Codec::kNone, len};
  if (setting.mode == CompressionSetting::Mode::kNone || len == 0) return raw;

  int level = setting.level;
  size_t out = 0;
  bool have_whole = false;  // dst already holds the whole chunk compressed at `level`

  if (setting.mode == CompressionSetting::Mode::kAuto) {
    level = CompressionSetting::kAutoLevel;
    const size_t probe = len < kProbeBytes ? len : kProbeBytes;
    // A dst smaller than the bound just makes zstd fail with dstSize_tooSmall, which here
    // means "does not compress": exactly the answer we want.
    const size_t n = ZSTD_compressCCtx(cctx_of(cctx_), dst, dst_cap, src, probe, level);
    if (ZSTD_isError(n) || !saves_at_least(probe, n, 10)) return raw;
    if (probe == len) {
      out = n;  // the probe was the whole chunk: do not compress it twice
      have_whole = true;
    }
  }

  if (!have_whole) {
    out = ZSTD_compressCCtx(cctx_of(cctx_), dst, dst_cap, src, len, level);
    if (ZSTD_isError(out)) return raw;
  }
  // Sending compressed bytes only pays when they are clearly smaller; this also guarantees
  // a compressed payload is strictly shorter than raw_length (the protocol's frame bound).
  if (!saves_at_least(len, out, 3)) return raw;
  return CompressedChunk{Codec::kZstd, out};
}

Status ChunkCodec::decompress(Codec codec, const uint8_t* src, size_t len, uint8_t* dst,
                              size_t raw_len) {
  switch (codec) {
    case Codec::kNone:
      if (len != raw_len) {
        return integrity("raw payload has " + std::to_string(len) + " bytes, expected " +
                         std::to_string(raw_len));
      }
      if (len != 0) std::memcpy(dst, src, len);
      return Status::ok();
    case Codec::kZstd:
      break;
    default:
      return integrity("unknown codec " + std::to_string(static_cast<unsigned>(codec)));
  }

  const unsigned long long content = ZSTD_getFrameContentSize(src, len);
  if (content == ZSTD_CONTENTSIZE_ERROR) return integrity("payload is not a valid zstd frame");
  if (content != ZSTD_CONTENTSIZE_UNKNOWN && content != raw_len) {
    return integrity("zstd frame declares " + std::to_string(content) + " bytes, expected " +
                     std::to_string(raw_len));
  }
  // The payload must be exactly one frame: trailing bytes or a second frame are corruption
  // (ZSTD_decompressDCtx would otherwise happily decode concatenated frames).
  const size_t frame = ZSTD_findFrameCompressedSize(src, len);
  if (ZSTD_isError(frame)) {
    return integrity(std::string("corrupt zstd frame: ") + ZSTD_getErrorName(frame));
  }
  if (frame != len) {
    return integrity("zstd frame is " + std::to_string(frame) + " bytes but payload has " +
                     std::to_string(len));
  }
  // dst capacity is raw_len, so a frame that expands further fails here instead of
  // overrunning the buffer. ZSTD_decompressDCtx resets the context, so an earlier corrupt
  // frame does not affect this one.
  const size_t n = ZSTD_decompressDCtx(dctx_of(dctx_), dst, raw_len, src, len);
  if (ZSTD_isError(n)) {
    return integrity(std::string("corrupt zstd frame: ") + ZSTD_getErrorName(n));
  }
  if (n != raw_len) {
    return integrity("zstd frame decompressed to " + std::to_string(n) + " bytes, expected " +
                     std::to_string(raw_len));
  }
  return Status::ok();
}

}  // namespace ferry
