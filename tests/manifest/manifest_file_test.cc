// Tests for src/manifest/manifest_file.{h,cc}: the manifest text format, writer and reader.
#include "manifest/manifest_file.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace ferry {
namespace {

class ManifestFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry_manifest_file_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string at(const std::string& rel) const { return dir_ + "/" + rel; }

  void write_file(const std::string& path, const std::string& data) {
    ::unlink(path.c_str());  // no O_TRUNC of a written file: ext4 would flush it on close
    int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  static std::string read_file(const std::string& path) {
    std::string out;
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
    std::fclose(f);
    return out;
  }
  static bool exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
  }

  static ManifestEntry file(const std::string& path, uint64_t size, int64_t mtime,
                            bool with_hash = true) {
    ManifestEntry m;
    m.entry.path = path;
    m.entry.type = FileType::kRegular;
    m.entry.mode = 0644;
    m.entry.mtime_ns = mtime;
    m.entry.size = size;
    m.has_hash = with_hash;
    if (with_hash) m.hash = xxh3_128(path.data(), path.size());
    return m;
  }
  static ManifestEntry dir(const std::string& path, uint32_t mode = 0755) {
    ManifestEntry m;
    m.entry.path = path;
    m.entry.type = FileType::kDirectory;
    m.entry.mode = mode;
    m.entry.mtime_ns = 1700000000123456789;
    return m;
  }
  static ManifestEntry link(const std::string& path, const std::string& target) {
    ManifestEntry m;
    m.entry.path = path;
    m.entry.type = FileType::kSymlink;
    m.entry.mode = 0777;
    m.entry.mtime_ns = 1600000000000000000;
    m.entry.link_target = target;
    return m;
  }

  // Writes `entries` (sorted into canonical order first) with ManifestWriter.
  std::string write_manifest(std::vector<ManifestEntry> entries, const std::string& name = "m.txt",
                             const std::string& root = "/srv/show") {
    std::sort(entries.begin(), entries.end(), [](const ManifestEntry& a, const ManifestEntry& b) {
      return manifest_path_less(a.entry.path, b.entry.path);
    });
    std::string path = at(name);
    auto w = ManifestWriter::create(path, root);
    EXPECT_TRUE(w.is_ok()) << w.status().message();
    if (!w) return path;
    for (const ManifestEntry& e : entries) {
      Status st = w->add(e);
      EXPECT_TRUE(st.is_ok()) << st.message();
    }
    Status st = w->finish();
    EXPECT_TRUE(st.is_ok()) << st.message();
    return path;
  }

  // Reads a whole manifest; returns the first error (or ok) and the entries read before it.
  static Status read_all(const std::string& path, std::vector<ManifestEntry>* out,
                         std::string* root = nullptr) {
    auto r = ManifestReader::open(path);
    if (!r) return r.status();
    if (root != nullptr) *root = r->root();
    while (true) {
      ManifestEntry m;
      auto more = r->next(&m);
      if (!more) return more.status();
      if (!*more) return Status::ok();
      out->push_back(m);
    }
  }

  // A manifest's text with a correct trailer for the given lines (each without '\n').
  static std::string with_trailer(const std::vector<std::string>& lines, uint64_t count) {
    std::string body;
    for (const std::string& l : lines) body += l + "\n";
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx",
                  static_cast<unsigned long long>(XXH3_64bits(body.data(), body.size())));
    return body + "end " + std::to_string(count) + " " + hex + "\n";
  }

  Status read_text(const std::string& text, std::vector<ManifestEntry>* out = nullptr) {
    std::string path = at("t.txt");
    write_file(path, text);
    std::vector<ManifestEntry> ignored;
    return read_all(path, out != nullptr ? out : &ignored);
  }

  std::string dir_;
};

void expect_same(const ManifestEntry& a, const ManifestEntry& b) {
  EXPECT_EQ(a.entry.path, b.entry.path);
  EXPECT_EQ(a.entry.type, b.entry.type) << a.entry.path;
  EXPECT_EQ(a.entry.mode, b.entry.mode) << a.entry.path;
  EXPECT_EQ(a.entry.mtime_ns, b.entry.mtime_ns) << a.entry.path;
  EXPECT_EQ(a.entry.size, b.entry.size) << a.entry.path;
  EXPECT_EQ(a.entry.link_target, b.entry.link_target) << a.entry.path;
  EXPECT_TRUE(b.entry.source_path.empty()) << a.entry.path;
  EXPECT_EQ(a.has_hash, b.has_hash) << a.entry.path;
  if (a.has_hash && b.has_hash) {
    EXPECT_EQ(a.hash, b.hash) << a.entry.path;
  }
}

// --- Escaping and order ------------------------------------------------------------------

TEST(ManifestEscapeTest, EveryByteRoundTripsAndOnlySafeBytesStayRaw) {
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  std::string esc = manifest_escape(all);
  for (size_t i = 0; i < esc.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(esc[i]);
    EXPECT_FALSE(c <= 0x20 || c == 0x7f) << "raw byte " << int(c) << " at " << i;
  }
  EXPECT_NE(esc.find("%00"), std::string::npos);
  EXPECT_NE(esc.find("%20"), std::string::npos);
  EXPECT_NE(esc.find("%25"), std::string::npos);
  EXPECT_NE(esc.find("%7F"), std::string::npos);
  EXPECT_NE(esc.find("\xc3"), std::string::npos);  // high bytes verbatim
  std::string back;
  ASSERT_TRUE(manifest_unescape(esc, &back));
  EXPECT_EQ(back, all);
  EXPECT_EQ(manifest_escape("a b%c\nd/é"), "a%20b%25c%0Ad/é");
}

TEST(ManifestEscapeTest, OnlyTheCanonicalFormIsAccepted) {
  std::string out;
  EXPECT_TRUE(manifest_unescape("a%20b", &out));
  EXPECT_EQ(out, "a b");
  for (const char* bad : {"%", "a%2", "%2f", "%0a", "%41", "%G0", "a b", "a\tb", "a\x7f", "a\rb",
                          "%%"}) {
    EXPECT_FALSE(manifest_unescape(bad, &out)) << bad;
  }
}

TEST(ManifestOrderTest, ComponentWiseBytewise) {
  EXPECT_LT(compare_manifest_paths("a", "a/x"), 0);
  EXPECT_LT(compare_manifest_paths("a/x", "a b"), 0);    // "a" < "a b" as components
  EXPECT_LT(compare_manifest_paths("a/zzz", "a-b"), 0);  // though '-' < '/' as bytes
  EXPECT_LT(compare_manifest_paths("a/b/c", "a/c"), 0);
  EXPECT_GT(compare_manifest_paths("b", "a/z"), 0);
  EXPECT_LT(compare_manifest_paths("Z", "a"), 0);
  EXPECT_LT(compare_manifest_paths("a", "\xc3\xa9"), 0);  // unsigned bytes
  EXPECT_EQ(compare_manifest_paths("a/b", "a/b"), 0);
  EXPECT_TRUE(manifest_path_less("x", "x/y"));
  EXPECT_FALSE(manifest_path_less("x/y", "x"));
}

// --- Round trip --------------------------------------------------------------------------

TEST_F(ManifestFileTest, RoundTripKeepsEveryFieldOfWeirdEntries) {
  std::vector<ManifestEntry> entries = {
      dir("dir with space"),
      file("dir with space/100% done.exr", 12345, 1700000000000000001),
      file("dir with space/line\nbreak", 1, 5),
      file("dir with space/tab\tand\rcr", 2, 6),
      dir("dir with space/sub", 0700),
      file("dir with space/sub/empty", 0, 0),
      file("émoji-🎬/shot_010.exr", 99, -1500000000123456789),
      dir("émoji-🎬"),
      link("link to %", "../some target%/x\n"),
      file("nohash", 77, 1, /*with_hash=*/false),
      file("raw\x01\x7f\xff\xfe", 3, INT64_MIN),
      file("big", UINT64_MAX, INT64_MAX),
      file("mode", 4, 4),
  };
  entries.back().entry.mode = 07755;
  std::string path = write_manifest(entries, "m.txt", "/srv/my show/%");
  EXPECT_FALSE(exists(path + ".tmp"));

  std::sort(entries.begin(), entries.end(), [](const ManifestEntry& a, const ManifestEntry& b) {
    return manifest_path_less(a.entry.path, b.entry.path);
  });
  std::vector<ManifestEntry> got;
  std::string root;
  Status st = read_all(path, &got, &root);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(root, "/srv/my show/%");
  ASSERT_EQ(got.size(), entries.size());
  for (size_t i = 0; i < got.size(); ++i) expect_same(entries[i], got[i]);

  // One line per entry plus header, root and trailer, whatever the names contain.
  std::string text = read_file(path);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), static_cast<long>(entries.size() + 3));
}

TEST_F(ManifestFileTest, EmptyManifestRoundTrips) {
  std::string path = write_manifest({});
  std::vector<ManifestEntry> got;
  std::string root;
  Status st = read_all(path, &got, &root);
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_TRUE(got.empty());
  EXPECT_EQ(root, "/srv/show");
}

TEST_F(ManifestFileTest, TextIsTheDocumentedFormat) {
  ManifestEntry f = file("shots/a b.exr", 10, 1700000000000000000);
  f.hash = Hash128{0x0123456789abcdefULL, 0xfedcba9876543210ULL};
  std::string path = write_manifest({dir("shots"), f, link("shots/latest", "a b.exr")}, "m.txt",
                                    "/srv/show");
  std::vector<std::string> lines = {
      "ferry-manifest 1",
      "root /srv/show",
      "d 0755 1700000000123456789 0 - shots",
      "f 0644 1700000000000000000 10 0123456789abcdeffedcba9876543210 shots/a%20b.exr",
      "l 0777 1600000000000000000 0 - shots/latest a%20b.exr",
  };
  EXPECT_EQ(read_file(path), with_trailer(lines, 3));
  EXPECT_EQ(f.hash.hex(), "0123456789abcdeffedcba9876543210");
}

TEST_F(ManifestFileTest, FromBytesReadsWhatTheFileReaderReadsAndReportsTheLabel) {
  // Well over the reader's 64 KiB buffer, so the in-memory source is handed out in parts.
  std::vector<ManifestEntry> entries = {dir("d")};
  for (int i = 0; i < 700; ++i) entries.push_back(file("d/" + std::string(240, 'a' + i % 26) + std::to_string(i), i, i));
  std::string path = write_manifest(entries);
  std::string text = read_file(path);
  ASSERT_GT(text.size(), 128u * 1024);
  std::vector<ManifestEntry> from_file;
  std::string root;
  ASSERT_TRUE(read_all(path, &from_file, &root).is_ok());

  auto r = ManifestReader::from_bytes(text, "memory:m.txt");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->root(), root);
  std::vector<ManifestEntry> from_bytes;
  ManifestEntry e;
  while (true) {
    auto more = r->next(&e);
    ASSERT_TRUE(more.is_ok()) << more.status().message();
    if (!*more) break;
    from_bytes.push_back(e);
  }
  ASSERT_EQ(from_bytes.size(), from_file.size());
  for (size_t i = 0; i < from_bytes.size(); ++i) expect_same(from_file[i], from_bytes[i]);

  text.pop_back();  // no final newline: the trailer line is still complete, so still fine
  text.back() ^= 1;  // but a changed trailer byte is an error naming the label and the line
  auto bad = ManifestReader::from_bytes(text, "memory:m.txt");
  ASSERT_TRUE(bad.is_ok());
  Result<bool> more = true;
  while (more.is_ok() && *more) more = bad->next(&e);
  ASSERT_FALSE(more.is_ok());
  EXPECT_NE(more.status().message().find("manifest 'memory:m.txt' line 704"), std::string::npos)
      << more.status().message();
}

TEST_F(ManifestFileTest, ReaderAfterEndKeepsReturningFalse) {
  std::string path = write_manifest({file("a", 1, 1)});
  auto r = ManifestReader::open(path);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  ManifestEntry m;
  auto a = r->next(&m);
  ASSERT_TRUE(a.is_ok());
  EXPECT_TRUE(*a);
  EXPECT_EQ(m.entry.path, "a");
  for (int i = 0; i < 3; ++i) {
    auto b = r->next(&m);
    ASSERT_TRUE(b.is_ok()) << b.status().message();
    EXPECT_FALSE(*b);
  }
  EXPECT_EQ(r->entries_read(), 1u);
}

// --- Writer ------------------------------------------------------------------------------

TEST_F(ManifestFileTest, WriterIsAtomicAndCleansUpWhenNotFinished) {
  std::string path = at("m.txt");
  {
    auto w = ManifestWriter::create(path, "/r");
    ASSERT_TRUE(w.is_ok());
    ASSERT_TRUE(w->add(file("a", 1, 1)).is_ok());
    EXPECT_TRUE(exists(path + ".tmp"));
    EXPECT_FALSE(exists(path));
  }  // destroyed unfinished
  EXPECT_FALSE(exists(path + ".tmp"));
  EXPECT_FALSE(exists(path));

  // An existing manifest is replaced only at finish().
  write_file(path, "old");
  auto w = ManifestWriter::create(path, "/r");
  ASSERT_TRUE(w.is_ok());
  ASSERT_TRUE(w->add(file("a", 1, 1)).is_ok());
  EXPECT_EQ(read_file(path), "old");
  ASSERT_TRUE(w->finish().is_ok());
  EXPECT_NE(read_file(path), "old");
  EXPECT_FALSE(exists(path + ".tmp"));
  EXPECT_EQ(w->entry_count(), 1u);
  Status again = w->finish();
  EXPECT_EQ(again.code(), Error::kInternal);
}

TEST_F(ManifestFileTest, WriterRefusesWhatTheReaderWouldReject) {
  std::string path = at("m.txt");
  auto w = ManifestWriter::create(path, "/r");
  ASSERT_TRUE(w.is_ok());
  // Invalid entries are kUsage and do not poison the writer.
  EXPECT_EQ(w->add(file("../x", 1, 1)).code(), Error::kUsage);
  EXPECT_EQ(w->add(file("/abs", 1, 1)).code(), Error::kUsage);
  EXPECT_EQ(w->add(file("a//b", 1, 1)).code(), Error::kUsage);
  EXPECT_EQ(w->add(link("l", "")).code(), Error::kUsage);
  EXPECT_EQ(w->add(link("l", std::string("a\0b", 3))).code(), Error::kUsage);
  EXPECT_EQ(w->add(link("l", std::string(5000, 'x'))).code(), Error::kUsage);
  // A line over 16 KiB: 4000 bytes that each need escaping (x3) in path and target.
  std::string heavy(200, ' ');
  std::string long_path = heavy;
  for (int i = 0; i < 19; ++i) long_path += "/" + heavy;
  EXPECT_EQ(w->add(link(long_path, std::string(4000, ' '))).code(), Error::kUsage);
  ASSERT_TRUE(w->add(dir("b")).is_ok());
  ASSERT_TRUE(w->add(file("c", 1, 1)).is_ok());
  // Out of order, duplicate, below a file: caller bugs, kInternal.
  auto w2 = ManifestWriter::create(at("m2.txt"), "/r");
  ASSERT_TRUE(w2.is_ok());
  ASSERT_TRUE(w2->add(file("c", 1, 1)).is_ok());
  EXPECT_EQ(w2->add(file("c/d", 1, 1)).code(), Error::kInternal);
  auto w3 = ManifestWriter::create(at("m3.txt"), "/r");
  ASSERT_TRUE(w3.is_ok());
  ASSERT_TRUE(w3->add(file("c", 1, 1)).is_ok());
  EXPECT_EQ(w3->add(file("b", 1, 1)).code(), Error::kInternal);
  EXPECT_EQ(w3->finish().code(), Error::kInternal);  // sticky
  auto w4 = ManifestWriter::create(at("m4.txt"), "/r");
  ASSERT_TRUE(w4.is_ok());
  ASSERT_TRUE(w4->add(file("c", 1, 1)).is_ok());
  EXPECT_EQ(w4->add(file("c", 1, 1)).code(), Error::kInternal);
  ManifestEntry d = dir("e");
  d.has_hash = true;
  auto w5 = ManifestWriter::create(at("m5.txt"), "/r");
  ASSERT_TRUE(w5.is_ok());
  EXPECT_EQ(w5->add(d).code(), Error::kInternal);

  ASSERT_TRUE(w->finish().is_ok());
  std::vector<ManifestEntry> got;
  ASSERT_TRUE(read_all(path, &got).is_ok());
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].entry.path, "b");
  EXPECT_EQ(got[1].entry.path, "c");
}

TEST_F(ManifestFileTest, WriterReportsAnUncreatableFile) {
  auto w = ManifestWriter::create(at("no/such/dir/m.txt"), "/r");
  ASSERT_FALSE(w.is_ok());
  EXPECT_EQ(w.status().code(), Error::kLocalIo);
  EXPECT_NE(w.status().message().find("no/such/dir/m.txt.tmp"), std::string::npos);
}

// --- Reader errors -----------------------------------------------------------------------

TEST_F(ManifestFileTest, ErrorMessageNamesFileAndLine) {
  std::string path = at("m.txt");
  write_file(path, with_trailer({"ferry-manifest 1", "root /r", "d 0755 0 0 - a",
                                 "f 644 0 0 - a/b"},
                                2));
  std::vector<ManifestEntry> got;
  Status st = read_all(path, &got);
  EXPECT_EQ(st.code(), Error::kUsage);
  EXPECT_EQ(st.message(), "manifest '" + path + "' line 4: bad mode field");
  ASSERT_EQ(got.size(), 1u);  // the good line before it was returned
}

TEST_F(ManifestFileTest, EveryTruncationIsAnError) {
  std::string path = write_manifest(
      {dir("d"), file("d/a b", 3, 1), file("d/c", 0, -5), link("d/l", "a b"), file("z", 9, 9)});
  std::string text = read_file(path);
  ASSERT_GT(text.size(), 100u);
  for (size_t len = 0; len < text.size(); ++len) {
    Status st = read_text(text.substr(0, len));
    ASSERT_FALSE(st.is_ok()) << "accepted a truncation to " << len << " bytes";
    EXPECT_EQ(st.code(), Error::kUsage) << len;
    EXPECT_NE(st.message().find(" line "), std::string::npos) << st.message();
  }
  // At a line boundary the trailer is simply missing.
  size_t last_line = text.rfind('\n', text.size() - 2) + 1;
  Status st = read_text(text.substr(0, last_line));
  EXPECT_NE(st.message().find("line 8: missing trailer"), std::string::npos) << st.message();
  EXPECT_TRUE(read_text(text).is_ok());
}

TEST_F(ManifestFileTest, EditedRemovedOrAddedLinesAreDetected) {
  std::string path = write_manifest({dir("d"), file("d/a", 3, 1), file("d/b", 4, 2)});
  std::string text = read_file(path);
  ASSERT_TRUE(read_text(text).is_ok());

  std::string edited = text;
  size_t pos = edited.find("f 0644 1 3");
  ASSERT_NE(pos, std::string::npos);
  edited.replace(pos, 10, "f 0600 1 3");
  Status st = read_text(edited);
  EXPECT_EQ(st.code(), Error::kUsage);
  EXPECT_NE(st.message().find("line 6: checksum mismatch"), std::string::npos) << st.message();

  std::string removed = text;
  size_t b = removed.find("f 0644 2 4");
  removed.erase(b, removed.find('\n', b) + 1 - b);
  st = read_text(removed);
  EXPECT_NE(st.message().find("line 5: trailer says 3 entries but 2 were read"), std::string::npos)
      << st.message();

  std::string added = text;
  size_t end = added.find("end ");
  added.insert(end, "f 0644 3 0 - d/c\n");
  st = read_text(added);
  EXPECT_NE(st.message().find("line 7: trailer says 3 entries but 4"), std::string::npos)
      << st.message();

  st = read_text(text + "x\n");
  EXPECT_NE(st.message().find("line 7: data after the trailer"), std::string::npos)
      << st.message();
}

TEST_F(ManifestFileTest, EverySingleByteChangeIsDetected) {
  std::string path = write_manifest({dir("d"), file("d/a b", 3, 1), link("d/l", "x")});
  std::string text = read_file(path);
  for (size_t i = 0; i < text.size(); ++i) {
    for (unsigned char delta : {1, 0x20, 0x80}) {
      std::string t = text;
      t[i] = static_cast<char>(static_cast<unsigned char>(t[i]) ^ delta);
      Status st = read_text(t);
      ASSERT_FALSE(st.is_ok()) << "byte " << i << " ^ " << int(delta) << " went unnoticed";
      EXPECT_EQ(st.code(), Error::kUsage);
    }
  }
}

TEST_F(ManifestFileTest, BadLinesAreRejectedWithTheirLineNumber) {
  struct Case {
    std::string line;
    std::string expect;
  };
  const std::string h(32, 'a');
  std::vector<Case> cases = {
      {"x 0644 0 0 - a", "bad type field"},
      {"F 0644 0 0 - a", "bad type field"},
      {"f 644 0 0 - a", "bad mode field"},
      {"f 0648 0 0 - a", "bad mode field"},
      {"f 10644 0 0 - a", "bad mode field"},
      {"f 0644 01 0 - a", "bad mtime field"},
      {"f 0644 -0 0 - a", "bad mtime field"},
      {"f 0644 +1 0 - a", "bad mtime field"},
      {"f 0644 9223372036854775808 0 - a", "bad mtime field"},
      {"f 0644 1x 0 - a", "bad mtime field"},
      {"f 0644 0 -1 - a", "bad size field"},
      {"f 0644 0 18446744073709551616 - a", "bad size field"},
      {"d 0755 0 5 - a", "bad size field"},
      {"f 0644 0 0 xyz a", "bad hash field"},
      {"f 0644 0 0 " + std::string(32, 'A') + " a", "bad hash field"},
      {"f 0644 0 0 " + std::string(31, 'a') + " a", "bad hash field"},
      {"d 0755 0 0 " + h + " a", "bad hash field"},
      {"f 0644 0 0 - a%2", "bad escape in the path field"},
      {"f 0644 0 0 - a%41", "bad escape in the path field"},
      {"f 0644 0 0 - a%2f", "bad escape in the path field"},
      {"f 0644 0 0 - a\r", "bad escape in the path field"},
      {"f 0644 0 0 - a\tb", "bad escape in the path field"},
      {"f 0644 0 0 - ../a", "bad path field"},
      {"f 0644 0 0 - a/%2E%2E", "bad escape"},
      {"f 0644 0 0 - /abs", "bad path field"},
      {"f 0644 0 0 - a//b", "bad path field"},
      {"f 0644 0 0 - a/./b", "bad path field"},
      {"f 0644 0 0 - a%00b", "bad path field"},
      {"f 0644 0 0 - " + std::string(256, 'n'), "bad path field"},
      {"f 0644 0 0 -  a", "empty field"},
      {"f 0644 0 0 - a ", "empty field"},
      {" f 0644 0 0 - a", "empty field"},
      {"", "empty field"},
      {"f 0644 0 0 - a extra", "expected 6 fields"},
      {"f 0644 0 0 -", "expected 6 fields"},
      {"l 0777 0 0 - a", "expected 7 fields"},
      {"l 0777 0 0 - a b c d", "too many fields"},
      {"l 0777 0 0 - a %00", "NUL"},
      {"l 0777 0 0 - a %2", "bad escape in the link target field"},
      {"endx 1 0000000000000000", "bad type field"},
      {"end 1", "bad trailer"},
      {"end 01 0000000000000000", "bad entry count"},
      {"end 0 00000000000000000", "bad checksum field"},
      {"end 0 000000000000000G", "bad checksum field"},
  };
  for (const Case& c : cases) {
    // The bad line is line 4, after one good entry; a correct trailer follows.
    std::string text = with_trailer({"ferry-manifest 1", "root /r", "d 0755 0 0 - 0", c.line}, 2);
    std::vector<ManifestEntry> got;
    Status st = read_text(text, &got);
    EXPECT_EQ(st.code(), Error::kUsage) << c.line;
    EXPECT_NE(st.message().find("' line 4: "), std::string::npos) << c.line << " -> " << st.message();
    EXPECT_NE(st.message().find(c.expect), std::string::npos) << c.line << " -> " << st.message();
    EXPECT_EQ(got.size(), 1u) << c.line;
  }
}

TEST_F(ManifestFileTest, OrderDuplicatesAndChildrenOfFilesAreRejected) {
  struct Case {
    std::vector<std::string> lines;
    std::string expect;
  };
  std::vector<Case> cases = {
      {{"f 0644 0 0 - b", "f 0644 0 0 - a"}, "line 4: entries out of order: 'a' after 'b'"},
      {{"f 0644 0 0 - a%20b", "f 0644 0 0 - a/c"}, "line 4: entries out of order"},
      {{"f 0644 0 0 - a", "f 0644 0 0 - a"}, "line 4: duplicate path 'a'"},
      {{"f 0644 0 0 - a", "f 0644 0 0 - a/b"}, "line 4: 'a/b' is below 'a', which is not a"},
      {{"l 0777 0 0 - a t", "d 0755 0 0 - a/b"}, "line 4: 'a/b' is below 'a'"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> lines = {"ferry-manifest 1", "root /r"};
    lines.insert(lines.end(), c.lines.begin(), c.lines.end());
    Status st = read_text(with_trailer(lines, c.lines.size()));
    EXPECT_EQ(st.code(), Error::kUsage);
    EXPECT_NE(st.message().find(c.expect), std::string::npos) << st.message();
  }
  // A file below an unlisted directory is fine, and a directory's children may follow it.
  std::vector<ManifestEntry> got;
  Status st = read_text(with_trailer({"ferry-manifest 1", "root /r", "d 0755 0 0 - a",
                                      "f 0644 0 0 - a/b", "f 0644 0 0 - a%20b",
                                      "f 0644 0 0 - x/y/z"},
                                     4),
                        &got);
  EXPECT_TRUE(st.is_ok()) << st.message();
  EXPECT_EQ(got.size(), 4u);
}

TEST_F(ManifestFileTest, HeaderProblems) {
  struct Case {
    std::string text;
    std::string expect;
  };
  std::vector<Case> cases = {
      {"", "line 1: empty file, not a ferry manifest"},
      {"ferry-manifest 2\nroot /r\nend 0 0000000000000000\n", "line 1: unsupported manifest version 2"},
      {"ferry-manifest 1 \nroot /r\n", "line 1: not a ferry manifest"},
      {"#!/bin/sh\nrm -rf /\n", "line 1: not a ferry manifest"},
      {"ferry-manifest 1", "line 1: last line has no newline"},
      {"ferry-manifest 1\n", "line 2: missing 'root' line"},
      {"ferry-manifest 1\nroute /r\n", "line 2: expected the 'root' line"},
      {"ferry-manifest 1\nroot a%zz\n", "line 2: bad escape in the root field"},
      {"ferry-manifest 1\nroot /r\n", "line 3: missing trailer 'end' line"},
  };
  for (const Case& c : cases) {
    Status st = read_text(c.text);
    EXPECT_EQ(st.code(), Error::kUsage) << c.text;
    EXPECT_NE(st.message().find(c.expect), std::string::npos) << c.text << " -> " << st.message();
  }
}

TEST_F(ManifestFileTest, OverlongLinesAreRejectedWithoutReadingThemWhole) {
  std::string line = "f 0644 0 0 - " + std::string(kMaxManifestLine, 'a');
  Status st = read_text("ferry-manifest 1\nroot /r\nd 0755 0 0 - 0\n" + line + "\nend 2 0\n");
  EXPECT_EQ(st.code(), Error::kUsage);
  EXPECT_NE(st.message().find("line 4: line longer than 16384 bytes"), std::string::npos)
      << st.message();
  // Megabytes without a newline, even as the first line.
  st = read_text(std::string(3 << 20, 'x'));
  EXPECT_NE(st.message().find("line 1: line longer than"), std::string::npos) << st.message();
  // The longest root line accepted is exactly the limit.
  std::string root_line = "root " + std::string(kMaxManifestLine - 5, 'r');
  ASSERT_EQ(root_line.size(), kMaxManifestLine);
  st = read_text(with_trailer({"ferry-manifest 1", root_line}, 0));
  EXPECT_TRUE(st.is_ok()) << st.message();
  st = read_text(with_trailer({"ferry-manifest 1", root_line + "r"}, 0));
  EXPECT_NE(st.message().find("line 2: line longer than"), std::string::npos) << st.message();
}

TEST_F(ManifestFileTest, RandomGarbageNeverCrashesAndIsAlwaysAnError) {
  std::mt19937 rng(12345);
  std::string valid = read_file(write_manifest({dir("d"), file("d/a", 3, 1), link("d/l", "x")}));
  const std::string alphabet = "fdl end0123456789abcdef-%/ \n\r\t.";
  for (int iter = 0; iter < 10000; ++iter) {
    std::string text;
    int mode = iter % 4;
    size_t len = rng() % 400;
    if (mode == 0) {  // random bytes
      for (size_t i = 0; i < len; ++i) text += static_cast<char>(rng() & 0xff);
    } else if (mode == 1) {  // a valid header then random structured noise
      text = "ferry-manifest 1\nroot /r\n";
      for (size_t i = 0; i < len; ++i) text += alphabet[rng() % alphabet.size()];
    } else if (mode == 2) {  // splice: a valid manifest with a random range replaced
      text = valid;
      size_t a = rng() % text.size();
      size_t b = a + rng() % (text.size() - a);
      std::string noise;
      size_t noise_len = rng() % 20;
      for (size_t i = 0; i < noise_len; ++i) noise += alphabet[rng() % alphabet.size()];
      text.replace(a, b - a, noise);
      if (text == valid) continue;
    } else {  // random lines with a correct trailer: only field checks can catch these
      std::vector<std::string> lines = {"ferry-manifest 1", "root /r"};
      std::string l;
      for (size_t i = 0; i < len; ++i) {
        char c = alphabet[rng() % alphabet.size()];
        if (c == '\n') {
          lines.push_back(l);
          l.clear();
        } else {
          l += c;
        }
      }
      lines.push_back(l);
      text = with_trailer(lines, lines.size() - 2);
    }
    Status st = read_text(text);
    if (st.is_ok()) {
      // Only possible when every random line happened to be a valid entry.
      ASSERT_EQ(mode, 3) << text;
      continue;
    }
    EXPECT_EQ(st.code(), Error::kUsage) << st.message();
    EXPECT_EQ(st.message().rfind("manifest '", 0), 0u) << st.message();
    EXPECT_NE(st.message().find(" line "), std::string::npos) << st.message();
  }
}

TEST_F(ManifestFileTest, UnreadableFilesAreLocalIoErrors) {
  auto r = ManifestReader::open(at("absent.txt"));
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Error::kLocalIo);
  EXPECT_NE(r.status().message().find("absent.txt"), std::string::npos);
  auto d = ManifestReader::open(dir_);
  ASSERT_FALSE(d.is_ok());
  EXPECT_EQ(d.status().code(), Error::kLocalIo);
}

TEST_F(ManifestFileTest, ErrorsAreSticky) {
  std::string path = at("m.txt");
  write_file(path, with_trailer({"ferry-manifest 1", "root /r", "f 0644 0 0 - b",
                                 "f 0644 0 0 - a", "f 0644 0 0 - c"},
                                3));
  auto r = ManifestReader::open(path);
  ASSERT_TRUE(r.is_ok());
  ManifestEntry m;
  ASSERT_TRUE(r->next(&m).is_ok());
  auto e1 = r->next(&m);
  ASSERT_FALSE(e1.is_ok());
  auto e2 = r->next(&m);
  ASSERT_FALSE(e2.is_ok());
  EXPECT_EQ(e1.status().message(), e2.status().message());
}

// --- LineFileReader ----------------------------------------------------------------------

TEST_F(ManifestFileTest, LineReaderReportsUnterminatedLastLineAndLongLines) {
  std::string path = at("lines.txt");
  write_file(path, "one\n\nthree\r\n" + std::string(20, 'x') + "\nlast");
  auto r = LineFileReader::open(path, 10);
  ASSERT_TRUE(r.is_ok());
  std::string_view line;
  bool term = false;
  auto n = r->next(&line, &term);
  ASSERT_TRUE(n.is_ok());
  EXPECT_EQ(*n, LineFileReader::Read::kLine);
  EXPECT_EQ(line, "one");
  EXPECT_TRUE(term);
  ASSERT_EQ(*r->next(&line, &term), LineFileReader::Read::kLine);
  EXPECT_EQ(line, "");
  ASSERT_EQ(*r->next(&line, &term), LineFileReader::Read::kLine);
  EXPECT_EQ(line, "three\r");
  EXPECT_EQ(r->line_number(), 3u);
  EXPECT_EQ(*r->next(&line, &term), LineFileReader::Read::kTooLong);
  EXPECT_EQ(r->line_number(), 4u);
  EXPECT_EQ(*r->next(&line, &term), LineFileReader::Read::kTooLong);

  write_file(path, "a\nlast");
  auto r2 = LineFileReader::open(path, 10);
  ASSERT_TRUE(r2.is_ok());
  ASSERT_EQ(*r2->next(&line, &term), LineFileReader::Read::kLine);
  ASSERT_EQ(*r2->next(&line, &term), LineFileReader::Read::kLine);
  EXPECT_EQ(line, "last");
  EXPECT_FALSE(term);
  EXPECT_EQ(*r2->next(&line, &term), LineFileReader::Read::kEnd);
  EXPECT_EQ(*r2->next(&line, &term), LineFileReader::Read::kEnd);
}

}  // namespace
}  // namespace ferry
