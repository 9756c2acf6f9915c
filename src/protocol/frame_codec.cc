#include <cstring>

#include "protocol/frames.h"
#include "protocol/wire_buffer.h"

namespace ferry::protocol {
namespace {

// Starts a frame: reserves the 8-byte header, patched with the length by finish().
WireWriter start(FrameType type) {
  WireWriter w;
  w.u8(static_cast<uint8_t>(type));
  w.u8(0);
  w.u16(0);
  w.u32(0);
  return w;
}

std::vector<uint8_t> finish(WireWriter& w) {
  auto& b = w.buffer();
  store_be32(b.data() + 4, static_cast<uint32_t>(b.size() - kFrameHeaderSize));
  return std::move(b);
}

Status malformed(const char* frame, const char* what) {
  return Status(Error::kProtocol, std::string("malformed ") + frame + " frame: " + what);
}

// Common tail check: every field present and nothing after the last one.
template <typename T>
Result<T> done(const WireReader& r, T value, const char* frame) {
  if (!r.ok()) return malformed(frame, "truncated");
  if (!r.at_end()) return malformed(frame, "trailing bytes");
  return value;
}

void put_id(WireWriter& w, const Id128& id) { w.bytes(id.data(), id.size()); }
void put_hash(WireWriter& w, const Hash128& h) {
  uint8_t b[16];
  h.to_bytes(b);
  w.bytes(b, 16);
}
Hash128 get_hash(WireReader& r) {
  uint8_t b[16] = {};
  r.bytes(b, 16);
  return Hash128::from_bytes(b);
}

bool known_type(uint8_t t) {
  switch (static_cast<FrameType>(t)) {
    case FrameType::kHello: case FrameType::kWelcome: case FrameType::kOpenSession:
    case FrameType::kSessionOpened: case FrameType::kJoinStream: case FrameType::kStreamJoined:
    case FrameType::kUdpOpen: case FrameType::kUdpAccept: case FrameType::kRateLimit:
    case FrameType::kAuth: case FrameType::kAuthOk:
    case FrameType::kFileList: case FrameType::kFileListEnd: case FrameType::kFilePlan: case FrameType::kHaveChunks:
    case FrameType::kChunk: case FrameType::kChunkNack: case FrameType::kFileDone:
    case FrameType::kFileResult: case FrameType::kFileAbort: case FrameType::kFinish: case FrameType::kSummary:
    case FrameType::kError: case FrameType::kListRequest: case FrameType::kListEntries: case FrameType::kListEnd:
    case FrameType::kDelete: case FrameType::kDeleteResult: case FrameType::kGetSession:
      return true;
  }
  return false;
}

}  // namespace

const char* to_string(FrameType t) {
  switch (t) {
    case FrameType::kHello: return "HELLO";
    case FrameType::kWelcome: return "WELCOME";
    case FrameType::kOpenSession: return "OPEN_SESSION";
    case FrameType::kSessionOpened: return "SESSION_OPENED";
    case FrameType::kJoinStream: return "JOIN_STREAM";
    case FrameType::kUdpOpen: return "UDP_OPEN";
    case FrameType::kUdpAccept: return "UDP_ACCEPT";
    case FrameType::kRateLimit: return "RATE_LIMIT";
    case FrameType::kStreamJoined: return "STREAM_JOINED";
    case FrameType::kAuth: return "AUTH";
    case FrameType::kAuthOk: return "AUTH_OK";
    case FrameType::kFileList: return "FILE_LIST";
    case FrameType::kFileListEnd: return "FILE_LIST_END";
    case FrameType::kFilePlan: return "FILE_PLAN";
    case FrameType::kHaveChunks: return "HAVE_CHUNKS";
    case FrameType::kChunk: return "CHUNK";
    case FrameType::kChunkNack: return "CHUNK_NACK";
    case FrameType::kFileDone: return "FILE_DONE";
    case FrameType::kFileResult: return "FILE_RESULT";
    case FrameType::kFileAbort: return "FILE_ABORT";
    case FrameType::kFinish: return "FINISH";
    case FrameType::kSummary: return "SUMMARY";
    case FrameType::kError: return "ERROR";
    case FrameType::kListRequest: return "LIST_REQUEST";
    case FrameType::kListEntries: return "LIST_ENTRIES";
    case FrameType::kListEnd: return "LIST_END";
    case FrameType::kDelete: return "DELETE";
    case FrameType::kDeleteResult: return "DELETE_RESULT";
    case FrameType::kGetSession: return "GET_SESSION";
  }
  return "UNKNOWN";
}

Result<FrameHeader> decode_header(const uint8_t* b, uint32_t max_chunk_size) {
  if (!known_type(b[0]))
    return Status(Error::kProtocol, "unknown frame type 0x" + [&] {
      char hex[3];
      std::snprintf(hex, sizeof hex, "%02x", b[0]);
      return std::string(hex);
    }());
  if (b[1] != 0 || load_be16(b + 2) != 0)
    return Status(Error::kProtocol, "frame header has non-zero flags or reserved bits");
  FrameHeader h{static_cast<FrameType>(b[0]), load_be32(b + 4)};
  uint64_t limit = h.type == FrameType::kChunk ? uint64_t{kChunkHeaderSize} + max_chunk_size
                                               : uint64_t{kMaxControlPayload};
  if (h.type == FrameType::kChunk && h.length < kChunkHeaderSize)
    return Status(Error::kProtocol, "CHUNK frame shorter than its header");
  if (h.length > limit)
    return Status(Error::kProtocol, std::string(to_string(h.type)) + " frame of " + std::to_string(h.length) +
                                        " bytes exceeds the limit of " + std::to_string(limit));
  return h;
}

std::vector<uint8_t> encode(const Hello& m) {
  auto w = start(FrameType::kHello);
  w.u32(m.magic);
  w.u16(m.min_version);
  w.u16(m.max_version);
  return finish(w);
}
Result<Hello> decode_hello(std::span<const uint8_t> p) {
  WireReader r(p);
  Hello m;
  m.magic = r.u32();
  m.min_version = r.u16();
  m.max_version = r.u16();
  if (r.ok() && m.magic != kMagic) return malformed("HELLO", "bad magic (not a ferry peer)");
  if (r.ok() && m.min_version > m.max_version) return malformed("HELLO", "min_version > max_version");
  return done(r, m, "HELLO");
}

std::vector<uint8_t> encode(const Welcome& m) {
  auto w = start(FrameType::kWelcome);
  w.u16(m.version);
  w.u32(m.max_chunk_size);
  w.u16(m.max_streams);
  return finish(w);
}
Result<Welcome> decode_welcome(std::span<const uint8_t> p) {
  WireReader r(p);
  Welcome m{};
  m.version = r.u16();
  m.max_chunk_size = r.u32();
  m.max_streams = r.u16();
  return done(r, m, "WELCOME");
}

std::vector<uint8_t> encode(const OpenSession& m) {
  auto w = start(FrameType::kOpenSession);
  w.u32(m.chunk_size);
  w.u16(m.data_streams);
  w.u8(static_cast<uint8_t>(m.overwrite));
  w.u8(static_cast<uint8_t>(m.resume));
  put_id(w, m.transfer_id);
  w.str(m.dest_path);
  return finish(w);
}
Result<OpenSession> decode_open_session(std::span<const uint8_t> p) {
  WireReader r(p);
  OpenSession m{};
  m.chunk_size = r.u32();
  m.data_streams = r.u16();
  uint8_t ow = r.u8();
  uint8_t resume = r.u8();
  r.bytes(m.transfer_id.data(), 16);
  m.dest_path = r.str();
  if (!r.ok()) return malformed("OPEN_SESSION", "truncated");
  if (ow > 2) return malformed("OPEN_SESSION", "unknown overwrite mode");
  m.overwrite = static_cast<OverwriteMode>(ow);
  if (resume > 3) return malformed("OPEN_SESSION", "unknown resume mode");
  m.resume = static_cast<ResumeMode>(resume);
  if (m.chunk_size < kMinChunkSize || m.chunk_size > kMaxChunkSize)
    return malformed("OPEN_SESSION", "chunk size out of range");
  // 0 streams: the data goes over UDP (UDP_OPEN follows SESSION_OPENED).
  if (m.data_streams > kMaxStreams) return malformed("OPEN_SESSION", "stream count out of range");
  return done(r, std::move(m), "OPEN_SESSION");
}

std::vector<uint8_t> encode(const SessionOpened& m) {
  auto w = start(FrameType::kSessionOpened);
  put_id(w, m.session_id);
  return finish(w);
}
Result<SessionOpened> decode_session_opened(std::span<const uint8_t> p) {
  WireReader r(p);
  SessionOpened m;
  r.bytes(m.session_id.data(), 16);
  return done(r, m, "SESSION_OPENED");
}

std::vector<uint8_t> encode(const UdpOpen& m) {
  auto w = start(FrameType::kUdpOpen);
  w.bytes(m.public_key.data(), m.public_key.size());
  w.u16(m.max_datagram);
  w.u8(m.policy);
  w.u64(m.target_rate);
  w.u64(m.min_rate);
  return finish(w);
}
Result<UdpOpen> decode_udp_open(std::span<const uint8_t> p) {
  WireReader r(p);
  UdpOpen m;
  r.bytes(m.public_key.data(), m.public_key.size());
  m.max_datagram = r.u16();
  m.policy = r.u8();
  m.target_rate = r.u64();
  m.min_rate = r.u64();
  if (!r.ok()) return malformed("UDP_OPEN", "truncated");
  if (m.max_datagram < kMinUdpDatagram || m.max_datagram > kMaxUdpDatagram)
    return malformed("UDP_OPEN", "datagram size out of range");
  if (m.policy > 3) return malformed("UDP_OPEN", "unknown policy");
  return done(r, m, "UDP_OPEN");
}

std::vector<uint8_t> encode(const UdpAccept& m) {
  auto w = start(FrameType::kUdpAccept);
  w.u16(m.port);
  w.bytes(m.public_key.data(), m.public_key.size());
  w.u16(m.max_datagram);
  w.u64(m.max_rate);
  return finish(w);
}
Result<UdpAccept> decode_udp_accept(std::span<const uint8_t> p) {
  WireReader r(p);
  UdpAccept m;
  m.port = r.u16();
  r.bytes(m.public_key.data(), m.public_key.size());
  m.max_datagram = r.u16();
  m.max_rate = r.u64();
  if (!r.ok()) return malformed("UDP_ACCEPT", "truncated");
  if (m.port == 0) return malformed("UDP_ACCEPT", "port 0");
  if (m.max_datagram < kMinUdpDatagram || m.max_datagram > kMaxUdpDatagram)
    return malformed("UDP_ACCEPT", "datagram size out of range");
  return done(r, m, "UDP_ACCEPT");
}

std::vector<uint8_t> encode(const RateLimit& m) {
  auto w = start(FrameType::kRateLimit);
  w.u64(m.max_rate);
  return finish(w);
}
Result<RateLimit> decode_rate_limit(std::span<const uint8_t> p) {
  WireReader r(p);
  RateLimit m;
  m.max_rate = r.u64();
  if (!r.ok()) return malformed("RATE_LIMIT", "truncated");
  return done(r, m, "RATE_LIMIT");
}

std::vector<uint8_t> encode(const JoinStream& m) {
  auto w = start(FrameType::kJoinStream);
  put_id(w, m.session_id);
  w.u16(m.stream_index);
  return finish(w);
}
Result<JoinStream> decode_join_stream(std::span<const uint8_t> p) {
  WireReader r(p);
  JoinStream m{};
  r.bytes(m.session_id.data(), 16);
  m.stream_index = r.u16();
  return done(r, m, "JOIN_STREAM");
}

std::vector<uint8_t> encode_stream_joined() {
  auto w = start(FrameType::kStreamJoined);
  return finish(w);
}

std::vector<uint8_t> encode(const Auth& m) {
  auto w = start(FrameType::kAuth);
  w.str(m.token);
  return finish(w);
}
Result<Auth> decode_auth(std::span<const uint8_t> p) {
  WireReader r(p);
  Auth m;
  m.token = r.str();
  if (r.ok() && m.token.size() > kMaxTokenLength) return malformed("AUTH", "token longer than 1024 bytes");
  return done(r, std::move(m), "AUTH");
}

std::vector<uint8_t> encode_auth_ok() {
  auto w = start(FrameType::kAuthOk);
  return finish(w);
}
Result<Empty> decode_auth_ok(std::span<const uint8_t> p) {
  WireReader r(p);
  return done(r, Empty{}, "AUTH_OK");
}

size_t encoded_size(const FileListEntry& e) {
  return 4 + 1 + 4 + 8 + 8 + 2 + e.entry.path.size() + 2 + e.entry.link_target.size();
}

std::vector<uint8_t> encode(const FileList& m) {
  auto w = start(FrameType::kFileList);
  w.u32(static_cast<uint32_t>(m.entries.size()));
  for (const auto& e : m.entries) {
    w.u32(e.file_id);
    w.u8(static_cast<uint8_t>(e.entry.type));
    w.u32(e.entry.mode & 07777);
    w.u64(static_cast<uint64_t>(e.entry.mtime_ns));
    w.u64(e.entry.size);
    w.str(e.entry.path);
    w.str(e.entry.link_target);
  }
  return finish(w);
}
Result<FileList> decode_file_list(std::span<const uint8_t> p) {
  WireReader r(p);
  FileList m;
  uint32_t count = r.u32();
  // Each entry takes at least 29 bytes: a count beyond what the payload can hold is a lie
  // and must not drive a reserve().
  if (!r.ok() || count > r.remaining() / 29) return malformed("FILE_LIST", "entry count exceeds payload");
  m.entries.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    FileListEntry e;
    e.file_id = r.u32();
    uint8_t type = r.u8();
    e.entry.mode = r.u32();
    e.entry.mtime_ns = static_cast<int64_t>(r.u64());
    e.entry.size = r.u64();
    e.entry.path = r.str();
    e.entry.link_target = r.str();
    if (!r.ok()) return malformed("FILE_LIST", "truncated");
    if (type > 2) return malformed("FILE_LIST", "unknown file type");
    if (e.entry.mode > 07777) return malformed("FILE_LIST", "mode has bits outside 07777");
    e.entry.type = static_cast<FileType>(type);
    if (e.entry.type != FileType::kRegular && e.entry.size != 0)
      return malformed("FILE_LIST", "non-regular entry with a size");
    if (e.entry.type != FileType::kSymlink && !e.entry.link_target.empty())
      return malformed("FILE_LIST", "link target on a non-symlink");
    m.entries.push_back(std::move(e));
  }
  return done(r, std::move(m), "FILE_LIST");
}

std::vector<uint8_t> encode(const FileListEnd& m) {
  auto w = start(FrameType::kFileListEnd);
  w.u32(m.total_files);
  return finish(w);
}
Result<FileListEnd> decode_file_list_end(std::span<const uint8_t> p) {
  WireReader r(p);
  FileListEnd m{r.u32()};
  return done(r, m, "FILE_LIST_END");
}

std::vector<uint8_t> encode(const FilePlan& m) {
  auto w = start(FrameType::kFilePlan);
  w.u32(static_cast<uint32_t>(m.entries.size()));
  for (const auto& e : m.entries) {
    w.u32(e.file_id);
    w.u8(static_cast<uint8_t>(e.action));
    w.str(e.reason);
  }
  return finish(w);
}
Result<FilePlan> decode_file_plan(std::span<const uint8_t> p) {
  WireReader r(p);
  FilePlan m;
  uint32_t count = r.u32();
  if (!r.ok() || count > r.remaining() / 7) return malformed("FILE_PLAN", "entry count exceeds payload");
  m.entries.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    PlanEntry e;
    e.file_id = r.u32();
    uint8_t action = r.u8();
    e.reason = r.str();
    if (!r.ok()) return malformed("FILE_PLAN", "truncated");
    if (action > 2) return malformed("FILE_PLAN", "unknown action");
    e.action = static_cast<PlanAction>(action);
    m.entries.push_back(std::move(e));
  }
  return done(r, std::move(m), "FILE_PLAN");
}

std::vector<uint8_t> encode(const HaveChunks& m) {
  auto w = start(FrameType::kHaveChunks);
  w.u32(m.file_id);
  w.u32(static_cast<uint32_t>(m.chunks.size()));
  for (const auto& [index, hash] : m.chunks) {
    w.u32(index);
    w.u64(hash);
  }
  return finish(w);
}
Result<HaveChunks> decode_have_chunks(std::span<const uint8_t> p) {
  WireReader r(p);
  HaveChunks m{};
  m.file_id = r.u32();
  uint32_t count = r.u32();
  if (!r.ok() || count > r.remaining() / 12) return malformed("HAVE_CHUNKS", "chunk count exceeds payload");
  m.chunks.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t index = r.u32();
    uint64_t hash = r.u64();
    m.chunks.emplace_back(index, hash);
  }
  return done(r, std::move(m), "HAVE_CHUNKS");
}

void encode_chunk_prefix(const ChunkHeader& h, uint32_t payload_len, uint8_t out[kChunkPrefixSize]) {
  std::memset(out, 0, kChunkPrefixSize);
  out[0] = static_cast<uint8_t>(FrameType::kChunk);
  store_be32(out + 4, static_cast<uint32_t>(kChunkHeaderSize + payload_len));
  uint8_t* c = out + kFrameHeaderSize;
  store_be32(c + 0, h.file_id);
  store_be32(c + 4, h.chunk_index);
  store_be32(c + 8, h.raw_length);
  c[12] = h.codec;
  store_be64(c + 16, h.xxh3_64);
}
Result<ChunkHeader> decode_chunk_header(std::span<const uint8_t> p) {
  if (p.size() != kChunkHeaderSize) return malformed("CHUNK", "header is not 32 bytes");
  ChunkHeader h{};
  h.file_id = load_be32(&p[0]);
  h.chunk_index = load_be32(&p[4]);
  h.raw_length = load_be32(&p[8]);
  h.codec = p[12];
  h.xxh3_64 = load_be64(&p[16]);
  if (p[13] || p[14] || p[15] || load_be64(&p[24])) return malformed("CHUNK", "reserved bytes not zero");
  return h;
}

std::vector<uint8_t> encode(const ChunkNack& m) {
  auto w = start(FrameType::kChunkNack);
  w.u32(m.file_id);
  w.u32(m.chunk_index);
  w.u16(m.reason);
  return finish(w);
}
Result<ChunkNack> decode_chunk_nack(std::span<const uint8_t> p) {
  WireReader r(p);
  ChunkNack m{};
  m.file_id = r.u32();
  m.chunk_index = r.u32();
  m.reason = r.u16();
  return done(r, m, "CHUNK_NACK");
}

std::vector<uint8_t> encode(const FileDone& m) {
  auto w = start(FrameType::kFileDone);
  w.u32(m.file_id);
  w.u32(m.chunk_count);
  w.u32(m.sent_chunks);
  put_hash(w, m.hash);
  return finish(w);
}
Result<FileDone> decode_file_done(std::span<const uint8_t> p) {
  WireReader r(p);
  FileDone m{};
  m.file_id = r.u32();
  m.chunk_count = r.u32();
  m.sent_chunks = r.u32();
  m.hash = get_hash(r);
  if (r.ok() && m.sent_chunks > m.chunk_count) return malformed("FILE_DONE", "more chunks sent than the file has");
  return done(r, m, "FILE_DONE");
}

std::vector<uint8_t> encode(const FileResult& m) {
  auto w = start(FrameType::kFileResult);
  w.u32(m.file_id);
  w.u16(m.status);
  put_hash(w, m.hash);
  w.str(m.message.size() > 4096 ? m.message.substr(0, 4096) : m.message);
  return finish(w);
}
Result<FileResult> decode_file_result(std::span<const uint8_t> p) {
  WireReader r(p);
  FileResult m{};
  m.file_id = r.u32();
  m.status = r.u16();
  m.hash = get_hash(r);
  m.message = r.str();
  return done(r, std::move(m), "FILE_RESULT");
}

std::vector<uint8_t> encode(const FileAbort& m) {
  auto w = start(FrameType::kFileAbort);
  w.u32(m.file_id);
  w.u16(m.code);
  w.str(m.message.size() > 4096 ? m.message.substr(0, 4096) : m.message);
  return finish(w);
}
Result<FileAbort> decode_file_abort(std::span<const uint8_t> p) {
  WireReader r(p);
  FileAbort m{};
  m.file_id = r.u32();
  m.code = r.u16();
  m.message = r.str();
  return done(r, std::move(m), "FILE_ABORT");
}

std::vector<uint8_t> encode_finish() {
  auto w = start(FrameType::kFinish);
  return finish(w);
}

std::vector<uint8_t> encode(const Summary& m) {
  auto w = start(FrameType::kSummary);
  w.u32(m.files_committed);
  w.u32(m.files_failed);
  w.u64(m.bytes_written);
  return finish(w);
}
Result<Summary> decode_summary(std::span<const uint8_t> p) {
  WireReader r(p);
  Summary m{};
  m.files_committed = r.u32();
  m.files_failed = r.u32();
  m.bytes_written = r.u64();
  return done(r, m, "SUMMARY");
}

std::vector<uint8_t> encode(const ErrorFrame& m) {
  auto w = start(FrameType::kError);
  w.u16(m.code);
  w.str(m.message.size() > 4096 ? m.message.substr(0, 4096) : m.message);
  return finish(w);
}
Result<ErrorFrame> decode_error(std::span<const uint8_t> p) {
  WireReader r(p);
  ErrorFrame m{};
  m.code = r.u16();
  m.message = r.str();
  return done(r, std::move(m), "ERROR");
}

std::vector<uint8_t> encode(const ListRequest& m) {
  auto w = start(FrameType::kListRequest);
  w.u8((m.with_hashes ? 1 : 0) | (m.one_level ? 2 : 0));
  return finish(w);
}
Result<ListRequest> decode_list_request(std::span<const uint8_t> p) {
  WireReader r(p);
  uint8_t flags = r.u8();
  if (r.ok() && flags > 3) return malformed("LIST_REQUEST", "unknown flags");
  return done(r, ListRequest{(flags & 1) != 0, (flags & 2) != 0}, "LIST_REQUEST");
}

std::vector<uint8_t> encode(const GetSession& m) {
  auto w = start(FrameType::kGetSession);
  w.u32(m.chunk_size);
  w.u16(m.data_streams);
  w.u8(m.list_only ? 1 : 0);
  w.u8(m.compression);
  put_id(w, m.transfer_id);
  w.u16(static_cast<uint16_t>(m.paths.size()));
  for (const auto& gp : m.paths) {
    w.u8(gp.contents ? 1 : 0);
    w.str(gp.path);
  }
  return finish(w);
}
Result<GetSession> decode_get_session(std::span<const uint8_t> p) {
  WireReader r(p);
  GetSession m;
  m.chunk_size = r.u32();
  m.data_streams = r.u16();
  uint8_t flags = r.u8();
  m.compression = r.u8();
  r.bytes(m.transfer_id.data(), 16);
  uint16_t count = r.u16();
  if (!r.ok()) return malformed("GET_SESSION", "truncated");
  if (flags > 1) return malformed("GET_SESSION", "unknown flags");
  m.list_only = flags == 1;
  if (m.compression > 19 && m.compression != kCompressionAuto) return malformed("GET_SESSION", "unknown compression");
  if (m.chunk_size < kMinChunkSize || m.chunk_size > kMaxChunkSize) return malformed("GET_SESSION", "chunk size out of range");
  if (m.data_streams > kMaxStreams || (m.data_streams == 0) != m.list_only)
    return malformed("GET_SESSION", "stream count out of range");
  if (count == 0 || count > kMaxGetPaths || (m.list_only && count != 1))
    return malformed("GET_SESSION", "path count out of range");
  // Each path costs at least 3 bytes, so the count cannot make us reserve more than the payload.
  if (count > r.remaining() / 3) return malformed("GET_SESSION", "path count exceeds payload");
  m.paths.reserve(count);
  for (uint16_t i = 0; i < count && r.ok(); ++i) {
    GetPath gp;
    uint8_t pf = r.u8();
    gp.path = r.str();
    if (r.ok() && pf > 1) return malformed("GET_SESSION", "unknown path flags");
    if (r.ok() && gp.path.size() > 4096) return malformed("GET_SESSION", "path longer than 4096 bytes");
    gp.contents = pf == 1;
    m.paths.push_back(std::move(gp));
  }
  return done(r, std::move(m), "GET_SESSION");
}

size_t encoded_size(const ListEntry& e) {
  return 1 + 1 + 4 + 8 + 8 + 2 + e.entry.path.size() + 2 + e.entry.link_target.size() + (e.has_hash ? 16 : 0);
}

std::vector<uint8_t> encode(const ListEntries& m) {
  auto w = start(FrameType::kListEntries);
  w.u32(static_cast<uint32_t>(m.entries.size()));
  for (const auto& e : m.entries) {
    w.u8(static_cast<uint8_t>(e.entry.type));
    w.u8(e.has_hash ? 1 : 0);
    w.u32(e.entry.mode & 07777);
    w.u64(static_cast<uint64_t>(e.entry.mtime_ns));
    w.u64(e.entry.size);
    w.str(e.entry.path);
    w.str(e.entry.link_target);
    if (e.has_hash) put_hash(w, e.hash);
  }
  return finish(w);
}
Result<ListEntries> decode_list_entries(std::span<const uint8_t> p) {
  WireReader r(p);
  ListEntries m;
  uint32_t count = r.u32();
  if (!r.ok() || count > r.remaining() / 26) return malformed("LIST_ENTRIES", "entry count exceeds payload");
  m.entries.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    ListEntry e;
    uint8_t type = r.u8();
    uint8_t flags = r.u8();
    e.entry.mode = r.u32();
    e.entry.mtime_ns = static_cast<int64_t>(r.u64());
    e.entry.size = r.u64();
    e.entry.path = r.str();
    e.entry.link_target = r.str();
    if (!r.ok()) return malformed("LIST_ENTRIES", "truncated");
    if (type > 2 || flags > 1 || e.entry.mode > 07777) return malformed("LIST_ENTRIES", "bad type, flags or mode");
    e.entry.type = static_cast<FileType>(type);
    e.has_hash = flags == 1;
    if (e.has_hash) e.hash = get_hash(r);
    m.entries.push_back(std::move(e));
  }
  return done(r, std::move(m), "LIST_ENTRIES");
}

std::vector<uint8_t> encode(const ListEnd& m) {
  auto w = start(FrameType::kListEnd);
  w.u32(m.total);
  w.u16(static_cast<uint16_t>(m.status.code()));
  w.str(m.status.message().size() > 4096 ? m.status.message().substr(0, 4096) : m.status.message());
  return finish(w);
}
Result<ListEnd> decode_list_end(std::span<const uint8_t> p) {
  WireReader r(p);
  ListEnd m{};
  m.total = r.u32();
  uint16_t code = r.u16();
  std::string msg = r.str();
  if (r.ok() && code > 9) return malformed("LIST_END", "unknown status");
  m.status = code == 0 ? Status::ok() : Status(static_cast<Error>(code), msg);
  return done(r, std::move(m), "LIST_END");
}

std::vector<uint8_t> encode(const DeleteRequest& m) {
  auto w = start(FrameType::kDelete);
  w.u32(static_cast<uint32_t>(m.paths.size()));
  for (const auto& path : m.paths) w.str(path);
  return finish(w);
}
Result<DeleteRequest> decode_delete(std::span<const uint8_t> p) {
  WireReader r(p);
  DeleteRequest m;
  uint32_t count = r.u32();
  if (!r.ok() || count > r.remaining() / 2) return malformed("DELETE", "path count exceeds payload");
  m.paths.reserve(count);
  for (uint32_t i = 0; i < count; ++i) m.paths.push_back(r.str());
  return done(r, std::move(m), "DELETE");
}

std::vector<uint8_t> encode(const DeleteResult& m) {
  auto w = start(FrameType::kDeleteResult);
  w.u32(static_cast<uint32_t>(m.outcomes.size()));
  for (const auto& o : m.outcomes) {
    w.str(o.path);
    w.u16(o.status);
    w.str(o.message.size() > 1024 ? o.message.substr(0, 1024) : o.message);
  }
  return finish(w);
}
Result<DeleteResult> decode_delete_result(std::span<const uint8_t> p) {
  WireReader r(p);
  DeleteResult m;
  uint32_t count = r.u32();
  if (!r.ok() || count > r.remaining() / 6) return malformed("DELETE_RESULT", "count exceeds payload");
  for (uint32_t i = 0; i < count; ++i) {
    DeleteOutcome o;
    o.path = r.str();
    o.status = r.u16();
    o.message = r.str();
    m.outcomes.push_back(std::move(o));
  }
  return done(r, std::move(m), "DELETE_RESULT");
}

}  // namespace ferry::protocol
