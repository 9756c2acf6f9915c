// Tests for src/codec/chunk_codec.{h,cc}: auto/level/none compression and strict decompression.
#include "codec/chunk_codec.h"

#include <gtest/gtest.h>
#include <zstd.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace ferry {
namespace {

using Bytes = std::vector<uint8_t>;

Bytes random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  Bytes v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// Log-like text: repetitive but not trivially so.
Bytes text_bytes(size_t n) {
  std::string s;
  for (int i = 0; s.size() < n; ++i) {
    s += "2024-05-01T12:00:" + std::to_string(i % 60) + " frame " + std::to_string(i) +
         " written to /srv/show/seq010/shot" + std::to_string(i % 17) + ".exr ok\n";
  }
  return Bytes(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(n));
}

// Float32 samples of a smooth, quantized signal, like a clean render or a LUT.
Bytes float_bytes(size_t n) {
  Bytes v(n);
  for (size_t i = 0; i + 4 <= n; i += 4) {
    float f = std::round(std::sin(static_cast<double>(i) / 4000.0) * 256.0f) / 256.0f;
    std::memcpy(&v[i], &f, 4);
  }
  return v;
}

// `zero_percent` % zero bytes at the front, the rest random: compresses by about that much.
Bytes partly_compressible(size_t n, size_t zero_percent, uint32_t seed) {
  Bytes v = random_bytes(n, seed);
  std::memset(v.data(), 0, n * zero_percent / 100);
  return v;
}

CompressionSetting level(int l) {
  CompressionSetting s;
  s.mode = CompressionSetting::Mode::kLevel;
  s.level = l;
  return s;
}
CompressionSetting auto_mode() { return CompressionSetting{}; }
CompressionSetting none_mode() {
  CompressionSetting s;
  s.mode = CompressionSetting::Mode::kNone;
  return s;
}

// Compresses `src` (expecting zstd) and returns the payload.
Bytes compress_zstd(ChunkCodec& codec, const CompressionSetting& s, const Bytes& src) {
  Bytes dst(src.size());
  CompressedChunk c = codec.compress(s, src.data(), src.size(), dst.data(), dst.size());
  EXPECT_EQ(c.codec, Codec::kZstd);
  dst.resize(c.size);
  return dst;
}

// --- compress / decompress -------------------------------------------------------------------

TEST(ChunkCodecTest, CompressibleChunksRoundTripAtSeveralLevels) {
  ChunkCodec codec;
  for (const Bytes& src : {text_bytes(256 << 10), float_bytes(256 << 10), text_bytes(1000)}) {
    for (const CompressionSetting& s : {auto_mode(), level(1), level(3), level(9), level(19)}) {
      Bytes dst(src.size());
      CompressedChunk c = codec.compress(s, src.data(), src.size(), dst.data(), dst.size());
      ASSERT_EQ(c.codec, Codec::kZstd) << s.to_string() << " size " << src.size();
      EXPECT_LT(c.size * 100, src.size() * 97);
      Bytes back(src.size(), 0xEE);
      Status st = codec.decompress(c.codec, dst.data(), c.size, back.data(), back.size());
      ASSERT_TRUE(st.is_ok()) << st.to_string();
      EXPECT_EQ(back, src) << s.to_string();
    }
  }
}

TEST(ChunkCodecTest, ExplicitLevelAndAutoLevelReachZstd) {
  // The payload must be exactly what zstd produces at the requested level (auto: level 1),
  // which also shows the level is not ignored.
  ChunkCodec codec;
  Bytes src = text_bytes(256 << 10);
  auto reference = [&](int l) {
    Bytes out(ZSTD_compressBound(src.size()));
    out.resize(ZSTD_compress(out.data(), out.size(), src.data(), src.size(), l));
    return out;
  };
  EXPECT_EQ(compress_zstd(codec, level(1), src), reference(1));
  EXPECT_EQ(compress_zstd(codec, level(12), src), reference(12));
  EXPECT_EQ(compress_zstd(codec, auto_mode(), src), reference(CompressionSetting::kAutoLevel));
  EXPECT_NE(reference(1), reference(12));
}

TEST(ChunkCodecTest, IncompressibleChunkIsSentRawInAutoMode) {
  ChunkCodec codec;
  Bytes src = random_bytes(4 << 20, 1);
  Bytes dst(src.size());
  CompressedChunk c = codec.compress(auto_mode(), src.data(), src.size(), dst.data(), dst.size());
  EXPECT_EQ(c.codec, Codec::kNone);
  EXPECT_EQ(c.size, src.size());
}

TEST(ChunkCodecTest, ExplicitLevelOnRandomDataAlsoFallsBackToRaw) {
  ChunkCodec codec;
  Bytes src = random_bytes(1 << 20, 2);
  Bytes dst(src.size());
  for (int l : {1, 5, 19}) {
    CompressedChunk c = codec.compress(level(l), src.data(), src.size(), dst.data(), dst.size());
    EXPECT_EQ(c.codec, Codec::kNone) << l;
    EXPECT_EQ(c.size, src.size()) << l;
  }
}

TEST(ChunkCodecTest, NoneModeNeverTouchesDst) {
  ChunkCodec codec;
  Bytes src = text_bytes(100000);
  Bytes dst(src.size(), 0x5A);
  CompressedChunk c = codec.compress(none_mode(), src.data(), src.size(), dst.data(), dst.size());
  EXPECT_EQ(c.codec, Codec::kNone);
  EXPECT_EQ(c.size, src.size());
  EXPECT_EQ(dst, Bytes(src.size(), 0x5A));
  // Not even a null destination is dereferenced.
  c = codec.compress(none_mode(), src.data(), src.size(), nullptr, 0);
  EXPECT_EQ(c.codec, Codec::kNone);
}

TEST(ChunkCodecTest, SavingBelowThreePercentIsSentRaw) {
  ChunkCodec codec;
  Bytes dst(1 << 20);
  Bytes two = partly_compressible(1 << 20, 2, 3);    // saves ~2%: not worth it
  Bytes five = partly_compressible(1 << 20, 5, 4);   // saves ~5%: worth it at a fixed level
  CompressedChunk c = codec.compress(level(3), two.data(), two.size(), dst.data(), dst.size());
  EXPECT_EQ(c.codec, Codec::kNone);
  EXPECT_EQ(c.size, two.size());
  c = codec.compress(level(3), five.data(), five.size(), dst.data(), dst.size());
  EXPECT_EQ(c.codec, Codec::kZstd);
  EXPECT_LT(c.size * 100, five.size() * 97);
}

TEST(ChunkCodecTest, AutoModeSkipsChunksWhoseProbeSavesLessThanTenPercent) {
  ChunkCodec codec;
  Bytes dst(64 * 1024);
  // A 64 KiB chunk is all probe: 6% saving passes the 3% rule but not the 10% probe.
  Bytes six = partly_compressible(64 * 1024, 6, 5);
  EXPECT_EQ(codec.compress(level(1), six.data(), six.size(), dst.data(), dst.size()).codec,
            Codec::kZstd);
  EXPECT_EQ(codec.compress(auto_mode(), six.data(), six.size(), dst.data(), dst.size()).codec,
            Codec::kNone);
  Bytes twenty = partly_compressible(64 * 1024, 20, 6);
  EXPECT_EQ(codec.compress(auto_mode(), twenty.data(), twenty.size(), dst.data(), dst.size()).codec,
            Codec::kZstd);
}

TEST(ChunkCodecTest, AutoModeDecidesFromTheFirst64KiBOnly) {
  ChunkCodec codec;
  // Random head, zero tail: the whole chunk compresses well, but the probe says no.
  Bytes src(1 << 20, 0);
  Bytes head = random_bytes(64 * 1024, 7);
  std::memcpy(src.data(), head.data(), head.size());
  Bytes dst(src.size());
  EXPECT_EQ(codec.compress(level(1), src.data(), src.size(), dst.data(), dst.size()).codec,
            Codec::kZstd);
  EXPECT_EQ(codec.compress(auto_mode(), src.data(), src.size(), dst.data(), dst.size()).codec,
            Codec::kNone);
}

TEST(ChunkCodecTest, AutoModeStillAppliesThreePercentRuleToTheWholeChunk) {
  ChunkCodec codec;
  // Zero head passes the probe, but the random 4 MiB after it keeps the total saving ~1.5%.
  Bytes src = random_bytes(4 << 20, 8);
  std::memset(src.data(), 0, 64 * 1024);
  Bytes dst(src.size());
  CompressedChunk c = codec.compress(auto_mode(), src.data(), src.size(), dst.data(), dst.size());
  EXPECT_EQ(c.codec, Codec::kNone);
  EXPECT_EQ(c.size, src.size());
}

TEST(ChunkCodecTest, EmptyAndTinyChunks) {
  ChunkCodec codec;
  uint8_t dst[64];
  CompressedChunk c = codec.compress(level(3), nullptr, 0, dst, sizeof dst);
  EXPECT_EQ(c.codec, Codec::kNone);
  EXPECT_EQ(c.size, 0u);
  EXPECT_TRUE(codec.decompress(Codec::kNone, nullptr, 0, nullptr, 0).is_ok());
  // A few bytes never beat the zstd frame overhead.
  const uint8_t tiny[5] = {1, 1, 1, 1, 1};
  c = codec.compress(level(3), tiny, sizeof tiny, dst, sizeof tiny);
  EXPECT_EQ(c.codec, Codec::kNone);
  EXPECT_EQ(c.size, sizeof tiny);
}

TEST(ChunkCodecTest, RawCodecCopiesBytesAndChecksLength) {
  ChunkCodec codec;
  Bytes src = random_bytes(1000, 9);
  Bytes out(1000);
  ASSERT_TRUE(codec.decompress(Codec::kNone, src.data(), 1000, out.data(), 1000).is_ok());
  EXPECT_EQ(out, src);
  EXPECT_EQ(codec.decompress(Codec::kNone, src.data(), 999, out.data(), 1000).code(),
            Error::kIntegrity);
  EXPECT_EQ(codec.decompress(Codec::kNone, src.data(), 1000, out.data(), 999).code(),
            Error::kIntegrity);
}

TEST(ChunkCodecTest, UnknownCodecIsAnIntegrityError) {
  ChunkCodec codec;
  Bytes src = text_bytes(1000);
  Bytes out(1000);
  Status st = codec.decompress(static_cast<Codec>(7), src.data(), src.size(), out.data(), 1000);
  EXPECT_EQ(st.code(), Error::kIntegrity);
  EXPECT_NE(st.message().find("codec 7"), std::string::npos) << st.message();
}

TEST(ChunkCodecTest, WrongRawLengthIsAnIntegrityError) {
  ChunkCodec codec;
  Bytes src = text_bytes(100000);
  Bytes frame = compress_zstd(codec, level(3), src);
  Bytes out(src.size() + 1);
  for (size_t raw_len : {src.size() - 1, src.size() + 1, size_t{0}}) {
    Status st = codec.decompress(Codec::kZstd, frame.data(), frame.size(), out.data(), raw_len);
    EXPECT_EQ(st.code(), Error::kIntegrity) << raw_len;
    EXPECT_NE(st.message().find(std::to_string(raw_len)), std::string::npos) << st.message();
  }
}

TEST(ChunkCodecTest, TruncatedFrameIsAnIntegrityErrorNotACrash) {
  ChunkCodec codec;
  Bytes src = text_bytes(200000);
  Bytes frame = compress_zstd(codec, level(3), src);
  Bytes out(src.size());
  for (size_t keep : {size_t{0}, size_t{3}, size_t{10}, frame.size() / 2, frame.size() - 1}) {
    Status st = codec.decompress(Codec::kZstd, frame.data(), keep, out.data(), out.size());
    EXPECT_EQ(st.code(), Error::kIntegrity) << "kept " << keep;
  }
}

TEST(ChunkCodecTest, CorruptFrameIsAnIntegrityErrorNotACrash) {
  ChunkCodec codec;
  Bytes src = text_bytes(200000);
  const Bytes frame = compress_zstd(codec, level(3), src);
  Bytes out(src.size());
  // Header bits that are always validated: the magic number, and the frame header
  // descriptor's reserved bit (0x08), which must be zero.
  const std::pair<size_t, uint8_t> header_flips[] = {{0, 0x01}, {1, 0x80}, {2, 0x10}, {3, 0x04},
                                                     {4, 0x08}};
  for (auto [byte, mask] : header_flips) {
    Bytes bad = frame;
    bad[byte] ^= mask;
    Status st = codec.decompress(Codec::kZstd, bad.data(), bad.size(), out.data(), out.size());
    EXPECT_EQ(st.code(), Error::kIntegrity) << "byte " << byte;
    EXPECT_FALSE(st.message().empty());
  }
  // Anywhere else a flip may decode to wrong bytes of the right length (the per-chunk XXH3-64
  // catches those); it must never crash, write past raw_len, or return another error kind.
  Bytes guarded(src.size() + 64, 0xC3);
  for (size_t byte = 0; byte < frame.size(); byte += 7) {
    Bytes bad = frame;
    bad[byte] ^= static_cast<uint8_t>(1u << (byte % 8));
    Status st = codec.decompress(Codec::kZstd, bad.data(), bad.size(), guarded.data(), src.size());
    if (!st.is_ok()) {
      EXPECT_EQ(st.code(), Error::kIntegrity) << "byte " << byte;
    }
    for (size_t i = src.size(); i < guarded.size(); ++i) ASSERT_EQ(guarded[i], 0xC3);
  }
  // The decoder context is not poisoned by the corrupt frames.
  ASSERT_TRUE(codec.decompress(Codec::kZstd, frame.data(), frame.size(), out.data(), out.size())
                  .is_ok());
  EXPECT_EQ(out, src);
}

TEST(ChunkCodecTest, TrailingBytesOrSecondFrameAreIntegrityErrors) {
  ChunkCodec codec;
  Bytes half = text_bytes(50000);
  Bytes frame = compress_zstd(codec, level(3), half);
  Bytes out(100000);

  Bytes trailing = frame;
  trailing.push_back(0);
  EXPECT_EQ(codec.decompress(Codec::kZstd, trailing.data(), trailing.size(), out.data(), 50000)
                .code(),
            Error::kIntegrity);

  // Two frames that together decode to raw_len are still not "one zstd frame".
  Bytes two = frame;
  two.insert(two.end(), frame.begin(), frame.end());
  EXPECT_EQ(codec.decompress(Codec::kZstd, two.data(), two.size(), out.data(), 100000).code(),
            Error::kIntegrity);
}

TEST(ChunkCodecTest, FrameWithoutContentSizeIsCheckedByOutputLength) {
  // Another zstd encoder may omit the content size; the output length check must catch a lie.
  Bytes src = text_bytes(100000);
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ASSERT_NE(cctx, nullptr);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 0);
  Bytes frame(ZSTD_compressBound(src.size()));
  size_t n = ZSTD_compress2(cctx, frame.data(), frame.size(), src.data(), src.size());
  ZSTD_freeCCtx(cctx);
  ASSERT_FALSE(ZSTD_isError(n));
  frame.resize(n);
  ASSERT_EQ(ZSTD_getFrameContentSize(frame.data(), frame.size()), ZSTD_CONTENTSIZE_UNKNOWN);

  ChunkCodec codec;
  Bytes out(src.size() + 10);
  ASSERT_TRUE(codec.decompress(Codec::kZstd, frame.data(), n, out.data(), src.size()).is_ok());
  EXPECT_TRUE(std::equal(src.begin(), src.end(), out.begin()));
  EXPECT_EQ(codec.decompress(Codec::kZstd, frame.data(), n, out.data(), src.size() + 10).code(),
            Error::kIntegrity);
  EXPECT_EQ(codec.decompress(Codec::kZstd, frame.data(), n, out.data(), src.size() - 10).code(),
            Error::kIntegrity);
  // Without content sizes, only the "exactly one frame" check rejects two frames whose
  // outputs add up to raw_len.
  Bytes two = frame;
  two.insert(two.end(), frame.begin(), frame.end());
  Bytes out2(2 * src.size());
  EXPECT_EQ(codec.decompress(Codec::kZstd, two.data(), two.size(), out2.data(), out2.size())
                .code(),
            Error::kIntegrity);
}

// --- CompressionSetting ----------------------------------------------------------------------

TEST(CompressionSettingTest, ParseAcceptsAutoNoneAndLevelsOneToNineteen) {
  auto a = CompressionSetting::parse("auto");
  ASSERT_TRUE(a.is_ok());
  EXPECT_EQ(a->mode, CompressionSetting::Mode::kAuto);
  auto n = CompressionSetting::parse("none");
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(n->mode, CompressionSetting::Mode::kNone);
  for (int l = 1; l <= 19; ++l) {
    auto r = CompressionSetting::parse(std::to_string(l));
    ASSERT_TRUE(r.is_ok()) << l;
    EXPECT_EQ(r->mode, CompressionSetting::Mode::kLevel);
    EXPECT_EQ(r->level, l);
  }
}

TEST(CompressionSettingTest, ParseRejectsEverythingElseWithAUsageError) {
  for (const char* bad : {"0", "20", "99", "100", "-1", "+3", "01", " 1", "1 ", "1.5", "fast",
                          "", "AUTO", "None", "3x", "19 "}) {
    auto r = CompressionSetting::parse(bad);
    ASSERT_FALSE(r.is_ok()) << "'" << bad << "'";
    EXPECT_EQ(r.status().code(), Error::kUsage) << bad;
    EXPECT_EQ(r.status().message(),
              std::string("invalid --compress value '") + bad + "' (expected auto, none or 1..19)");
  }
}

TEST(CompressionSettingTest, ToStringRoundTripsThroughParse) {
  EXPECT_EQ(auto_mode().to_string(), "auto");
  EXPECT_EQ(none_mode().to_string(), "none");
  EXPECT_EQ(level(3).to_string(), "3");
  for (const char* text : {"auto", "none", "1", "9", "19"}) {
    auto r = CompressionSetting::parse(text);
    ASSERT_TRUE(r.is_ok());
    EXPECT_EQ(r->to_string(), text);
  }
}

TEST(CompressionSettingTest, DefaultIsAuto) {
  EXPECT_EQ(CompressionSetting{}.mode, CompressionSetting::Mode::kAuto);
}

}  // namespace
}  // namespace ferry
