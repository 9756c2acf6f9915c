// Wire format of protocol version 2: constants, frame structs, encode/decode.
// The spec is docs/protocol.md; keep the two in step. Pure functions, no I/O (fuzzable).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "codec/hash.h"
#include "ferry/status.h"
#include "manifest/file_entry.h"

namespace ferry::protocol {

inline constexpr uint32_t kMagic = 0x46525259;  // "FRRY"
// Version 2 added TLS on every connection and the AUTH handshake step. A version-1 peer
// speaks plaintext without authentication, which ferry no longer accepts.
inline constexpr uint16_t kMinVersion = 2;
// Version 3 added GET_SESSION (downloads and listings: the server takes the sender role).
// A version-2 server drops a connection that sends an unknown frame type without an ERROR,
// so clients check the negotiated version before sending GET_SESSION.
inline constexpr uint16_t kMaxVersion = 3;
inline constexpr uint16_t kVersionAuth = 2;  // AUTH / AUTH_OK after WELCOME
inline constexpr uint16_t kVersionGet = 3;   // GET_SESSION, LIST_REQUEST one-level flag

inline constexpr size_t kFrameHeaderSize = 8;
inline constexpr size_t kChunkHeaderSize = 32;
inline constexpr uint32_t kMaxControlPayload = 1u << 20;
inline constexpr uint32_t kMinChunkSize = 64u << 10;
inline constexpr uint32_t kMaxChunkSize = 64u << 20;
inline constexpr uint32_t kDefaultChunkSize = 4u << 20;
inline constexpr uint16_t kMaxStreams = 64;
inline constexpr uint32_t kMaxFilesPerSession = 10'000'000;
inline constexpr uint32_t kMaxOpenFiles = 1024;
inline constexpr int kMaxChunkAttempts = 5;
inline constexpr size_t kMaxTokenLength = 1024;  // AUTH: bearer token bytes
inline constexpr uint16_t kMaxGetPaths = 1024;     // GET_SESSION: source paths per session
static_assert(kMaxChunkSize + kChunkHeaderSize < (1ull << 32), "CHUNK length must fit u32");
static_assert(kMaxControlPayload >= 64 * 1024, "a FILE_LIST batch must hold at least one max-size entry");

enum class FrameType : uint8_t {
  kHello = 0x01,
  kWelcome = 0x02,
  kOpenSession = 0x03,
  kSessionOpened = 0x04,
  kJoinStream = 0x05,
  kStreamJoined = 0x06,
  kUdpOpen = 0x0C,
  kUdpAccept = 0x0D,
  kRateLimit = 0x0E,
  kAuth = 0x07,
  kAuthOk = 0x08,
  kFileList = 0x10,
  kFileListEnd = 0x11,
  kFilePlan = 0x12,
  kHaveChunks = 0x13,
  kChunk = 0x20,
  kChunkNack = 0x21,
  kFileDone = 0x22,
  kFileResult = 0x23,
  kFileAbort = 0x24,
  kFinish = 0x30,
  kSummary = 0x31,
  kListRequest = 0x40,
  kListEntries = 0x41,
  kListEnd = 0x42,
  kDelete = 0x43,
  kDeleteResult = 0x44,
  kGetSession = 0x50,
  kError = 0x3F,
};
const char* to_string(FrameType t);

struct FrameHeader {
  FrameType type;
  uint32_t length;
};

// Validates the 8 header bytes: known type, flags and reserved zero, and length within the
// limit for its type (`max_chunk_size` bounds CHUNK frames: the session's chunk size).
Result<FrameHeader> decode_header(const uint8_t* bytes, uint32_t max_chunk_size);

enum class OverwriteMode : uint8_t { kAlways = 0, kNever = 1, kDiff = 2 };
enum class PlanAction : uint8_t { kSkip = 0, kSend = 1, kReject = 2 };
// How far the receiver trusts partial files from an interrupted earlier run (Aspera -k 0..3).
enum class ResumeMode : uint8_t { kOff = 0, kAttrs = 1, kSparse = 2, kFull = 3 };

using Id128 = std::array<uint8_t, 16>;

struct Hello { uint32_t magic = kMagic; uint16_t min_version = kMinVersion; uint16_t max_version = kMaxVersion; };
struct Welcome { uint16_t version; uint32_t max_chunk_size; uint16_t max_streams; };
struct OpenSession {
  uint32_t chunk_size;
  uint16_t data_streams;
  OverwriteMode overwrite;
  ResumeMode resume = ResumeMode::kSparse;
  Id128 transfer_id{};  // all zero: no resume journal
  std::string dest_path;
};
// The bearer token, sent on every connection right after WELCOME (docs/protocol.md "Authentication").
struct Auth { std::string token; };
// GET_SESSION (version >= 3): the client asks the server to send `paths` (or, with
// list_only, to list one path). The server takes the sender role (docs/protocol.md "Roles").
inline constexpr uint8_t kCompressionAuto = 255;  // else 0 none, 1..19 zstd level
struct GetPath {
  bool contents = false;  // "dir/": the directory's contents, not the directory
  std::string path;       // "EXPORT/rel" with exports, else relative to the root ("" = root)
};
struct GetSession {
  uint32_t chunk_size = kDefaultChunkSize;
  uint16_t data_streams = 4;
  bool list_only = false;
  uint8_t compression = kCompressionAuto;
  Id128 transfer_id{};
  std::vector<GetPath> paths;
};
struct SessionOpened { Id128 session_id{}; };
struct JoinStream { Id128 session_id{}; uint16_t stream_index; };
// UDP data path (docs/protocol.md, docs/udp.md): asked for after SESSION_OPENED of a session
// opened with data_streams = 0. Keys are X25519 public keys; rates are bytes/s (0 = none).
inline constexpr size_t kUdpPublicKeySize = 32;
inline constexpr uint16_t kMinUdpDatagram = 512;
inline constexpr uint16_t kMaxUdpDatagram = 65507;
struct UdpOpen {
  std::array<uint8_t, kUdpPublicKeySize> public_key{};
  uint16_t max_datagram = 1472;
  uint8_t policy = 2;  // cc::Policy
  uint64_t target_rate = 0;
  uint64_t min_rate = 0;
};
struct UdpAccept {
  uint16_t port = 0;
  std::array<uint8_t, kUdpPublicKeySize> public_key{};
  uint16_t max_datagram = 1472;
  uint64_t max_rate = 0;  // the receiver's cap for this session, bytes/s (0 = none): it wins
};
// The receiver's cap for a UDP session changed (its share of a server-wide total cap moved as
// other sessions came and went). Replaces UDP_ACCEPT's max_rate; 0 = none.
struct RateLimit {
  uint64_t max_rate = 0;
};
struct FileListEntry {  // FileEntry minus the sender-local source_path
  uint32_t file_id;
  FileEntry entry;
};
struct FileList { std::vector<FileListEntry> entries; };
struct FileListEnd { uint32_t total_files; };
struct PlanEntry { uint32_t file_id; PlanAction action; std::string reason; };
struct FilePlan { std::vector<PlanEntry> entries; };
// Chunks of a file the receiver already holds from an earlier run, with their XXH3-64.
struct HaveChunks {
  uint32_t file_id;
  std::vector<std::pair<uint32_t, uint64_t>> chunks;  // (chunk index, xxh3_64)
};
inline constexpr size_t kMaxHaveChunksPerFrame = (kMaxControlPayload - 8) / 12;
struct ChunkHeader {
  uint32_t file_id;
  uint32_t chunk_index;
  uint32_t raw_length;
  uint8_t codec;  // Codec value; validated by the codec, not here
  uint64_t xxh3_64;
};
struct ChunkNack { uint32_t file_id; uint32_t chunk_index; uint16_t reason; };
// sent_chunks: how many distinct chunks of the file the sender transmitted (the rest were
// held by the receiver already, see HAVE_CHUNKS); the receiver waits for that many.
struct FileDone { uint32_t file_id; uint32_t chunk_count; uint32_t sent_chunks; Hash128 hash; };
struct FileResult { uint32_t file_id; uint16_t status; Hash128 hash; std::string message; };
struct FileAbort { uint32_t file_id; uint16_t code; std::string message; };
struct Summary { uint32_t files_committed; uint32_t files_failed; uint64_t bytes_written; };
struct ErrorFrame { uint16_t code; std::string message; };
// Sync (docs/protocol.md "Sync"): the sender asks for the destination's state, decides, and
// may ask for deletions. Paths are relative to the session's destination.
struct ListRequest {
  bool with_hashes = false;
  bool one_level = false;  // version >= 3, get/ls sessions: the direct children only
};
struct ListEntry {
  FileEntry entry;
  bool has_hash = false;
  Hash128 hash;
};
struct ListEntries { std::vector<ListEntry> entries; };
struct ListEnd { uint32_t total; Status status; };  // status: the walk failed part-way
struct DeleteRequest { std::vector<std::string> paths; };
struct DeleteOutcome { std::string path; uint16_t status; std::string message; };
struct DeleteResult { std::vector<DeleteOutcome> outcomes; };
size_t encoded_size(const ListEntry& e);
struct Empty {};  // frames without a payload

// Encoders return a whole frame: header + payload.
std::vector<uint8_t> encode(const Hello&);
std::vector<uint8_t> encode(const Welcome&);
std::vector<uint8_t> encode(const OpenSession&);
std::vector<uint8_t> encode(const SessionOpened&);
std::vector<uint8_t> encode(const JoinStream&);
std::vector<uint8_t> encode_stream_joined();
std::vector<uint8_t> encode(const UdpOpen&);
std::vector<uint8_t> encode(const UdpAccept&);
std::vector<uint8_t> encode(const RateLimit&);
std::vector<uint8_t> encode(const Auth&);
std::vector<uint8_t> encode(const GetSession&);
std::vector<uint8_t> encode_auth_ok();
std::vector<uint8_t> encode(const FileList&);
std::vector<uint8_t> encode(const FileListEnd&);
std::vector<uint8_t> encode(const FilePlan&);
std::vector<uint8_t> encode(const HaveChunks&);
std::vector<uint8_t> encode(const ChunkNack&);
std::vector<uint8_t> encode(const FileDone&);
std::vector<uint8_t> encode(const FileResult&);
std::vector<uint8_t> encode(const FileAbort&);
std::vector<uint8_t> encode_finish();
std::vector<uint8_t> encode(const Summary&);
std::vector<uint8_t> encode(const ErrorFrame&);
std::vector<uint8_t> encode(const ListRequest&);
std::vector<uint8_t> encode(const ListEntries&);
std::vector<uint8_t> encode(const ListEnd&);
std::vector<uint8_t> encode(const DeleteRequest&);
std::vector<uint8_t> encode(const DeleteResult&);
// CHUNK: writes the 8-byte frame header and the 32-byte chunk header into `out` (40 bytes);
// the payload (payload_len bytes) follows separately (scatter/gather write).
inline constexpr size_t kChunkPrefixSize = kFrameHeaderSize + kChunkHeaderSize;
void encode_chunk_prefix(const ChunkHeader& h, uint32_t payload_len, uint8_t out[kChunkPrefixSize]);

// Encoded size of one FILE_LIST entry, so the sender can cut batches under the limit.
size_t encoded_size(const FileListEntry& e);

// Decoders take the payload (after the header) and reject short, long or out-of-range input.
Result<Hello> decode_hello(std::span<const uint8_t> p);
Result<Welcome> decode_welcome(std::span<const uint8_t> p);
Result<OpenSession> decode_open_session(std::span<const uint8_t> p);
Result<SessionOpened> decode_session_opened(std::span<const uint8_t> p);
Result<UdpOpen> decode_udp_open(std::span<const uint8_t> p);
Result<UdpAccept> decode_udp_accept(std::span<const uint8_t> p);
Result<RateLimit> decode_rate_limit(std::span<const uint8_t> p);
Result<JoinStream> decode_join_stream(std::span<const uint8_t> p);
Result<Auth> decode_auth(std::span<const uint8_t> p);
Result<GetSession> decode_get_session(std::span<const uint8_t> p);
Result<Empty> decode_auth_ok(std::span<const uint8_t> p);
Result<FileList> decode_file_list(std::span<const uint8_t> p);
Result<FileListEnd> decode_file_list_end(std::span<const uint8_t> p);
Result<FilePlan> decode_file_plan(std::span<const uint8_t> p);
Result<HaveChunks> decode_have_chunks(std::span<const uint8_t> p);
Result<ChunkHeader> decode_chunk_header(std::span<const uint8_t> p);  // exactly 32 bytes
Result<ChunkNack> decode_chunk_nack(std::span<const uint8_t> p);
Result<FileDone> decode_file_done(std::span<const uint8_t> p);
Result<FileResult> decode_file_result(std::span<const uint8_t> p);
Result<FileAbort> decode_file_abort(std::span<const uint8_t> p);
Result<Summary> decode_summary(std::span<const uint8_t> p);
Result<ErrorFrame> decode_error(std::span<const uint8_t> p);
Result<ListRequest> decode_list_request(std::span<const uint8_t> p);
Result<ListEntries> decode_list_entries(std::span<const uint8_t> p);
Result<ListEnd> decode_list_end(std::span<const uint8_t> p);
Result<DeleteRequest> decode_delete(std::span<const uint8_t> p);
Result<DeleteResult> decode_delete_result(std::span<const uint8_t> p);

}  // namespace ferry::protocol
