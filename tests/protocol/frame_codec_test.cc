// Tests for src/protocol/frame_codec.cc against docs/protocol.md (wire protocol v2):
// round trips of every frame, the header limits, malformed and truncated payloads, and a
// seeded random-bytes robustness run over every decoder.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <new>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "core/byte_order.h"
#include "protocol/frames.h"

// ---------------------------------------------------------------------------------------
// Allocation probe: the largest single operator-new request made while armed. Lets the tests
// check that a lying entry count never drives a reserve(). Replacing the global operator new
// is allowed by the standard; this binary only.
namespace {
std::atomic<bool> g_probe_armed{false};
std::atomic<size_t> g_probe_largest{0};

void* probe_alloc(size_t n) {
  if (g_probe_armed.load(std::memory_order_relaxed)) {
    size_t prev = g_probe_largest.load(std::memory_order_relaxed);
    while (n > prev && !g_probe_largest.compare_exchange_weak(prev, n)) {
    }
  }
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}

class AllocationProbe {
 public:
  AllocationProbe() {
    g_probe_largest = 0;
    g_probe_armed = true;
  }
  ~AllocationProbe() { g_probe_armed = false; }
  size_t largest() const { return g_probe_largest.load(); }
};
}  // namespace

void* operator new(size_t n) { return probe_alloc(n); }
void* operator new[](size_t n) { return probe_alloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace ferry::protocol {
namespace {

using Bytes = std::vector<uint8_t>;

// Splits an encoded frame: checks its header (type, length == payload size) and returns the
// payload.
Bytes payload_of(const Bytes& frame, FrameType expected) {
  EXPECT_GE(frame.size(), kFrameHeaderSize);
  if (frame.size() < kFrameHeaderSize) return {};
  auto h = decode_header(frame.data(), kMaxChunkSize);
  EXPECT_TRUE(h.is_ok()) << h.status().to_string();
  if (!h) return {};
  EXPECT_EQ(h->type, expected) << to_string(h->type);
  EXPECT_EQ(h->length, frame.size() - kFrameHeaderSize);
  return Bytes(frame.begin() + kFrameHeaderSize, frame.end());
}

Bytes header_bytes(uint8_t type, uint32_t length, uint8_t flags = 0, uint16_t reserved = 0) {
  Bytes b(kFrameHeaderSize);
  b[0] = type;
  b[1] = flags;
  store_be16(&b[2], reserved);
  store_be32(&b[4], length);
  return b;
}

template <typename T>
void expect_protocol_error(const Result<T>& r, const std::string& what) {
  EXPECT_FALSE(r.is_ok()) << what << ": accepted";
  if (!r.is_ok()) {
    EXPECT_EQ(r.status().code(), Error::kProtocol) << what << ": " << r.status().to_string();
  }
}

Id128 id_of(uint8_t seed) {
  Id128 id{};
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(seed + i * 17);
  return id;
}

FileListEntry list_entry(uint32_t id, FileType type, std::string path, uint32_t mode, int64_t mtime_ns, uint64_t size,
                         std::string link_target = "") {
  FileListEntry e;
  e.file_id = id;
  e.entry.type = type;
  e.entry.path = std::move(path);
  e.entry.mode = mode;
  e.entry.mtime_ns = mtime_ns;
  e.entry.size = size;
  e.entry.link_target = std::move(link_target);
  return e;
}

void expect_same_entry(const FileListEntry& a, const FileListEntry& b) {
  EXPECT_EQ(a.file_id, b.file_id);
  EXPECT_EQ(a.entry.type, b.entry.type) << a.entry.path;
  EXPECT_EQ(a.entry.path, b.entry.path);
  EXPECT_EQ(a.entry.mode, b.entry.mode) << a.entry.path;
  EXPECT_EQ(a.entry.mtime_ns, b.entry.mtime_ns) << a.entry.path;
  EXPECT_EQ(a.entry.size, b.entry.size) << a.entry.path;
  EXPECT_EQ(a.entry.link_target, b.entry.link_target) << a.entry.path;
}

FileList sample_file_list() {
  FileList m;
  m.entries.push_back(list_entry(0, FileType::kDirectory, "données", 0755, 1'700'000'000'123'456'789, 0));
  m.entries.push_back(list_entry(1, FileType::kRegular, "données/日本語 ファイル.txt", 0644, 1, 12345));
  m.entries.push_back(list_entry(2, FileType::kRegular, "my dir/a file with  spaces .exr", 0600, 0, 1ull << 40));
  m.entries.push_back(list_entry(3, FileType::kRegular, "meta/a;b|c&d$(e)`f`'g\"h*?[i]{j}\\k<l>m!n#o~\nnl\ttab.txt",
                                 07777, -1'234'567'890, 1));
  m.entries.push_back(list_entry(4, FileType::kSymlink, "links/🎬 latest", 0777, 42, 0, "../target dir/ü;$(x)"));
  m.entries.push_back(list_entry(5, FileType::kRegular, std::string("raw/\xff\xfe\x80 bytes"), 0, INT64_MIN,
                                 UINT64_MAX));
  m.entries.push_back(list_entry(6, FileType::kRegular, std::string(4096, 'p'), 0444, INT64_MAX, 0));
  m.entries.push_back(list_entry(UINT32_MAX, FileType::kDirectory, "d", 01755, 0, 0));
  return m;
}

FilePlan sample_file_plan() {
  FilePlan m;
  m.entries.push_back({0, PlanAction::kSkip, ""});
  m.entries.push_back({1, PlanAction::kSend, ""});
  m.entries.push_back({2, PlanAction::kReject, "path '../x' escapes the destination root"});
  m.entries.push_back({3, PlanAction::kReject, "'données/ü' exists on the receiver and is not a directory"});
  m.entries.push_back({UINT32_MAX, PlanAction::kSend, std::string(70, 'r')});
  return m;
}

OpenSession sample_open_session() {
  OpenSession m{};
  m.chunk_size = kDefaultChunkSize;
  m.data_streams = 4;
  m.overwrite = OverwriteMode::kDiff;
  m.transfer_id = id_of(7);
  m.dest_path = "shows/seq 010/プレート";
  return m;
}

// ---------------------------------------------------------------------------------------
// Round trips

TEST(FrameCodecRoundTrip, HelloKeepsMagicAndVersionRange) {
  Hello in;
  in.min_version = 1;
  in.max_version = 7;
  Bytes p = payload_of(encode(in), FrameType::kHello);
  auto out = decode_hello(p);
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out->magic, kMagic);
  EXPECT_EQ(out->min_version, 1);
  EXPECT_EQ(out->max_version, 7);
}

TEST(FrameCodecRoundTrip, HelloMatchesTheSpecByteLayout) {
  // type 0x01, flags 0, reserved 0, length 8; "FRRY", min 2, max 3 (big-endian).
  const Bytes expected = {0x01, 0, 0, 0, 0, 0, 0, 8, 'F', 'R', 'R', 'Y', 0, 2, 0, 3};
  EXPECT_EQ(encode(Hello{}), expected);
}

TEST(FrameCodecRoundTrip, AuthKeepsTheTokenAndMatchesTheSpecByteLayout) {
  // type 0x07, length 2 + 3; str "tok".
  const Bytes expected = {0x07, 0, 0, 0, 0, 0, 0, 5, 0, 3, 't', 'o', 'k'};
  EXPECT_EQ(encode(Auth{"tok"}), expected);
  auto out = decode_auth(payload_of(encode(Auth{"AbC-_9xyz"}), FrameType::kAuth));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out->token, "AbC-_9xyz");
  auto empty = decode_auth(payload_of(encode(Auth{""}), FrameType::kAuth));
  ASSERT_TRUE(empty.is_ok());
  EXPECT_EQ(empty->token, "");
}

TEST(FrameDecoders, AuthWithATokenOverTheLimitIsRejected) {
  auto ok = decode_auth(payload_of(encode(Auth{std::string(kMaxTokenLength, 'a')}), FrameType::kAuth));
  EXPECT_TRUE(ok.is_ok());
  auto bad = decode_auth(payload_of(encode(Auth{std::string(kMaxTokenLength + 1, 'a')}), FrameType::kAuth));
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), Error::kProtocol);
}

TEST(FrameDecoders, AuthOkIsEmpty) {
  EXPECT_EQ(encode_auth_ok(), (Bytes{0x08, 0, 0, 0, 0, 0, 0, 0}));
  EXPECT_TRUE(decode_auth_ok({}).is_ok());
  Bytes extra = {1};
  EXPECT_FALSE(decode_auth_ok(extra).is_ok());
}

TEST(FrameCodecRoundTrip, WelcomeKeepsAllFields) {
  Welcome in{1, kMaxChunkSize, kMaxStreams};
  auto out = decode_welcome(payload_of(encode(in), FrameType::kWelcome));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out->version, 1);
  EXPECT_EQ(out->max_chunk_size, kMaxChunkSize);
  EXPECT_EQ(out->max_streams, kMaxStreams);
}

TEST(FrameCodecRoundTrip, OpenSessionKeepsAllFieldsForEveryOverwriteMode) {
  for (auto mode : {OverwriteMode::kAlways, OverwriteMode::kNever, OverwriteMode::kDiff}) {
    OpenSession in = sample_open_session();
    in.overwrite = mode;
    auto out = decode_open_session(payload_of(encode(in), FrameType::kOpenSession));
    ASSERT_TRUE(out.is_ok()) << out.status().to_string();
    EXPECT_EQ(out->chunk_size, in.chunk_size);
    EXPECT_EQ(out->data_streams, in.data_streams);
    EXPECT_EQ(out->overwrite, mode);
    EXPECT_EQ(out->transfer_id, in.transfer_id);
    EXPECT_EQ(out->dest_path, in.dest_path);
  }
}

TEST(FrameCodecRoundTrip, OpenSessionAcceptsTheChunkSizeAndStreamBounds) {
  for (uint32_t cs : {kMinChunkSize, kMaxChunkSize}) {
    for (uint16_t streams : {uint16_t{1}, kMaxStreams}) {
      OpenSession in = sample_open_session();
      in.chunk_size = cs;
      in.data_streams = streams;
      in.dest_path = "";
      auto out = decode_open_session(payload_of(encode(in), FrameType::kOpenSession));
      ASSERT_TRUE(out.is_ok()) << cs << "/" << streams << ": " << out.status().to_string();
      EXPECT_EQ(out->chunk_size, cs);
      EXPECT_EQ(out->data_streams, streams);
      EXPECT_EQ(out->dest_path, "");
    }
  }
}

TEST(FrameCodecRoundTrip, OpenSessionKeepsEveryResumeMode) {
  for (auto mode : {ResumeMode::kOff, ResumeMode::kAttrs, ResumeMode::kSparse, ResumeMode::kFull}) {
    OpenSession in = sample_open_session();
    in.resume = mode;
    Bytes p = payload_of(encode(in), FrameType::kOpenSession);
    EXPECT_EQ(p[7], static_cast<uint8_t>(mode));  // the byte after overwrite
    auto out = decode_open_session(p);
    ASSERT_TRUE(out.is_ok()) << out.status().to_string();
    EXPECT_EQ(out->resume, mode);
    EXPECT_EQ(out->transfer_id, in.transfer_id);
  }
}

TEST(FrameCodecRoundTrip, SessionOpenedKeepsSessionId) {
  SessionOpened in;
  in.session_id = id_of(200);
  auto out = decode_session_opened(payload_of(encode(in), FrameType::kSessionOpened));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out->session_id, in.session_id);
}

TEST(FrameCodecRoundTrip, JoinStreamKeepsSessionIdAndIndex) {
  JoinStream in{};
  in.session_id = id_of(3);
  in.stream_index = 63;
  auto out = decode_join_stream(payload_of(encode(in), FrameType::kJoinStream));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out->session_id, in.session_id);
  EXPECT_EQ(out->stream_index, 63);
}

TEST(FrameCodecRoundTrip, EmptyFramesHaveOnlyAHeader) {
  Bytes joined = encode_stream_joined();
  EXPECT_EQ(joined.size(), kFrameHeaderSize);
  EXPECT_TRUE(payload_of(joined, FrameType::kStreamJoined).empty());
  Bytes fin = encode_finish();
  EXPECT_EQ(fin.size(), kFrameHeaderSize);
  EXPECT_TRUE(payload_of(fin, FrameType::kFinish).empty());
}

TEST(FrameCodecRoundTrip, FileListWithUnicodeSpacesMetacharactersRawBytesAndSymlink) {
  FileList in = sample_file_list();
  Bytes p = payload_of(encode(in), FrameType::kFileList);
  auto out = decode_file_list(p);
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  ASSERT_EQ(out->entries.size(), in.entries.size());
  for (size_t i = 0; i < in.entries.size(); ++i) expect_same_entry(out->entries[i], in.entries[i]);
  EXPECT_EQ(out->entries[4].entry.type, FileType::kSymlink);
  EXPECT_EQ(out->entries[4].entry.link_target, "../target dir/ü;$(x)");
}

TEST(FrameCodecRoundTrip, EmptyFileListRoundTrips) {
  Bytes p = payload_of(encode(FileList{}), FrameType::kFileList);
  EXPECT_EQ(p.size(), 4u);
  auto out = decode_file_list(p);
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_TRUE(out->entries.empty());
}

TEST(FrameCodecRoundTrip, FileListEncodedSizeMatchesTheEncoder) {
  FileList in = sample_file_list();
  size_t sum = 4;  // count
  for (const auto& e : in.entries) sum += encoded_size(e);
  EXPECT_EQ(payload_of(encode(in), FrameType::kFileList).size(), sum);
}

TEST(FrameCodecRoundTrip, FileListEntryMatchesTheSpecByteLayout) {
  FileList in;
  in.entries.push_back(list_entry(0x01020304, FileType::kSymlink, "ab", 0755, 0x1122334455667788, 0, "t"));
  const Bytes expected = {
      0, 0, 0, 1,                                      // count
      1, 2, 3, 4,                                      // file_id
      2,                                               // type symlink
      0, 0, 0x01, 0xED,                                // mode 0755
      0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,  // mtime_ns
      0, 0, 0, 0, 0, 0, 0, 0,                          // size
      0, 2, 'a', 'b',                                  // path
      0, 1, 't',                                       // link_target
  };
  EXPECT_EQ(payload_of(encode(in), FrameType::kFileList), expected);
}

TEST(FrameCodecRoundTrip, FileListEncoderKeepsOnlyPermissionBitsOfMode) {
  FileList in;
  in.entries.push_back(list_entry(0, FileType::kRegular, "f", 0100644, 0, 0));  // S_IFREG | 0644
  auto out = decode_file_list(payload_of(encode(in), FrameType::kFileList));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  ASSERT_EQ(out->entries.size(), 1u);
  EXPECT_EQ(out->entries[0].entry.mode, 0644u);
}

TEST(FrameCodecRoundTrip, FileListEndKeepsTotal) {
  auto out = decode_file_list_end(payload_of(encode(FileListEnd{kMaxFilesPerSession}), FrameType::kFileListEnd));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out->total_files, kMaxFilesPerSession);
}

TEST(FrameCodecRoundTrip, FilePlanWithEveryActionAndReasons) {
  FilePlan in = sample_file_plan();
  auto out = decode_file_plan(payload_of(encode(in), FrameType::kFilePlan));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  ASSERT_EQ(out->entries.size(), in.entries.size());
  for (size_t i = 0; i < in.entries.size(); ++i) {
    EXPECT_EQ(out->entries[i].file_id, in.entries[i].file_id);
    EXPECT_EQ(out->entries[i].action, in.entries[i].action);
    EXPECT_EQ(out->entries[i].reason, in.entries[i].reason);
  }
}

TEST(FrameCodecRoundTrip, HaveChunksKeepsIndicesAndHashes) {
  HaveChunks in{42, {{0, 0}, {1, 0x0123456789ABCDEFull}, {7, UINT64_MAX}, {UINT32_MAX, 5}}};
  auto out = decode_have_chunks(payload_of(encode(in), FrameType::kHaveChunks));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out->file_id, 42u);
  EXPECT_EQ(out->chunks, in.chunks);
  auto empty = decode_have_chunks(payload_of(encode(HaveChunks{3, {}}), FrameType::kHaveChunks));
  ASSERT_TRUE(empty.is_ok()) << empty.status().to_string();
  EXPECT_EQ(empty->file_id, 3u);
  EXPECT_TRUE(empty->chunks.empty());
}

TEST(FrameCodecRoundTrip, HaveChunksMatchesTheSpecByteLayout) {
  HaveChunks in{0x01020304, {{0x05060708, 0x1112131415161718ull}}};
  const Bytes expected = {
      0x13, 0, 0, 0, 0, 0, 0, 20,                      // header: HAVE_CHUNKS, length 20
      1, 2, 3, 4,                                      // file_id
      0, 0, 0, 1,                                      // count
      5, 6, 7, 8,                                      // chunk_index
      0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,  // xxh3-64
  };
  EXPECT_EQ(encode(in), expected);
}

TEST(FrameCodecRoundTrip, FullHaveChunksFrameFitsTheControlLimit) {
  HaveChunks in{1, {}};
  for (uint32_t i = 0; i < kMaxHaveChunksPerFrame; ++i) in.chunks.emplace_back(i, i * 31ull);
  Bytes frame = encode(in);
  EXPECT_LE(frame.size() - kFrameHeaderSize, kMaxControlPayload);
  auto out = decode_have_chunks(payload_of(frame, FrameType::kHaveChunks));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out->chunks.size(), kMaxHaveChunksPerFrame);
  // One more entry would not fit: kMaxHaveChunksPerFrame is the real maximum.
  EXPECT_GT(8 + 12 * (kMaxHaveChunksPerFrame + 1), kMaxControlPayload);
}

TEST(FrameCodecRoundTrip, ChunkPrefixDecodesToTheSameHeader) {
  ChunkHeader in{0xA1B2C3D4, 0x00010203, kDefaultChunkSize, 1, 0x0123456789ABCDEFull};
  const uint32_t payload_len = 123'456;
  uint8_t prefix[kChunkPrefixSize];
  std::memset(prefix, 0xEE, sizeof prefix);
  encode_chunk_prefix(in, payload_len, prefix);

  auto h = decode_header(prefix, kDefaultChunkSize);
  ASSERT_TRUE(h.is_ok()) << h.status().to_string();
  EXPECT_EQ(h->type, FrameType::kChunk);
  EXPECT_EQ(h->length, kChunkHeaderSize + payload_len);

  auto out = decode_chunk_header(std::span<const uint8_t>(prefix + kFrameHeaderSize, kChunkHeaderSize));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out->file_id, in.file_id);
  EXPECT_EQ(out->chunk_index, in.chunk_index);
  EXPECT_EQ(out->raw_length, in.raw_length);
  EXPECT_EQ(out->codec, in.codec);
  EXPECT_EQ(out->xxh3_64, in.xxh3_64);
}

TEST(FrameCodecRoundTrip, ChunkPrefixMatchesTheSpecByteLayout) {
  ChunkHeader in{0x01020304, 0x05060708, 0x090A0B0C, 1, 0x1112131415161718ull};
  uint8_t prefix[kChunkPrefixSize];
  std::memset(prefix, 0xEE, sizeof prefix);  // reserved bytes must be overwritten with zeros
  encode_chunk_prefix(in, 0x100, prefix);
  const Bytes expected = {
      0x20, 0, 0, 0, 0, 0, 0x01, 0x20,                 // header: CHUNK, length 32 + 0x100
      1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,           // file_id, chunk_index, raw_length
      1, 0, 0, 0,                                      // codec, reserved
      0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18,  // xxh3-64
      0, 0, 0, 0, 0, 0, 0, 0,                          // reserved
  };
  EXPECT_EQ(Bytes(prefix, prefix + kChunkPrefixSize), expected);
}

TEST(FrameCodecRoundTrip, ChunkNackKeepsAllFields) {
  for (uint16_t reason : {uint16_t{1}, uint16_t{2}}) {
    auto out = decode_chunk_nack(payload_of(encode(ChunkNack{9, 77, reason}), FrameType::kChunkNack));
    ASSERT_TRUE(out.is_ok()) << out.status().to_string();
    EXPECT_EQ(out->file_id, 9u);
    EXPECT_EQ(out->chunk_index, 77u);
    EXPECT_EQ(out->reason, reason);
  }
}

TEST(FrameCodecRoundTrip, FileDoneKeepsCountsAndHash) {
  FileDone in{12, 3456, 3000, Hash128{0x0102030405060708ull, 0xF0E0D0C0B0A09080ull}};
  auto out = decode_file_done(payload_of(encode(in), FrameType::kFileDone));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out->file_id, 12u);
  EXPECT_EQ(out->chunk_count, 3456u);
  EXPECT_EQ(out->sent_chunks, 3000u);
  EXPECT_EQ(out->hash, in.hash);
}

TEST(FrameCodecRoundTrip, FileResultKeepsAllFields) {
  FileResult in{5, 7, Hash128{1, 2}, "checksum mismatch: 'données/ü.exr'"};
  auto out = decode_file_result(payload_of(encode(in), FrameType::kFileResult));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out->file_id, 5u);
  EXPECT_EQ(out->status, 7);
  EXPECT_EQ(out->hash, in.hash);
  EXPECT_EQ(out->message, in.message);
}

TEST(FrameCodecRoundTrip, FileAbortKeepsAllFields) {
  FileAbort in{8, 5, "read '/src/a b': Input/output error"};
  auto out = decode_file_abort(payload_of(encode(in), FrameType::kFileAbort));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out->file_id, 8u);
  EXPECT_EQ(out->code, 5);
  EXPECT_EQ(out->message, in.message);
}

TEST(FrameCodecRoundTrip, SummaryKeepsAllFields) {
  Summary in{10'000'000, 3, UINT64_MAX - 1};
  auto out = decode_summary(payload_of(encode(in), FrameType::kSummary));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out->files_committed, in.files_committed);
  EXPECT_EQ(out->files_failed, in.files_failed);
  EXPECT_EQ(out->bytes_written, in.bytes_written);
}

TEST(FrameCodecRoundTrip, ErrorKeepsCodeAndMessage) {
  ErrorFrame in{4, "unsupported protocol version; this receiver speaks 1..1"};
  auto out = decode_error(payload_of(encode(in), FrameType::kError));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(out->code, 4);
  EXPECT_EQ(out->message, in.message);
}

TEST(FrameCodecRoundTrip, LongMessagesAreCutTo4096BytesAndStillDecode) {
  std::string big(70'000, 'm');  // longer than a u16 string can carry
  auto res = decode_file_result(payload_of(encode(FileResult{1, 5, {}, big}), FrameType::kFileResult));
  ASSERT_TRUE(res.is_ok()) << res.status().to_string();
  EXPECT_EQ(res->message, big.substr(0, 4096));
  auto ab = decode_file_abort(payload_of(encode(FileAbort{1, 5, big}), FrameType::kFileAbort));
  ASSERT_TRUE(ab.is_ok()) << ab.status().to_string();
  EXPECT_EQ(ab->message, big.substr(0, 4096));
  auto err = decode_error(payload_of(encode(ErrorFrame{9, big}), FrameType::kError));
  ASSERT_TRUE(err.is_ok()) << err.status().to_string();
  EXPECT_EQ(err->message, big.substr(0, 4096));
}

// ---------------------------------------------------------------------------------------
// Frame header

TEST(FrameHeader, EveryKnownTypeIsAcceptedAndEveryOtherTypeRejected) {
  const std::vector<uint8_t> known = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x0C, 0x0D, 0x0E, 0x10, 0x11, 0x12,
                                      0x13, 0x20, 0x21, 0x22, 0x23, 0x24, 0x30, 0x31, 0x3F,
                                      0x40, 0x41, 0x42, 0x43, 0x44, 0x50};
  int accepted = 0;
  for (int t = 0; t < 256; ++t) {
    bool is_known = std::find(known.begin(), known.end(), t) != known.end();
    uint32_t len = t == 0x20 ? kChunkHeaderSize : 0;
    Bytes h = header_bytes(static_cast<uint8_t>(t), len);
    auto r = decode_header(h.data(), kDefaultChunkSize);
    if (is_known) {
      EXPECT_TRUE(r.is_ok()) << "type " << t << ": " << r.status().to_string();
      if (r) {
        EXPECT_EQ(static_cast<int>(r->type), t);
        ++accepted;
      }
    } else {
      expect_protocol_error(r, "type " + std::to_string(t));
    }
  }
  EXPECT_EQ(accepted, 29);
}

TEST(FrameHeader, NonZeroFlagsAreRejected) {
  for (int flags = 1; flags < 256; ++flags) {
    Bytes h = header_bytes(0x01, 8, static_cast<uint8_t>(flags));
    expect_protocol_error(decode_header(h.data(), kDefaultChunkSize), "flags " + std::to_string(flags));
  }
}

TEST(FrameHeader, NonZeroReservedBytesAreRejected) {
  for (uint16_t reserved : {uint16_t{0x0001}, uint16_t{0x0100}, uint16_t{0x8000}, uint16_t{0xFFFF}}) {
    Bytes h = header_bytes(0x10, 8, 0, reserved);
    expect_protocol_error(decode_header(h.data(), kDefaultChunkSize), "reserved " + std::to_string(reserved));
  }
}

TEST(FrameHeader, ControlFrameOfExactly1MiBIsAcceptedAndOneByteMoreRejected) {
  for (uint8_t t : {0x01, 0x03, 0x10, 0x12, 0x13, 0x23, 0x3F}) {
    Bytes ok = header_bytes(t, kMaxControlPayload);
    auto r = decode_header(ok.data(), kMaxChunkSize);
    ASSERT_TRUE(r.is_ok()) << int(t) << ": " << r.status().to_string();
    EXPECT_EQ(r->length, kMaxControlPayload);
    for (uint32_t len : {kMaxControlPayload + 1, 16u << 20, UINT32_MAX}) {
      Bytes bad = header_bytes(t, len);
      // Even with the largest session chunk size: the CHUNK bound never applies to control frames.
      expect_protocol_error(decode_header(bad.data(), kMaxChunkSize),
                            "type " + std::to_string(t) + " length " + std::to_string(len));
    }
  }
}

TEST(FrameHeader, ChunkFrameLongerThanSessionChunkSizeIsRejectedBeforeAllocation) {
  const uint32_t session_chunk = kDefaultChunkSize;
  Bytes ok = header_bytes(0x20, kChunkHeaderSize + session_chunk);
  auto r = decode_header(ok.data(), session_chunk);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->length, kChunkHeaderSize + session_chunk);
  const uint32_t header = kChunkHeaderSize;
  for (uint32_t len : {header + session_chunk + 1, header + kMaxChunkSize, uint32_t{UINT32_MAX}}) {
    Bytes bad = header_bytes(0x20, len);
    expect_protocol_error(decode_header(bad.data(), session_chunk), "CHUNK length " + std::to_string(len));
  }
  // The bound is the session's chunk size, which may be above the 1 MiB control limit.
  Bytes big = header_bytes(0x20, kChunkHeaderSize + kMaxChunkSize);
  EXPECT_TRUE(decode_header(big.data(), kMaxChunkSize).is_ok());
}

TEST(FrameHeader, ChunkFrameShorterThanItsHeaderIsRejected) {
  for (uint32_t len : {0u, 1u, 31u}) {
    Bytes bad = header_bytes(0x20, len);
    expect_protocol_error(decode_header(bad.data(), kDefaultChunkSize), "CHUNK length " + std::to_string(len));
  }
  Bytes ok = header_bytes(0x20, kChunkHeaderSize);
  EXPECT_TRUE(decode_header(ok.data(), kDefaultChunkSize).is_ok());
}

TEST(FrameHeader, LengthIsReadBigEndian) {
  Bytes h = header_bytes(0x31, 0x00010203);
  auto r = decode_header(h.data(), kDefaultChunkSize);
  ASSERT_TRUE(r.is_ok()) << r.status().to_string();
  EXPECT_EQ(r->length, 0x00010203u);
  EXPECT_EQ(r->type, FrameType::kSummary);
}

// ---------------------------------------------------------------------------------------
// Every decoder against truncated and over-long payloads

struct DecoderCase {
  const char* name;
  std::function<Status(std::span<const uint8_t>)> decode;
  Bytes valid;  // a payload the decoder accepts
};

template <typename T>
Status status_of(const Result<T>& r) {
  return r.status();
}

std::vector<DecoderCase> all_decoders() {
  ChunkHeader ch{1, 2, 3, 1, 0xABCDEF};
  uint8_t prefix[kChunkPrefixSize];
  encode_chunk_prefix(ch, 0, prefix);
  return {
      {"HELLO", [](auto p) { return status_of(decode_hello(p)); }, payload_of(encode(Hello{}), FrameType::kHello)},
      {"WELCOME", [](auto p) { return status_of(decode_welcome(p)); },
       payload_of(encode(Welcome{1, kDefaultChunkSize, 16}), FrameType::kWelcome)},
      {"OPEN_SESSION", [](auto p) { return status_of(decode_open_session(p)); },
       payload_of(encode(sample_open_session()), FrameType::kOpenSession)},
      {"SESSION_OPENED", [](auto p) { return status_of(decode_session_opened(p)); },
       payload_of(encode(SessionOpened{id_of(1)}), FrameType::kSessionOpened)},
      {"AUTH", [](auto p) { return status_of(decode_auth(p)); }, payload_of(encode(Auth{"token"}), FrameType::kAuth)},
      {"JOIN_STREAM", [](auto p) { return status_of(decode_join_stream(p)); },
       payload_of(encode(JoinStream{id_of(2), 3}), FrameType::kJoinStream)},
      {"UDP_OPEN", [](auto p) { return status_of(decode_udp_open(p)); },
       payload_of(encode(UdpOpen{{1, 2, 3}, 1472, 2, 25'000'000, 6'250'000}), FrameType::kUdpOpen)},
      {"UDP_ACCEPT", [](auto p) { return status_of(decode_udp_accept(p)); },
       payload_of(encode(UdpAccept{40001, {9, 8, 7}, 1400}), FrameType::kUdpAccept)},
      {"RATE_LIMIT", [](auto p) { return status_of(decode_rate_limit(p)); },
       payload_of(encode(RateLimit{6'250'000}), FrameType::kRateLimit)},
      {"FILE_LIST", [](auto p) { return status_of(decode_file_list(p)); },
       payload_of(encode(sample_file_list()), FrameType::kFileList)},
      {"FILE_LIST_END", [](auto p) { return status_of(decode_file_list_end(p)); },
       payload_of(encode(FileListEnd{8}), FrameType::kFileListEnd)},
      {"FILE_PLAN", [](auto p) { return status_of(decode_file_plan(p)); },
       payload_of(encode(sample_file_plan()), FrameType::kFilePlan)},
      {"HAVE_CHUNKS", [](auto p) { return status_of(decode_have_chunks(p)); },
       payload_of(encode(HaveChunks{7, {{0, 1}, {5, UINT64_MAX}}}), FrameType::kHaveChunks)},
      {"CHUNK header", [](auto p) { return status_of(decode_chunk_header(p)); },
       Bytes(prefix + kFrameHeaderSize, prefix + kChunkPrefixSize)},
      {"CHUNK_NACK", [](auto p) { return status_of(decode_chunk_nack(p)); },
       payload_of(encode(ChunkNack{1, 2, 1}), FrameType::kChunkNack)},
      {"FILE_DONE", [](auto p) { return status_of(decode_file_done(p)); },
       payload_of(encode(FileDone{1, 2, 2, Hash128{3, 4}}), FrameType::kFileDone)},
      {"FILE_RESULT", [](auto p) { return status_of(decode_file_result(p)); },
       payload_of(encode(FileResult{1, 0, Hash128{3, 4}, "committed"}), FrameType::kFileResult)},
      {"FILE_ABORT", [](auto p) { return status_of(decode_file_abort(p)); },
       payload_of(encode(FileAbort{1, 5, "gone"}), FrameType::kFileAbort)},
      {"SUMMARY", [](auto p) { return status_of(decode_summary(p)); },
       payload_of(encode(Summary{1, 2, 3}), FrameType::kSummary)},
      {"ERROR", [](auto p) { return status_of(decode_error(p)); },
       payload_of(encode(ErrorFrame{4, "bad"}), FrameType::kError)},
  };
}

TEST(FrameDecoders, EachDecoderAcceptsItsValidPayload) {
  auto cases = all_decoders();
  EXPECT_EQ(cases.size(), 20u);
  for (const auto& c : cases) {
    Status st = c.decode(c.valid);
    EXPECT_TRUE(st.is_ok()) << c.name << ": " << st.to_string();
  }
}

TEST(FrameDecoders, EveryTruncationOfAValidPayloadIsAProtocolError) {
  size_t checked = 0;
  for (const auto& c : all_decoders()) {
    ASSERT_FALSE(c.valid.empty()) << c.name;
    for (size_t n = 0; n < c.valid.size(); ++n) {
      Bytes cut(c.valid.begin(), c.valid.begin() + static_cast<std::ptrdiff_t>(n));  // exact-size heap block
      Status st = c.decode(cut);
      EXPECT_FALSE(st.is_ok()) << c.name << " accepted a " << n << "-byte prefix of " << c.valid.size();
      EXPECT_EQ(st.code(), Error::kProtocol) << c.name << " prefix " << n << ": " << st.to_string();
      ++checked;
    }
  }
  EXPECT_GT(checked, 4096u);  // the FILE_LIST sample alone has a 4096-byte path
}

TEST(FrameDecoders, TrailingBytesAfterTheLastFieldAreRejected) {
  for (const auto& c : all_decoders()) {
    for (size_t extra : {1u, 2u, 29u}) {
      Bytes longer = c.valid;
      longer.insert(longer.end(), extra, 0);
      Status st = c.decode(longer);
      EXPECT_FALSE(st.is_ok()) << c.name << " accepted " << extra << " trailing byte(s)";
      EXPECT_EQ(st.code(), Error::kProtocol) << c.name << ": " << st.to_string();
    }
  }
}

TEST(FrameHeader, EmptyFramesDecodeWithZeroLength) {
  // STREAM_JOINED and FINISH have no decoder: their payload is empty by spec.
  for (uint8_t t : {0x06, 0x30}) {
    Bytes h = header_bytes(t, 0);
    auto r = decode_header(h.data(), kDefaultChunkSize);
    ASSERT_TRUE(r.is_ok()) << int(t);
    EXPECT_EQ(r->length, 0u);
  }
}

// ---------------------------------------------------------------------------------------
// Field-level validation

TEST(FrameDecoders, HelloWithBadMagicIsRejected) {
  Bytes p = payload_of(encode(Hello{}), FrameType::kHello);
  for (uint32_t magic : {0u, 0x59525246u /* byte-swapped */, 0x46525258u, 0x48545450u /* "HTTP" */}) {
    store_be32(p.data(), magic);
    expect_protocol_error(decode_hello(p), "magic " + std::to_string(magic));
  }
}

TEST(FrameDecoders, HelloWithMinVersionAboveMaxIsRejected) {
  Hello h;
  h.min_version = 3;
  h.max_version = 2;
  expect_protocol_error(decode_hello(payload_of(encode(h), FrameType::kHello)), "min > max");
}

TEST(FrameDecoders, OpenSessionWithChunkSizeOutOfRangeIsRejected) {
  for (uint32_t cs : {0u, 1u, kMinChunkSize - 1, kMaxChunkSize + 1, UINT32_MAX}) {
    OpenSession m = sample_open_session();
    m.chunk_size = cs;
    expect_protocol_error(decode_open_session(payload_of(encode(m), FrameType::kOpenSession)),
                          "chunk size " + std::to_string(cs));
  }
}

TEST(FrameDecoders, OpenSessionWithZeroStreamsMeansUdpData) {
  OpenSession m = sample_open_session();
  m.data_streams = 0;
  auto out = decode_open_session(payload_of(encode(m), FrameType::kOpenSession));
  ASSERT_TRUE(out) << out.status().to_string();
  EXPECT_EQ(out->data_streams, 0);
}

TEST(FrameDecoders, UdpOpenAndAcceptRoundTrip) {
  UdpOpen o{{}, 9000, 3, 100'000'000, 1'000'000};
  for (size_t i = 0; i < o.public_key.size(); ++i) o.public_key[i] = static_cast<uint8_t>(i * 7);
  auto out = decode_udp_open(payload_of(encode(o), FrameType::kUdpOpen));
  ASSERT_TRUE(out) << out.status().to_string();
  EXPECT_EQ(out->public_key, o.public_key);
  EXPECT_EQ(out->max_datagram, 9000);
  EXPECT_EQ(out->policy, 3);
  EXPECT_EQ(out->target_rate, 100'000'000u);
  EXPECT_EQ(out->min_rate, 1'000'000u);
  UdpAccept a{40000, o.public_key, 1472, 12'500'000};
  auto back = decode_udp_accept(payload_of(encode(a), FrameType::kUdpAccept));
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(back->port, 40000);
  EXPECT_EQ(back->public_key, o.public_key);
  EXPECT_EQ(back->max_datagram, 1472);
  EXPECT_EQ(back->max_rate, 12'500'000u);
  for (uint64_t rate : {uint64_t{0}, uint64_t{1}, uint64_t{12'500'000}, UINT64_MAX}) {
    auto limit = decode_rate_limit(payload_of(encode(RateLimit{rate}), FrameType::kRateLimit));
    ASSERT_TRUE(limit) << limit.status().to_string();
    EXPECT_EQ(limit->max_rate, rate);
  }
}

TEST(FrameDecoders, UdpOpenWithBadSizeOrPolicyAndAcceptWithPortZeroAreRejected) {
  for (uint16_t size : {uint16_t{0}, uint16_t{511}, uint16_t{65508}, uint16_t{0xFFFF}})
    expect_protocol_error(decode_udp_open(payload_of(encode(UdpOpen{{}, size, 2, 0, 0}), FrameType::kUdpOpen)),
                          "size " + std::to_string(size));
  expect_protocol_error(decode_udp_open(payload_of(encode(UdpOpen{{}, 1472, 4, 0, 0}), FrameType::kUdpOpen)),
                        "policy 4");
  expect_protocol_error(decode_udp_accept(payload_of(encode(UdpAccept{0, {}, 1472}), FrameType::kUdpAccept)),
                        "port 0");
}

TEST(FrameDecoders, OpenSessionWithTooManyStreamsIsRejected) {
  for (uint16_t streams : {uint16_t{kMaxStreams + 1}, uint16_t{0xFFFF}}) {
    OpenSession m = sample_open_session();
    m.data_streams = streams;
    expect_protocol_error(decode_open_session(payload_of(encode(m), FrameType::kOpenSession)),
                          "streams " + std::to_string(streams));
  }
}

TEST(FrameDecoders, OpenSessionWithUnknownOverwriteModeIsRejected) {
  Bytes p = payload_of(encode(sample_open_session()), FrameType::kOpenSession);
  for (uint8_t ow : {3, 4, 0x80, 0xFF}) {
    p[6] = ow;  // u32 chunk_size, u16 data_streams, then u8 overwrite
    expect_protocol_error(decode_open_session(p), "overwrite " + std::to_string(ow));
  }
}

TEST(FrameDecoders, OpenSessionWithUnknownResumeModeIsRejected) {
  Bytes p = payload_of(encode(sample_open_session()), FrameType::kOpenSession);
  for (uint8_t resume : {4, 0x80, 0xFF}) {
    p[7] = resume;  // u8 resume follows u8 overwrite
    expect_protocol_error(decode_open_session(p), "resume " + std::to_string(resume));
  }
}

TEST(FrameDecoders, FileListWithUnknownFileTypeIsRejected) {
  FileList m;
  m.entries.push_back(list_entry(0, FileType::kRegular, "a", 0644, 0, 0));
  Bytes p = payload_of(encode(m), FrameType::kFileList);
  for (uint8_t type : {3, 4, 0xFF}) {
    p[8] = type;  // u32 count, u32 file_id, then u8 type
    expect_protocol_error(decode_file_list(p), "file type " + std::to_string(type));
  }
}

TEST(FrameDecoders, FileListWithModeOutside07777IsRejected) {
  FileList m;
  m.entries.push_back(list_entry(0, FileType::kRegular, "a", 0644, 0, 0));
  Bytes p = payload_of(encode(m), FrameType::kFileList);
  store_be32(&p[9], 0100644);  // mode follows the type byte
  expect_protocol_error(decode_file_list(p), "mode 0100644");
}

TEST(FrameDecoders, FileListRejectsSizeOnNonRegularAndLinkTargetOnNonSymlink) {
  FileList dir_with_size;
  dir_with_size.entries.push_back(list_entry(0, FileType::kDirectory, "d", 0755, 0, 10));
  expect_protocol_error(decode_file_list(payload_of(encode(dir_with_size), FrameType::kFileList)), "dir size");
  FileList link_with_size;
  link_with_size.entries.push_back(list_entry(0, FileType::kSymlink, "l", 0777, 0, 1, "t"));
  expect_protocol_error(decode_file_list(payload_of(encode(link_with_size), FrameType::kFileList)), "link size");
  FileList file_with_target;
  file_with_target.entries.push_back(list_entry(0, FileType::kRegular, "f", 0644, 0, 1, "t"));
  expect_protocol_error(decode_file_list(payload_of(encode(file_with_target), FrameType::kFileList)), "target");
}

TEST(FrameDecoders, AllocationProbeSeesAReserve) {
  // Self-test of the probe the two tests below rely on.
  AllocationProbe probe;
  std::vector<FileListEntry> v;
  v.reserve(1000);
  EXPECT_GE(probe.largest(), 1000 * sizeof(FileListEntry));
}

TEST(FrameDecoders, FileListCountBeyondPayloadIsRejectedWithoutReservingMemory) {
  Bytes p(10, 0);
  store_be32(p.data(), 0xFFFFFFFF);
  AllocationProbe probe;
  auto r = decode_file_list(p);
  size_t largest = probe.largest();
  expect_protocol_error(r, "count 0xFFFFFFFF in 10 bytes");
  EXPECT_LT(largest, 4096u) << "decode_file_list allocated " << largest << " bytes at once";
}

TEST(FrameDecoders, FileListCountOneMoreThanTheEntriesPresentIsRejectedWithoutReserving) {
  // 100 minimal entries (29 bytes each) but a count of 100,000: must not reserve 100,000.
  FileList m;
  for (uint32_t i = 0; i < 100; ++i) m.entries.push_back(list_entry(i, FileType::kRegular, "", 0, 0, 0));
  Bytes p = payload_of(encode(m), FrameType::kFileList);
  ASSERT_EQ(p.size(), 4u + 100 * 29);
  store_be32(p.data(), 100'000);
  {
    AllocationProbe probe;
    auto r = decode_file_list(p);
    size_t largest = probe.largest();
    expect_protocol_error(r, "count 100000");
    EXPECT_LT(largest, 1000 * sizeof(FileListEntry)) << "reserved for the claimed count";
  }
  store_be32(p.data(), 101);  // one more than present
  expect_protocol_error(decode_file_list(p), "count 101");
  store_be32(p.data(), 99);  // one fewer: the last entry becomes trailing bytes
  expect_protocol_error(decode_file_list(p), "count 99");
  store_be32(p.data(), 100);
  EXPECT_TRUE(decode_file_list(p).is_ok());
}

TEST(FrameDecoders, FilePlanCountBeyondPayloadIsRejectedWithoutReservingMemory) {
  Bytes p(10, 0);
  store_be32(p.data(), 0xFFFFFFFF);
  AllocationProbe probe;
  auto r = decode_file_plan(p);
  size_t largest = probe.largest();
  expect_protocol_error(r, "count 0xFFFFFFFF in 10 bytes");
  EXPECT_LT(largest, 4096u) << "decode_file_plan allocated " << largest << " bytes at once";
}

TEST(FrameDecoders, HaveChunksCountBeyondPayloadIsRejectedWithoutReservingMemory) {
  Bytes p(12, 0);
  store_be32(p.data() + 4, 0xFFFFFFFF);  // file_id 0, count 2^32-1, 4 bytes left
  {
    AllocationProbe probe;
    auto r = decode_have_chunks(p);
    size_t largest = probe.largest();
    expect_protocol_error(r, "count 0xFFFFFFFF in 12 bytes");
    EXPECT_LT(largest, 4096u) << "decode_have_chunks allocated " << largest << " bytes at once";
  }
  Bytes two = payload_of(encode(HaveChunks{1, {{0, 1}, {1, 2}}}), FrameType::kHaveChunks);
  store_be32(two.data() + 4, 3);
  expect_protocol_error(decode_have_chunks(two), "count 3 with 2 entries");
  store_be32(two.data() + 4, 1);
  expect_protocol_error(decode_have_chunks(two), "count 1 with 2 entries");
}

TEST(FrameDecoders, FileDoneWithMoreSentChunksThanTheFileHasIsRejected) {
  expect_protocol_error(decode_file_done(payload_of(encode(FileDone{1, 4, 5, {}}), FrameType::kFileDone)),
                        "sent 5 of 4");
  auto ok = decode_file_done(payload_of(encode(FileDone{1, 4, 4, {}}), FrameType::kFileDone));
  EXPECT_TRUE(ok.is_ok()) << ok.status().to_string();
  auto none = decode_file_done(payload_of(encode(FileDone{1, 4, 0, {}}), FrameType::kFileDone));
  EXPECT_TRUE(none.is_ok()) << none.status().to_string();  // every chunk was held already
}

TEST(FrameDecoders, FilePlanWithUnknownActionIsRejected) {
  FilePlan m;
  m.entries.push_back({0, PlanAction::kSend, ""});
  Bytes p = payload_of(encode(m), FrameType::kFilePlan);
  for (uint8_t action : {3, 4, 0xFF}) {
    p[8] = action;  // u32 count, u32 file_id, then u8 action
    expect_protocol_error(decode_file_plan(p), "action " + std::to_string(action));
  }
}

TEST(FrameDecoders, StringLengthRunningPastThePayloadIsRejected) {
  Bytes p = payload_of(encode(ErrorFrame{4, "abc"}), FrameType::kError);
  store_be16(&p[2], 4);  // claims 4 bytes, 3 present
  expect_protocol_error(decode_error(p), "ERROR string length 4");
  store_be16(&p[2], 0xFFFF);
  expect_protocol_error(decode_error(p), "ERROR string length 65535");
  store_be16(&p[2], 2);  // claims fewer: the rest is trailing
  expect_protocol_error(decode_error(p), "ERROR string length 2");
}

TEST(FrameDecoders, ChunkHeaderWithNonZeroReservedBytesIsRejected) {
  uint8_t prefix[kChunkPrefixSize];
  encode_chunk_prefix(ChunkHeader{1, 2, 3, 0, 4}, 3, prefix);
  Bytes base(prefix + kFrameHeaderSize, prefix + kChunkPrefixSize);
  ASSERT_TRUE(decode_chunk_header(base).is_ok());
  for (size_t off : {13u, 14u, 15u, 24u, 25u, 26u, 27u, 28u, 29u, 30u, 31u}) {
    for (uint8_t v : {0x01, 0x80}) {
      Bytes p = base;
      p[off] = v;
      expect_protocol_error(decode_chunk_header(p), "reserved byte " + std::to_string(off));
    }
  }
}

TEST(FrameDecoders, ChunkHeaderMustBeExactly32Bytes) {
  uint8_t prefix[kChunkPrefixSize];
  encode_chunk_prefix(ChunkHeader{1, 2, 3, 0, 4}, 3, prefix);
  Bytes header(prefix + kFrameHeaderSize, prefix + kChunkPrefixSize);
  Bytes with_payload = header;
  with_payload.push_back('x');  // the caller must split header and payload
  expect_protocol_error(decode_chunk_header(with_payload), "33 bytes");
  expect_protocol_error(decode_chunk_header(Bytes{}), "0 bytes");
}

// ---------------------------------------------------------------------------------------
// Robustness: random and mutated input into every decoder

// Runs every decoder on `p`; any error must be a protocol error. Returns how many accepted.
int feed_all(const Bytes& p, const std::vector<DecoderCase>& cases) {
  int accepted = 0;
  for (const auto& c : cases) {
    Status st = c.decode(p);
    if (st.is_ok()) {
      ++accepted;
    } else {
      EXPECT_EQ(st.code(), Error::kProtocol) << c.name << ": " << st.to_string();
    }
  }
  if (p.size() >= kFrameHeaderSize) {
    Bytes header(p.begin(), p.begin() + kFrameHeaderSize);  // exactly 8 bytes on the heap
    for (uint32_t max_chunk : {kMinChunkSize, kMaxChunkSize}) {
      auto h = decode_header(header.data(), max_chunk);
      if (!h) {
        EXPECT_EQ(h.status().code(), Error::kProtocol);
      } else {
        EXPECT_LE(h->length, h->type == FrameType::kChunk ? kChunkHeaderSize + max_chunk : kMaxControlPayload);
      }
    }
  }
  return accepted;
}

TEST(FrameDecoderRobustness, TwentyThousandSeededRandomPayloadsNeverCrashAnyDecoder) {
  auto cases = all_decoders();
  std::mt19937 rng(0xF0CC5EED);
  std::uniform_int_distribution<int> len_dist(0, 300);
  std::uniform_int_distribution<int> byte_dist(0, 255);
  int accepted = 0;
  size_t bytes_fed = 0;
  for (int i = 0; i < 20'000; ++i) {
    Bytes p(static_cast<size_t>(len_dist(rng)));  // exact-size heap block: ASan sees over-reads
    // Small leading counts and lengths reach deeper into the decoders more often.
    int style = i % 4;
    for (auto& b : p) b = static_cast<uint8_t>(byte_dist(rng));
    if (style == 1 && p.size() >= 4) std::memset(p.data(), 0, 3);
    if (style == 2) for (auto& b : p) b = static_cast<uint8_t>(b & 0x07);
    accepted += feed_all(p, cases);
    bytes_fed += p.size();
    if (HasFailure()) break;
  }
  EXPECT_GT(bytes_fed, 20'000u * 100);
  // Fixed-size frames of a matching random length are valid: some inputs must be accepted,
  // which shows the decoders really ran on the data.
  EXPECT_GT(accepted, 0);
}

TEST(FrameDecoderRobustness, MutatedValidPayloadsNeverCrashAnyDecoder) {
  auto cases = all_decoders();
  std::mt19937 rng(20240501);
  int accepted = 0;
  for (int i = 0; i < 20'000; ++i) {
    const auto& base = cases[static_cast<size_t>(i) % cases.size()].valid;
    Bytes p = base;
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 4) {
        case 0:  // flip a byte
          if (!p.empty()) p[rng() % p.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
          break;
        case 1:  // truncate
          p.resize(p.empty() ? 0 : rng() % p.size());
          break;
        case 2:  // append
          p.push_back(static_cast<uint8_t>(rng()));
          break;
        case 3:  // set a u16 string length or count byte to something extreme
          if (p.size() > 2) p[rng() % p.size()] = (rng() & 1) ? 0xFF : 0x00;
          break;
      }
    }
    p.shrink_to_fit();
    Bytes exact(p.begin(), p.end());
    accepted += feed_all(exact, cases);
    if (HasFailure()) break;
  }
  EXPECT_GT(accepted, 0);
}

TEST(FrameCodecRoundTrip, SyncFramesRoundTrip) {
  ListEntries list;
  ListEntry a;
  a.entry.path = "shots/a b.exr";
  a.entry.size = 123;
  a.entry.mtime_ns = -5;
  a.entry.mode = 0640;
  a.has_hash = true;
  a.hash = Hash128{1, 2};
  ListEntry l;
  l.entry.path = "link";
  l.entry.type = FileType::kSymlink;
  l.entry.link_target = "../x";
  list.entries = {a, l};
  Bytes f = encode(list);
  auto h = decode_header(f.data(), kDefaultChunkSize);
  ASSERT_TRUE(h.is_ok());
  EXPECT_EQ(h->type, FrameType::kListEntries);
  auto out = decode_list_entries(std::span(f).subspan(kFrameHeaderSize));
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  ASSERT_EQ(out->entries.size(), 2u);
  EXPECT_EQ(out->entries[0].entry.path, "shots/a b.exr");
  EXPECT_EQ(out->entries[0].entry.mtime_ns, -5);
  EXPECT_TRUE(out->entries[0].has_hash);
  EXPECT_EQ(out->entries[0].hash, (Hash128{1, 2}));
  EXPECT_EQ(out->entries[1].entry.link_target, "../x");
  EXPECT_FALSE(out->entries[1].has_hash);

  Bytes e = encode(ListEnd{7, Status(Error::kLocalIo, "walk failed")});
  auto end = decode_list_end(std::span(e).subspan(kFrameHeaderSize));
  ASSERT_TRUE(end.is_ok());
  EXPECT_EQ(end->total, 7u);
  EXPECT_EQ(end->status.code(), Error::kLocalIo);

  Bytes d = encode(DeleteRequest{{"a", "b/c"}});
  auto del = decode_delete(std::span(d).subspan(kFrameHeaderSize));
  ASSERT_TRUE(del.is_ok());
  EXPECT_EQ(del->paths, (std::vector<std::string>{"a", "b/c"}));

  Bytes r = encode(DeleteResult{{{"a", 0, ""}, {"b/c", 5, "busy"}}});
  auto res = decode_delete_result(std::span(r).subspan(kFrameHeaderSize));
  ASSERT_TRUE(res.is_ok());
  ASSERT_EQ(res->outcomes.size(), 2u);
  EXPECT_EQ(res->outcomes[1].status, 5u);
  EXPECT_EQ(res->outcomes[1].message, "busy");
}

TEST(FrameCodecMalformed, SyncFramesRejectTruncationAndLyingCounts) {
  Bytes f = encode(DeleteRequest{{"abc"}});
  std::span<const uint8_t> p = std::span(f).subspan(kFrameHeaderSize);
  for (size_t n = 0; n < p.size(); ++n) EXPECT_FALSE(decode_delete(p.first(n)).is_ok()) << n;
  const uint8_t lying[] = {0xFF, 0xFF, 0xFF, 0xFF, 0, 0};
  EXPECT_FALSE(decode_list_entries(lying).is_ok());
  EXPECT_FALSE(decode_delete(lying).is_ok());
  EXPECT_FALSE(decode_delete_result(lying).is_ok());
  const uint8_t bad_flags[] = {4};  // bit 1 (one level) exists from protocol 3
  EXPECT_FALSE(decode_list_request(bad_flags).is_ok());
}

}  // namespace
}  // namespace ferry::protocol
