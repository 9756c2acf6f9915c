// The S3 upload journal: round trip, torn and corrupt records, locking, header damage.
#include "s3/upload_journal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "s3_test_support.h"

namespace ferry::s3::test {
namespace {

UploadJournalState header() {
  UploadJournalState s;
  s.endpoint = "http://127.0.0.1:9000";
  s.bucket = "bkt";
  s.key = "plates/shot 010/line\nbreak.exr";  // blanks and a newline survive
  s.source = "/srv/plates/shot 010/f.exr";
  s.size = 123456789;
  s.mtime_ns = 1700000000123456789;
  s.part_size = 16 << 20;
  s.upload_id = "abc/def+==";
  s.created_unix = 1700000000;
  return s;
}

TEST(UploadJournal, RecordsPartsAndReadsThemBack) {
  TempDir d("s3j");
  std::string path = UploadJournal::path_for(d.path(), "e", "b", "k", "/s");
  EXPECT_EQ(path, UploadJournal::path_for(d.path(), "e", "b", "k", "/s"));
  EXPECT_NE(path, UploadJournal::path_for(d.path(), "e", "b", "k2", "/s"));
  {
    auto j = UploadJournal::create(path, header());
    ASSERT_TRUE(j) << j.status().message();
    ASSERT_TRUE((*j)->record_part(1, {"etag-1", "md5one=="}));
    ASSERT_TRUE((*j)->record_part(7, {"etag 7", "md5seven=="}));
  }
  bool absent = true;
  auto j = UploadJournal::open_existing(path, &absent);
  ASSERT_TRUE(j) << j.status().message();
  ASSERT_FALSE(absent);
  const auto& s = (*j)->state();
  EXPECT_EQ(s.key, header().key);
  EXPECT_EQ(s.source, header().source);
  EXPECT_EQ(s.size, header().size);
  EXPECT_EQ(s.mtime_ns, header().mtime_ns);
  EXPECT_EQ(s.upload_id, header().upload_id);
  ASSERT_EQ(s.parts.size(), 2u);
  EXPECT_EQ(s.parts.at(7).etag, "etag 7");
  EXPECT_EQ(s.parts.at(1).md5_b64, "md5one==");
  EXPECT_EQ(UploadJournal::list(d.path()).size(), 1u);
  ASSERT_TRUE((*j)->remove());
  EXPECT_TRUE(UploadJournal::list(d.path()).empty());
  auto none = UploadJournal::open_existing(path, &absent);
  ASSERT_TRUE(none);
  EXPECT_TRUE(absent);
}

TEST(UploadJournal, TornLastRecordIsIgnoredAndCutBeforeNewAppends) {
  TempDir d("s3j");
  std::string path = d / "x.upload";
  {
    auto j = UploadJournal::create(path, header());
    ASSERT_TRUE(j);
    ASSERT_TRUE((*j)->record_part(1, {"e1", "m1"}));
    ASSERT_TRUE((*j)->record_part(2, {"e2", "m2"}));
  }
  std::string text = read_file(path);
  ASSERT_EQ(::truncate(path.c_str(), static_cast<off_t>(text.size() - 5)), 0);  // crash mid-append
  {
    bool absent = false;
    auto j = UploadJournal::open_existing(path, &absent);
    ASSERT_TRUE(j) << j.status().message();
    EXPECT_EQ((*j)->state().parts.size(), 1u);
    ASSERT_TRUE((*j)->record_part(3, {"e3", "m3"}));
  }
  auto s = UploadJournal::read(path);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->parts.size(), 2u);
  EXPECT_TRUE(s->parts.count(1) && s->parts.count(3));
}

TEST(UploadJournal, CorruptRecordEndsThePartList) {
  TempDir d("s3j");
  std::string path = d / "x.upload";
  {
    auto j = UploadJournal::create(path, header());
    ASSERT_TRUE(j);
    for (uint32_t n = 1; n <= 3; ++n) ASSERT_TRUE((*j)->record_part(n, {"etag" + std::to_string(n), "m"}));
  }
  std::string text = read_file(path);
  size_t p = text.find("etag2");
  text[p + 4] = '9';  // a flipped byte: its check no longer matches
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  auto s = UploadJournal::read(path);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->parts.size(), 1u);  // part 1 only: nothing after a bad record is trusted
}

TEST(UploadJournal, DamagedHeaderIsAnErrorNamingTheFile) {
  TempDir d("s3j");
  std::string path = d / "x.upload";
  { ASSERT_TRUE(UploadJournal::create(path, header())); }
  std::string text = read_file(path);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text.substr(0, text.find("upload_id"));
  auto s = UploadJournal::read(path);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.status().code(), Error::kProtocol);
  EXPECT_NE(s.status().message().find(path), std::string::npos);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << "ferry-s3-upload 99\n";
  EXPECT_FALSE(UploadJournal::read(path));
}

TEST(UploadJournal, SecondOpenerIsRefusedWhileTheFirstHoldsIt) {
  TempDir d("s3j");
  std::string path = d / "x.upload";
  auto first = UploadJournal::create(path, header());
  ASSERT_TRUE(first);
  bool absent = false;
  auto second = UploadJournal::open_existing(path, &absent);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.status().code(), Error::kRefused);
  EXPECT_NE(second.status().message().find("another ferry process"), std::string::npos);
}

}  // namespace
}  // namespace ferry::s3::test

namespace ferry::s3::test {
namespace {

// --checksum-algorithm crc32c adds one optional header line; MD5 journals are written
// exactly as before it existed, so journals of earlier versions read (and resume) as MD5.
TEST(UploadJournal, ChecksumAlgorithmIsAnOptionalHeaderLineAndOldJournalsReadAsMd5) {
  TempDir d("s3j-sum");
  std::string md5_path = UploadJournal::path_for(d.path(), "e", "b", "k", "/md5");
  std::string crc_path = UploadJournal::path_for(d.path(), "e", "b", "k", "/crc");
  {
    auto j = UploadJournal::create(md5_path, header());
    ASSERT_TRUE(j) << j.status().message();
    ASSERT_TRUE((*j)->record_part(2, {"etag-2", "md5two=="}));
    UploadJournalState c = header();
    c.checksum = "crc32c";
    auto k = UploadJournal::create(crc_path, c);
    ASSERT_TRUE(k) << k.status().message();
    ASSERT_TRUE((*k)->record_part(3, {"etag-3", "4waSgw=="}));
  }
  std::string old_format = read_file(md5_path);
  EXPECT_EQ(old_format.find("checksum"), std::string::npos) << old_format;
  EXPECT_NE(read_file(crc_path).find("\nchecksum crc32c\nheader-check\n"), std::string::npos);
  auto m = UploadJournal::read(md5_path);
  ASSERT_TRUE(m) << m.status().message();
  EXPECT_EQ(m->checksum, "md5");
  EXPECT_EQ(m->parts.at(2).md5_b64, "md5two==");
  auto c = UploadJournal::read(crc_path);
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->checksum, "crc32c");
  EXPECT_EQ(c->parts.at(3).md5_b64, "4waSgw==");
  // An unknown algorithm is a damaged header, not silently MD5.
  std::string bad = read_file(crc_path);
  bad.replace(bad.find("checksum crc32c"), 15, "checksum sha999");
  std::ofstream(crc_path, std::ios::trunc) << bad;
  EXPECT_FALSE(UploadJournal::read(crc_path));
}

}  // namespace
}  // namespace ferry::s3::test
