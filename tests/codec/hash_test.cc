// Tests for src/codec/hash.{h,cc}: XXH3 wrappers, streaming hash and OrderedFileHasher.
#include "codec/hash.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

// --- Allocation tracking ---------------------------------------------------------------------
// OrderedFileHasher must not keep a chunk-sized scratch buffer after catching up. To observe
// that, array allocations of exactly kTrackedSize bytes (an odd size nothing else in the test
// asks for) are recorded and their release noticed.
namespace {
constexpr size_t kTrackedSize = 3 * 65536 + 17;
std::atomic<int> g_tracked_live{0};
std::atomic<int> g_tracked_total{0};
constexpr int kSlots = 64;
std::atomic<void*> g_tracked_ptrs[kSlots];
}  // namespace

void* operator new[](size_t size) {
  void* p = std::malloc(size == 0 ? 1 : size);
  if (p == nullptr) throw std::bad_alloc();
  if (size == kTrackedSize) {
    for (auto& slot : g_tracked_ptrs) {
      void* expected = nullptr;
      if (slot.compare_exchange_strong(expected, p)) break;
    }
    ++g_tracked_live;
    ++g_tracked_total;
  }
  return p;
}

void operator delete[](void* p) noexcept {
  if (p == nullptr) return;
  for (auto& slot : g_tracked_ptrs) {
    void* expected = p;
    if (slot.compare_exchange_strong(expected, nullptr)) {
      --g_tracked_live;
      break;
    }
  }
  std::free(p);
}

void operator delete[](void* p, size_t) noexcept { operator delete[](p); }

namespace ferry {
namespace {

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

// A file held in memory, with a read-back function that counts calls and can be made to fail.
struct FakeFile {
  std::vector<uint8_t> bytes;
  int reads = 0;
  bool fail = false;

  OrderedFileHasher::ReadBack read_back() {
    return [this](uint64_t offset, uint8_t* dst, size_t len) -> Status {
      ++reads;
      if (fail) return Status(Error::kLocalIo, "pread 'shot.exr': Input/output error");
      if (offset > bytes.size() || len > bytes.size() - offset) {
        return Status(Error::kInternal, "read past end of fake file");
      }
      std::memcpy(dst, bytes.data() + offset, len);
      return Status::ok();
    };
  }
  const uint8_t* chunk(uint32_t chunk_size, uint32_t i) const {
    return bytes.data() + static_cast<uint64_t>(i) * chunk_size;
  }
};

// --- Known answers and formats ----------------------------------------------------------------

TEST(Xxh3Test, EmptyInputMatchesPublishedKnownAnswers) {
  EXPECT_EQ(xxh3_64("", 0), 0x2D06800538D394C2ull);
  EXPECT_EQ(xxh3_64(nullptr, 0), 0x2D06800538D394C2ull);
  // `xxh128sum /dev/null` prints this value.
  EXPECT_EQ(xxh3_128(nullptr, 0).hex(), "99aa06d3014798d86001c324468d497f");
}

TEST(Xxh3Test, WrappersAgreeWithLibxxhashForManyLengths) {
  // Lengths cross XXH3's internal size classes (0-16, 17-128, 129-240, >240, >1 block).
  auto data = random_bytes(5000, 1);
  for (size_t len : {0, 1, 3, 4, 8, 9, 16, 17, 128, 129, 240, 241, 1024, 1025, 5000}) {
    EXPECT_EQ(xxh3_64(data.data(), len), XXH3_64bits(data.data(), len)) << len;
    XXH128_hash_t ref = XXH3_128bits(data.data(), len);
    Hash128 h = xxh3_128(data.data(), len);
    EXPECT_EQ(h.high, ref.high64) << len;
    EXPECT_EQ(h.low, ref.low64) << len;
  }
}

TEST(Hash128Test, HexIsHighThenLowAsThirtyTwoLowercaseDigits) {
  Hash128 h{0x0123456789ABCDEFull, 0xFEDCBA9876543210ull};
  EXPECT_EQ(h.hex(), "0123456789abcdeffedcba9876543210");
  EXPECT_EQ(Hash128{}.hex(), std::string(32, '0'));
}

TEST(Hash128Test, FromHexInvertsHexAndRejectsAnythingElse) {
  Hash128 h{0x0123456789ABCDEFull, 0xFEDCBA9876543210ull}, back;
  ASSERT_TRUE(Hash128::from_hex(h.hex(), &back));
  EXPECT_EQ(back, h);
  for (const char* bad : {"", "0123456789ABCDEFFEDCBA9876543210", "0123456789abcdeffedcba987654321", "0123456789abcdeffedcba98765432100",
                          "0123456789abcdeffedcba987654321g", " 123456789abcdeffedcba9876543210"})
    EXPECT_FALSE(Hash128::from_hex(bad, &back)) << bad;
}

TEST(Hash128Test, BytesAreBigEndianHighFirstAndRoundTrip) {
  Hash128 h{0x0102030405060708ull, 0x090A0B0C0D0E0F10ull};
  uint8_t bytes[16];
  h.to_bytes(bytes);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(bytes[i], i + 1) << i;
  EXPECT_EQ(Hash128::from_bytes(bytes), h);

  Hash128 r = xxh3_128("ferry", 5);
  r.to_bytes(bytes);
  EXPECT_EQ(Hash128::from_bytes(bytes), r);
}

TEST(Hash128Test, HexMatchesXxh128sumCommand) {
  if (std::system("command -v xxh128sum >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "xxh128sum not installed (Debian package 'xxhash'); cannot cross-check";
  }
  auto data = random_bytes(100000, 7);
  char path[] = "/tmp/ferry_hash_test_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
  close(fd);

  std::string cmd = std::string("xxh128sum ") + path;
  FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char line[256] = {};
  char* got = fgets(line, sizeof line, p);
  pclose(p);
  unlink(path);
  ASSERT_NE(got, nullptr);
  std::string out(line);
  EXPECT_EQ(out.substr(0, out.find(' ')), xxh3_128(data.data(), data.size()).hex());
}

// --- StreamingHash128 ------------------------------------------------------------------------

TEST(StreamingHash128Test, PiecewiseUpdatesEqualOneShot) {
  auto data = random_bytes(200000, 2);
  const Hash128 want = xxh3_128(data.data(), data.size());
  for (size_t piece : {1, 7, 64, 240, 4096, 65537, 200000}) {
    StreamingHash128 s;
    for (size_t off = 0; off < data.size(); off += piece) {
      s.update(data.data() + off, std::min(piece, data.size() - off));
      s.update(nullptr, 0);  // empty updates change nothing
    }
    EXPECT_EQ(s.digest(), want) << "piece " << piece;
  }
}

TEST(StreamingHash128Test, FreshStateDigestsAsEmptyInput) {
  StreamingHash128 s;
  EXPECT_EQ(s.digest(), xxh3_128(nullptr, 0));
}

TEST(StreamingHash128Test, DigestDoesNotDisturbLaterUpdates) {
  auto data = random_bytes(1000, 3);
  StreamingHash128 s;
  s.update(data.data(), 500);
  EXPECT_EQ(s.digest(), xxh3_128(data.data(), 500));
  s.update(data.data() + 500, 500);
  EXPECT_EQ(s.digest(), xxh3_128(data.data(), 1000));
}

// --- chunk_count_for / chunk_length ------------------------------------------------------------

TEST(ChunkMathTest, CountIsCeilingAndZeroForEmptyFile) {
  EXPECT_EQ(chunk_count_for(0, 4096), 0u);
  EXPECT_EQ(chunk_count_for(1, 4096), 1u);
  EXPECT_EQ(chunk_count_for(4095, 4096), 1u);
  EXPECT_EQ(chunk_count_for(4096, 4096), 1u);
  EXPECT_EQ(chunk_count_for(4097, 4096), 2u);
  // Files far larger than 4 GiB with 64 MiB chunks.
  const uint32_t c64m = 64u << 20;
  EXPECT_EQ(chunk_count_for(1ull << 40, c64m), 16384u);
  EXPECT_EQ(chunk_count_for((1ull << 40) + 1, c64m), 16385u);
  EXPECT_EQ(chunk_count_for(10, 1), 10u);
}

TEST(ChunkMathTest, LastChunkIsShorterOnlyWhenSizeIsNotAMultiple) {
  EXPECT_EQ(chunk_length(10000, 4096, 0), 4096u);
  EXPECT_EQ(chunk_length(10000, 4096, 1), 4096u);
  EXPECT_EQ(chunk_length(10000, 4096, 2), 10000u - 8192u);
  EXPECT_EQ(chunk_length(8192, 4096, 1), 4096u);
  EXPECT_EQ(chunk_length(1, 4096, 0), 1u);
  const uint32_t c64m = 64u << 20;
  const uint64_t big = (1ull << 40) + 12345;
  EXPECT_EQ(chunk_length(big, c64m, chunk_count_for(big, c64m) - 1), 12345u);
  EXPECT_EQ(chunk_length(big, c64m, 16383), c64m);
  // Lengths of all chunks add up to the file size.
  uint64_t sum = 0;
  for (uint32_t i = 0; i < chunk_count_for(10000, 999); ++i) sum += chunk_length(10000, 999, i);
  EXPECT_EQ(sum, 10000u);
}

// --- OrderedFileHasher -----------------------------------------------------------------------

constexpr uint32_t kChunk = 1000;

TEST(OrderedFileHasherTest, InOrderChunksAreHashedWithoutReadBack) {
  FakeFile f{random_bytes(10 * kChunk + 123, 10)};
  OrderedFileHasher h(f.bytes.size(), kChunk, f.read_back());
  ASSERT_EQ(h.chunk_count(), 11u);
  for (uint32_t i = 0; i < h.chunk_count(); ++i) {
    EXPECT_FALSE(h.complete());
    ASSERT_TRUE(h.add_chunk(i, f.chunk(kChunk, i), chunk_length(f.bytes.size(), kChunk, i)).is_ok());
  }
  EXPECT_TRUE(h.complete());
  EXPECT_EQ(h.digest(), xxh3_128(f.bytes.data(), f.bytes.size()));
  EXPECT_EQ(f.reads, 0);
}

TEST(OrderedFileHasherTest, ReverseOrderChunksGiveTheSameDigestAsOneShot) {
  FakeFile f{random_bytes(8 * kChunk + 1, 11)};
  OrderedFileHasher h(f.bytes.size(), kChunk, f.read_back());
  const uint32_t n = h.chunk_count();
  for (uint32_t i = n; i-- > 0;) {
    EXPECT_FALSE(h.complete());
    ASSERT_TRUE(h.add_chunk(i, f.chunk(kChunk, i), chunk_length(f.bytes.size(), kChunk, i)).is_ok());
  }
  EXPECT_TRUE(h.complete());
  EXPECT_EQ(h.digest(), xxh3_128(f.bytes.data(), f.bytes.size()));
  // Chunk 0 came last and in order; every other chunk arrived early and was read back once.
  EXPECT_EQ(f.reads, static_cast<int>(n) - 1);
}

TEST(OrderedFileHasherTest, OutOfOrderChunksGiveTheSameDigestAsOneShot) {
  for (uint32_t seed = 0; seed < 20; ++seed) {
    FakeFile f{random_bytes(37 * kChunk + seed * 13, seed)};
    OrderedFileHasher h(f.bytes.size(), kChunk, f.read_back());
    std::vector<uint32_t> order(h.chunk_count());
    std::iota(order.begin(), order.end(), 0u);
    std::shuffle(order.begin(), order.end(), std::mt19937(seed));
    std::mt19937 coin(seed + 100);
    for (uint32_t i : order) {
      // Mix chunks received now with chunks already on disk from an earlier run.
      Status st = (coin() & 1) ? h.add_chunk_on_disk(i)
                               : h.add_chunk(i, f.chunk(kChunk, i),
                                             chunk_length(f.bytes.size(), kChunk, i));
      ASSERT_TRUE(st.is_ok()) << st.to_string();
    }
    EXPECT_TRUE(h.complete()) << "seed " << seed;
    EXPECT_EQ(h.digest(), xxh3_128(f.bytes.data(), f.bytes.size())) << "seed " << seed;
  }
}

TEST(OrderedFileHasherTest, AllChunksOnDiskAreReadBackInOrder) {
  FakeFile f{random_bytes(5 * kChunk, 12)};
  OrderedFileHasher h(f.bytes.size(), kChunk, f.read_back());
  for (uint32_t i = 0; i < h.chunk_count(); ++i) ASSERT_TRUE(h.add_chunk_on_disk(i).is_ok());
  EXPECT_TRUE(h.complete());
  EXPECT_EQ(h.digest(), xxh3_128(f.bytes.data(), f.bytes.size()));
  EXPECT_EQ(f.reads, 5);
}

TEST(OrderedFileHasherTest, DuplicateAddIsIgnored) {
  FakeFile f{random_bytes(4 * kChunk, 13)};
  std::vector<uint8_t> garbage(kChunk, 0xAB);
  OrderedFileHasher h(f.bytes.size(), kChunk, f.read_back());
  ASSERT_TRUE(h.add_chunk(0, f.chunk(kChunk, 0), kChunk).is_ok());
  // A resend of an already-hashed chunk must not be hashed again (even with other bytes).
  ASSERT_TRUE(h.add_chunk(0, garbage.data(), kChunk).is_ok());
  ASSERT_TRUE(h.add_chunk(2, f.chunk(kChunk, 2), kChunk).is_ok());
  ASSERT_TRUE(h.add_chunk(2, garbage.data(), kChunk).is_ok());
  ASSERT_TRUE(h.add_chunk_on_disk(2).is_ok());
  ASSERT_TRUE(h.add_chunk(1, f.chunk(kChunk, 1), kChunk).is_ok());
  ASSERT_TRUE(h.add_chunk(3, f.chunk(kChunk, 3), kChunk).is_ok());
  ASSERT_TRUE(h.add_chunk_on_disk(3).is_ok());
  EXPECT_TRUE(h.complete());
  EXPECT_EQ(h.digest(), xxh3_128(f.bytes.data(), f.bytes.size()));
  EXPECT_EQ(f.reads, 1);  // only chunk 2, once
}

TEST(OrderedFileHasherTest, ReadBackErrorIsPropagatedAndRetriedLater) {
  FakeFile f{random_bytes(3 * kChunk, 14)};
  OrderedFileHasher h(f.bytes.size(), kChunk, f.read_back());
  ASSERT_TRUE(h.add_chunk(1, f.chunk(kChunk, 1), kChunk).is_ok());
  f.fail = true;
  Status st = h.add_chunk(0, f.chunk(kChunk, 0), kChunk);
  EXPECT_EQ(st.code(), Error::kLocalIo);
  EXPECT_NE(st.message().find("Input/output error"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("chunk 1"), std::string::npos) << st.message();
  EXPECT_FALSE(h.complete());
  EXPECT_EQ(h.digest(), Hash128{});  // no partial digest leaks out

  // Once the file is readable again, the next event resumes the catch-up.
  f.fail = false;
  ASSERT_TRUE(h.add_chunk(2, f.chunk(kChunk, 2), kChunk).is_ok());
  EXPECT_TRUE(h.complete());
  EXPECT_EQ(h.digest(), xxh3_128(f.bytes.data(), f.bytes.size()));
}

TEST(OrderedFileHasherTest, DuplicateAddRetriesAFailedCatchUp) {
  FakeFile f{random_bytes(2 * kChunk, 15)};
  OrderedFileHasher h(f.bytes.size(), kChunk, f.read_back());
  f.fail = true;
  ASSERT_TRUE(h.add_chunk_on_disk(1).is_ok());  // early: nothing to read yet
  EXPECT_FALSE(h.add_chunk(0, f.chunk(kChunk, 0), kChunk).is_ok());
  f.fail = false;
  ASSERT_TRUE(h.add_chunk_on_disk(1).is_ok());
  EXPECT_TRUE(h.complete());
  EXPECT_EQ(h.digest(), xxh3_128(f.bytes.data(), f.bytes.size()));
}

TEST(OrderedFileHasherTest, EmptyFileIsCompleteImmediately) {
  FakeFile f;
  OrderedFileHasher h(0, kChunk, f.read_back());
  EXPECT_EQ(h.chunk_count(), 0u);
  EXPECT_TRUE(h.complete());
  EXPECT_EQ(h.digest(), xxh3_128(nullptr, 0));
  EXPECT_EQ(f.reads, 0);
}

TEST(OrderedFileHasherTest, BadIndexOrLengthIsAnErrorNotACrash) {
  FakeFile f{random_bytes(2 * kChunk + 5, 16)};
  OrderedFileHasher h(f.bytes.size(), kChunk, f.read_back());
  EXPECT_EQ(h.add_chunk(3, f.chunk(kChunk, 0), kChunk).code(), Error::kInternal);
  EXPECT_EQ(h.add_chunk_on_disk(3).code(), Error::kInternal);
  EXPECT_EQ(h.add_chunk(2, f.chunk(kChunk, 2), kChunk).code(), Error::kInternal);  // last is 5
  EXPECT_EQ(h.add_chunk(0, f.chunk(kChunk, 0), kChunk - 1).code(), Error::kInternal);
  // The rejected calls left no trace: the file still hashes correctly.
  ASSERT_TRUE(h.add_chunk(2, f.chunk(kChunk, 2), 5).is_ok());
  ASSERT_TRUE(h.add_chunk(0, f.chunk(kChunk, 0), kChunk).is_ok());
  ASSERT_TRUE(h.add_chunk(1, f.chunk(kChunk, 1), kChunk).is_ok());
  EXPECT_TRUE(h.complete());
  EXPECT_EQ(h.digest(), xxh3_128(f.bytes.data(), f.bytes.size()));
}

TEST(OrderedFileHasherTest, ScratchBufferIsFreedAfterCatchingUp) {
  FakeFile f{random_bytes(6 * kTrackedSize, 17)};
  const uint32_t cs = static_cast<uint32_t>(kTrackedSize);
  int live_during_read = -1;
  auto inner = f.read_back();
  OrderedFileHasher h(f.bytes.size(), cs, [&](uint64_t off, uint8_t* dst, size_t len) {
    live_during_read = g_tracked_live.load();
    return inner(off, dst, len);
  });
  const int total_before = g_tracked_total.load();
  for (uint32_t i = 5; i >= 1; --i) ASSERT_TRUE(h.add_chunk(i, f.chunk(cs, i), cs).is_ok());
  EXPECT_EQ(g_tracked_total.load(), total_before);  // early chunks allocate nothing
  ASSERT_TRUE(h.add_chunk(0, f.chunk(cs, 0), cs).is_ok());
  EXPECT_EQ(live_during_read, 1);                       // one buffer while catching up...
  EXPECT_EQ(g_tracked_total.load(), total_before + 1);  // ...reused for all five chunks...
  EXPECT_EQ(g_tracked_live.load(), 0);                  // ...and released afterwards
  EXPECT_TRUE(h.complete());
  EXPECT_EQ(h.digest(), xxh3_128(f.bytes.data(), f.bytes.size()));
}

TEST(OrderedFileHasherTest, ConcurrentAddsFromSeveralThreadsGiveTheOneShotDigest) {
  FakeFile f{random_bytes(400 * kChunk + 77, 18)};
  OrderedFileHasher h(f.bytes.size(), kChunk, f.read_back());
  const uint32_t n = h.chunk_count();
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::shuffle(order.begin(), order.end(), std::mt19937(5));
  std::atomic<bool> all_ok{true};
  std::vector<std::thread> threads;
  constexpr int kThreads = 4;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (uint32_t k = t; k < n; k += kThreads) {
        uint32_t i = order[k];
        if (!h.add_chunk(i, f.chunk(kChunk, i), chunk_length(f.bytes.size(), kChunk, i)).is_ok()) {
          all_ok = false;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(all_ok);
  EXPECT_TRUE(h.complete());
  EXPECT_EQ(h.digest(), xxh3_128(f.bytes.data(), f.bytes.size()));
}

}  // namespace
}  // namespace ferry
