#include "manifest/journal.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "../e2e/e2e_util.h"

namespace ferry {
namespace {

using namespace journal;

std::vector<uint8_t> image(std::initializer_list<std::vector<uint8_t>> records) {
  std::vector<uint8_t> out(kMagic, kMagic + sizeof kMagic);
  for (const auto& r : records) out.insert(out.end(), r.begin(), r.end());
  return out;
}

FileRecord file_record(uint32_t slot, const std::string& path) {
  FileRecord f;
  f.slot = slot;
  f.size = 10 << 20;
  f.mtime_ns = 1'600'000'000'123'456'789;
  f.chunk_size = 1 << 20;
  f.temp_dev = 42;
  f.temp_ino = 4242;
  f.rel_path = path;
  f.temp_name = ".x.ferry-abc.part";
  return f;
}

TEST(JournalFormatTest, RecordsRoundTrip) {
  std::vector<std::pair<uint32_t, uint64_t>> chunks = {{0, 11}, {3, 33}};
  auto img = image({encode_file(file_record(0, "a/b.exr")), encode_chunks(0, chunks),
                    encode_file(file_record(1, "done.txt")), encode_mark(Kind::kCommitted, 1)});
  Loaded l = parse(img);
  ASSERT_TRUE(l.header_ok);
  EXPECT_EQ(l.valid_bytes, img.size());
  EXPECT_EQ(l.ignored_bytes, 0u);
  EXPECT_EQ(l.next_slot, 2u);
  ASSERT_EQ(l.files.count("a/b.exr"), 1u);
  const PartialFile& p = l.files["a/b.exr"];
  EXPECT_EQ(p.file.size, 10u << 20);
  EXPECT_EQ(p.file.mtime_ns, 1'600'000'000'123'456'789);
  EXPECT_EQ(p.file.temp_ino, 4242u);
  EXPECT_EQ(p.chunks.size(), 2u);
  EXPECT_EQ(p.chunks.at(3), 33u);
  EXPECT_TRUE(l.files["done.txt"].committed);
}

TEST(JournalFormatTest, TornLastRecordIsIgnored) {
  std::vector<std::pair<uint32_t, uint64_t>> c1 = {{0, 1}}, c2 = {{1, 2}};
  auto img = image({encode_file(file_record(0, "f")), encode_chunks(0, c1), encode_chunks(0, c2)});
  size_t full = img.size();
  img.resize(full - 5);  // power loss in the middle of the last append
  Loaded l = parse(img);
  EXPECT_EQ(l.files["f"].chunks.size(), 1u) << "only the intact chunk record counts";
  EXPECT_EQ(l.valid_bytes + l.ignored_bytes, img.size());
  EXPECT_GT(l.ignored_bytes, 0u);
}

TEST(JournalFormatTest, ARecordWithABadChecksumEndsTheJournal) {
  std::vector<std::pair<uint32_t, uint64_t>> c1 = {{0, 1}}, c2 = {{1, 2}};
  auto img = image({encode_file(file_record(0, "f")), encode_chunks(0, c1), encode_chunks(0, c2)});
  img[img.size() - 3] ^= 0x40;  // flip a bit inside the last record's body
  Loaded l = parse(img);
  EXPECT_EQ(l.files["f"].chunks.size(), 1u);
  EXPECT_FALSE(l.files["f"].chunks.count(1));
}

TEST(JournalFormatTest, WrongHeaderTrustsNothing) {
  auto img = image({encode_file(file_record(0, "f"))});
  img[0] = 'X';
  Loaded l = parse(img);
  EXPECT_FALSE(l.header_ok);
  EXPECT_TRUE(l.files.empty());
}

TEST(JournalFormatTest, ChunksForAnUnknownSlotAreIgnored) {
  std::vector<std::pair<uint32_t, uint64_t>> c = {{0, 1}};
  Loaded l = parse(image({encode_chunks(7, c)}));
  EXPECT_TRUE(l.files.empty());
}

TEST(JournalFormatTest, DiscardedFileIsNotResumable) {
  std::vector<std::pair<uint32_t, uint64_t>> c = {{0, 1}};
  Loaded l = parse(image({encode_file(file_record(0, "f")), encode_chunks(0, c), encode_mark(Kind::kDiscarded, 0)}));
  EXPECT_TRUE(l.files["f"].discarded);
  EXPECT_TRUE(l.files["f"].chunks.empty());
}

TEST(JournalFormatTest, GarbageNeverCrashes) {
  std::mt19937 rng(1);
  for (int i = 0; i < 5000; ++i) {
    std::vector<uint8_t> img(kMagic, kMagic + sizeof kMagic);
    int n = static_cast<int>(rng() % 300);
    for (int k = 0; k < n; ++k) img.push_back(static_cast<uint8_t>(rng()));
    Loaded l = parse(img);
    EXPECT_LE(l.valid_bytes, img.size());
  }
}

class ReceiveJournalTest : public ::testing::Test {
 protected:
  test::TempDir dir_{"journal"};
  RootDir root() { return std::move(*RootDir::open(dir_.path(), false)); }
  std::string path() { return dir_ / ".ferry/journal/00ff.fj"; }
};

TEST_F(ReceiveJournalTest, ChunksSurviveReopenAndTornTailIsTruncatedBeforeAppending) {
  RootDir r = root();
  {
    auto j = ReceiveJournal::open(r, "00ff");
    ASSERT_TRUE(j) << j.status().to_string();
    uint32_t slot = (*j)->begin_file(file_record(0, "big.bin"));
    for (uint32_t i = 0; i < 5; ++i) (*j)->chunk_done(slot, i, 100 + i);
    ASSERT_TRUE((*j)->flush());
  }
  // A torn append: half a record's worth of junk at the end.
  {
    std::ofstream out(path(), std::ios::binary | std::ios::app);
    out.write("\x00\x00\x01\x00garbage", 11);
  }
  struct stat before {};
  ASSERT_EQ(stat(path().c_str(), &before), 0);
  auto j = ReceiveJournal::open(r, "00ff");
  ASSERT_TRUE(j) << j.status().to_string();
  EXPECT_GT((*j)->ignored_bytes(), 0u);
  const PartialFile* p = (*j)->partial("big.bin");
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->chunks.size(), 5u);
  struct stat after {};
  ASSERT_EQ(stat(path().c_str(), &after), 0);
  EXPECT_EQ(after.st_size, before.st_size - 11) << "the torn tail is cut before anything is appended";
}

TEST_F(ReceiveJournalTest, ASecondSessionCannotOpenALockedJournal) {
  RootDir r = root();
  auto first = ReceiveJournal::open(r, "00ff");
  ASSERT_TRUE(first);
  auto second = ReceiveJournal::open(r, "00ff");
  ASSERT_FALSE(second);
  EXPECT_EQ(second.status().code(), Error::kRefused);
}

TEST_F(ReceiveJournalTest, CommittedFilesAreNotPartialAndRemoveDeletesTheJournal) {
  RootDir r = root();
  {
    auto j = ReceiveJournal::open(r, "00ff");
    ASSERT_TRUE(j);
    uint32_t slot = (*j)->begin_file(file_record(0, "a"));
    (*j)->chunk_done(slot, 0, 1);
    (*j)->committed(slot);
  }
  auto j = ReceiveJournal::open(r, "00ff");
  ASSERT_TRUE(j);
  EXPECT_EQ((*j)->partial("a"), nullptr);
  EXPECT_TRUE((*j)->committed_earlier("a"));
  (*j)->remove();
  struct stat st {};
  EXPECT_NE(stat(path().c_str(), &st), 0);
}

}  // namespace
}  // namespace ferry
