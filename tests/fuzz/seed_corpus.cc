// Writes the seed corpus of every fuzz target (tests/fuzz/corpus/<target>/) with the real
// encoders, so the seeds are valid inputs that start the fuzzer deep inside each parser.
// Run by hand after a wire or file format change, then commit the result:
//   build-fuzz/tests/fuzz/fuzz_seed_corpus tests/fuzz/corpus
// (S3 responses come from servers, not from ferry: those seeds are samples of S3's format.)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "manifest/journal.h"
#include "manifest/manifest_file.h"
#include "protocol/frames.h"
#include "transport/udp/datagram_format.h"

namespace fs = std::filesystem;
using namespace ferry;

namespace {

fs::path g_out;

void put(const std::string& target, const std::string& name, const std::vector<uint8_t>& bytes) {
  fs::create_directories(g_out / target);
  std::ofstream(g_out / target / name, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}
void put(const std::string& target, const std::string& name, const std::string& text) {
  put(target, name, std::vector<uint8_t>(text.begin(), text.end()));
}
std::vector<uint8_t> cat(std::vector<uint8_t> a, const std::vector<uint8_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

FileEntry file(std::string path, uint64_t size) {
  FileEntry e;
  e.path = std::move(path);
  e.size = size;
  e.mtime_ns = 1'764'400'000'123'456'789;
  return e;
}

void frames() {
  using namespace protocol;
  put("frame_decoder", "hello", encode(Hello{}));
  put("frame_decoder", "welcome", encode(Welcome{kMaxVersion, kDefaultChunkSize, 16}));
  OpenSession open{kDefaultChunkSize, 4, OverwriteMode::kDiff, ResumeMode::kSparse, {}, "shoot/day1"};
  open.transfer_id[0] = 7;
  put("frame_decoder", "open_session", encode(open));
  put("frame_decoder", "auth", encode(Auth{"ferry_tok_0123456789abcdef"}));
  FileEntry dir = file("clips", 0);
  dir.type = FileType::kDirectory;
  dir.mode = 0755;
  FileEntry link = file("clips/latest", 0);
  link.type = FileType::kSymlink;
  link.link_target = "a.mov";
  put("frame_decoder", "file_list",
      encode(FileList{{{0, dir}, {1, file("clips/a.mov", 10'000'000)}, {2, link}}}));
  put("frame_decoder", "file_plan",
      encode(FilePlan{{{1, PlanAction::kSend, ""}, {2, PlanAction::kReject, "exists"}}}));
  put("frame_decoder", "have_chunks", encode(HaveChunks{1, {{0, 0x1122334455667788ull}, {3, 42}}}));
  uint8_t prefix[kChunkPrefixSize];
  encode_chunk_prefix(ChunkHeader{1, 2, 4096, 1, 0xabcdefull}, 0, prefix);
  put("frame_decoder", "chunk", std::vector<uint8_t>(prefix, prefix + sizeof prefix));
  put("frame_decoder", "file_done", encode(FileDone{1, 3, 2, Hash128{}}));
  put("frame_decoder", "file_result", encode(FileResult{1, 0, Hash128{}, "ok"}));
  put("frame_decoder", "list_entries", encode(ListEntries{{{file("clips/a.mov", 5), true, Hash128{}}}}));
  put("frame_decoder", "delete", encode(DeleteRequest{{"old/x", "old"}}));
  put("frame_decoder", "error", encode(ErrorFrame{3, "no such export"}));
}

void journal_file() {
  using namespace journal;
  std::vector<uint8_t> j(std::begin(kMagic), std::end(kMagic));
  FileRecord r;
  r.slot = 0;
  r.size = 12'000'000;
  r.mtime_ns = 1'764'400'000'000'000'000;
  r.chunk_size = 4u << 20;
  r.temp_dev = 2049;
  r.temp_ino = 131;
  r.rel_path = "clips/a.mov";
  r.temp_name = ".ferry-tmp-a.mov.1a2b";
  std::vector<std::pair<uint32_t, uint64_t>> chunks = {{0, 111}, {2, 222}};
  put("journal_reader", "header_only", j);
  j = cat(j, encode_file(r));
  j = cat(j, encode_chunks(0, chunks));
  put("journal_reader", "file_chunks", j);
  r.slot = 1;
  r.rel_path = "clips/b.mov";
  std::vector<uint8_t> two = cat(cat(j, encode_mark(Kind::kCommitted, 0)), encode_file(r));
  put("journal_reader", "committed_and_open", cat(two, encode_mark(Kind::kDiscarded, 1)));
  put("journal_reader", "torn_tail", std::vector<uint8_t>(two.begin(), two.end() - 5));
  // A leading odd byte asks the fuzz target to recompute the checksums (see its comment).
  put("journal_reader", "fixup_committed_and_open", cat({1}, cat(two, encode_mark(Kind::kDiscarded, 1))));
}

void manifests() {
  fs::create_directories(g_out / "manifest_reader");
  auto write = [](const std::string& name, const std::vector<std::pair<FileEntry, bool>>& entries) {
    std::string path = (g_out / "manifest_reader" / name).string();
    auto w = ManifestWriter::create(path, "/srv/shoot day");
    if (!w) return std::fprintf(stderr, "%s\n", w.status().message().c_str()), void();
    Hash128 h{};
    for (const auto& [e, hashed] : entries)
      if (Status st = w->add(e, hashed ? &h : nullptr); !st) std::fprintf(stderr, "%s\n", st.message().c_str());
    if (Status st = w->finish(); !st) std::fprintf(stderr, "%s\n", st.message().c_str());
  };
  write("empty", {});
  FileEntry dir = file("clips", 0);
  dir.type = FileType::kDirectory;
  dir.mode = 0755;
  FileEntry link = file("clips/latest", 0);
  link.type = FileType::kSymlink;
  link.link_target = "a b%.mov";
  write("tree", {{dir, false}, {file("clips/a b%.mov", 10'000'000), true}, {link, false}, {file("notes.txt", 0), false}});
}

void configs() {
  daemon::DaemonConfig c;
  c.file = "fuzz.toml";
  c.server.listen = {"127.0.0.1:0", "[::1]:7400"};
  c.server.state_dir = "/tmp";
  c.tls.plaintext = true;
  c.exports = {{"shoot", "/tmp"}, {"archive.v2", "/"}};
  c.tokens_file = "/tmp/tokens.toml";
  c.metrics_listen = "127.0.0.1:9400";
  put("daemon_config", "canonical", daemon::to_toml(c));
  put("daemon_config", "syntax",
      "# every construct of the subset\n[server]\nlisten = [\n  \"0.0.0.0:7400\", # trailing comma\n]\n"
      "memory = \"1G\"\nmax_sessions = 1_000\nlog_level = 'debug'\n[tls]\nplaintext = true\n"
      "[[export]]\nname = \"a\\u00e9\"\npath = \"/tmp\"\n");
}

void s3_samples() {
  put("s3_xml", "error", "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>SlowDown</Code>"
                         "<Message>Please reduce your request rate.</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>");
  put("s3_xml", "initiate", "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
                            "<Bucket>b</Bucket><Key>clips/a.mov</Key><UploadId>VXBsb2FkIElE</UploadId>"
                            "</InitiateMultipartUploadResult>");
  put("s3_xml", "list_parts", "<ListPartsResult><Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId>"
                              "<NextPartNumberMarker>2</NextPartNumberMarker><IsTruncated>true</IsTruncated>"
                              "<Part><PartNumber>1</PartNumber><ETag>&quot;7778aef83f66abc1fa1e8477f296d394&quot;</ETag>"
                              "<Size>8388608</Size></Part><Part><PartNumber>2</PartNumber><ETag>\"aa\"</ETag>"
                              "<Size>5</Size></Part></ListPartsResult>");
  put("s3_xml", "list_uploads", "<ListMultipartUploadsResult><Bucket>b</Bucket><IsTruncated>false</IsTruncated>"
                                "<NextKeyMarker>k</NextKeyMarker><NextUploadIdMarker>u</NextUploadIdMarker>"
                                "<Upload><Key>a &amp; b</Key><UploadId>u1</UploadId>"
                                "<Initiated>2026-11-29T07:38:22.000Z</Initiated></Upload></ListMultipartUploadsResult>");
  put("s3_xml", "list_objects", "<ListBucketResult><Name>b</Name><KeyCount>2</KeyCount><IsTruncated>true</IsTruncated>"
                                "<NextContinuationToken>tok==</NextContinuationToken>"
                                "<Contents><Key> lead&#32;space</Key><Size>3</Size><ETag>\"e\"</ETag></Contents>"
                                "<Contents><Key><![CDATA[x<y]]></Key><Size>0</Size><ETag>&#x22;f&#x22;</ETag></Contents>"
                                "</ListBucketResult>");
  put("s3_xml", "complete", "<CompleteMultipartUploadResult><Location>http://h/b/k</Location><Bucket>b</Bucket>"
                            "<Key>k</Key><ETag>\"3858f62230ac3c915f300c664312c11f-9\"</ETag></CompleteMultipartUploadResult>");
}

void datagrams() {
  using namespace udp;
  std::vector<uint8_t> d(kHeaderSize + kDataPrefix + 5);
  encode_header(DatagramKind::kData, 77, d.data());
  const uint8_t frag[5] = {1, 2, 3, 4, 5};
  encode_data_body(3, kLastFragmentFlag | 1400, frag, d.data() + kHeaderSize);
  put("udp_datagram", "data", d);
  AckFrame ack;
  ack.largest_acked = 100;
  ack.ack_delay_us = 250;
  ack.largest_recv_time_us = 123456;
  ack.floor = 10;
  ack.ranges = {{90, 100}, {40, 80}, {10, 20}};
  std::vector<uint8_t> a(kHeaderSize);
  encode_header(DatagramKind::kAck, 78, a.data());
  put("udp_datagram", "ack", cat(a, encode_ack_body(ack)));
  std::vector<uint8_t> p(kHeaderSize + 3, 0);
  encode_header(DatagramKind::kProbe, 79, p.data());
  put("udp_datagram", "probe", p);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
    return 2;
  }
  g_out = argv[1];
  frames();
  journal_file();
  manifests();
  configs();
  s3_samples();
  datagrams();
  return 0;
}
