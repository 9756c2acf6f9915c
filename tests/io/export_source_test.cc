// What a server may read for ferry get / ls: walks and opens beneath the export root only,
// never through a symlink — including when a directory is swapped for a symlink between
// the scan and the read (the open by descriptor refuses instead of following).
#include "io/export_source.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace ferry {
namespace {

class ExportSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry_export_source_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    ASSERT_EQ(::mkdir((base_ + "/root").c_str(), 0755), 0);
    ASSERT_EQ(::mkdir((base_ + "/outside").c_str(), 0755), 0);
    write(base_ + "/outside/f.txt", "SECRET");
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }
  static void write(const std::string& p, const std::string& text) { std::ofstream(p) << text; }
  std::string at(const std::string& rel) const { return base_ + "/root/" + rel; }
  RootDir root() const {
    auto r = RootDir::open(base_ + "/root", false);
    EXPECT_TRUE(r) << r.status().to_string();
    return std::move(*r);
  }
  std::vector<FileEntry> walk(const ExportWalk& w, Status* st) const {
    std::vector<FileEntry> out;
    RootDir r = root();
    *st = walk_export(r, w, [&](FileEntry e) { out.push_back(std::move(e)); });
    return out;
  }
  std::string base_;
};

TEST_F(ExportSourceTest, NamedDirectoryIsListedUnderItsNameWithSourcePathsFromTheRoot) {
  ASSERT_EQ(::mkdir(at("d").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(at("d/e").c_str(), 0700), 0);
  write(at("d/e/f.txt"), "abc");
  ASSERT_EQ(::symlink("../../outside/f.txt", at("d/ln").c_str()), 0);
  ::mkfifo(at("d/fifo").c_str(), 0644);  // left out: ferry never transfers fifos
  Status st;
  auto entries = walk({"d", "shot", true}, &st);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  ASSERT_EQ(entries.size(), 4u);
  EXPECT_EQ(entries[0].path, "shot");
  EXPECT_EQ(entries[1].path, "shot/e");
  EXPECT_EQ(entries[1].mode, 0700u);
  EXPECT_EQ(entries[2].path, "shot/e/f.txt");
  EXPECT_EQ(entries[2].source_path, "d/e/f.txt");
  EXPECT_EQ(entries[2].size, 3u);
  EXPECT_EQ(entries[3].path, "shot/ln");
  EXPECT_EQ(entries[3].type, FileType::kSymlink);
  EXPECT_EQ(entries[3].link_target, "../../outside/f.txt");
}

TEST_F(ExportSourceTest, ContentsOneLevelLeavesOutGrandchildrenAndTheStateFolder) {
  ASSERT_EQ(::mkdir(at("d").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(at("d/e").c_str(), 0755), 0);
  write(at("d/e/f.txt"), "abc");
  ASSERT_EQ(::mkdir(at(".ferry").c_str(), 0700), 0);
  Status st;
  auto entries = walk({"", "", false}, &st);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].path, "d");
}

TEST_F(ExportSourceTest, SymlinkInAParentComponentIsRefusedAndMissingIsUsage) {
  ASSERT_EQ(::symlink((base_ + "/outside").c_str(), at("up").c_str()), 0);
  Status st;
  walk({"up/f.txt", "", true}, &st);
  EXPECT_EQ(st.code(), Error::kRefused) << st.to_string();
  walk({"../outside/f.txt", "", true}, &st);
  EXPECT_EQ(st.code(), Error::kRefused) << st.to_string();
  walk({"nope", "", true}, &st);
  EXPECT_EQ(st.code(), Error::kUsage) << st.to_string();
  RootDir r = root();
  auto src = open_source_beneath(r, "up/f.txt", 6);
  EXPECT_EQ(src.status().code(), Error::kRefused) << src.status().to_string();
}

TEST_F(ExportSourceTest, DirectorySwappedForASymlinkAfterTheScanIsNotFollowedWhenReading) {
  ASSERT_EQ(::mkdir(at("d").c_str(), 0755), 0);
  write(at("d/f.txt"), "inside");
  Status st;
  auto entries = walk({"d", "d", true}, &st);
  ASSERT_TRUE(st.is_ok()) << st.to_string();
  ASSERT_EQ(entries.size(), 2u);
  ASSERT_EQ(entries[1].source_path, "d/f.txt");
  // Between scan and read: d becomes a symlink to a directory outside holding f.txt too.
  ASSERT_EQ(::rename(at("d").c_str(), at("old").c_str()), 0);
  ASSERT_EQ(::symlink((base_ + "/outside").c_str(), at("d").c_str()), 0);
  RootDir r = root();
  auto src = open_source_beneath(r, entries[1].source_path, 6);
  ASSERT_FALSE(src) << "read through the swapped-in symlink";
  EXPECT_EQ(src.status().code(), Error::kRefused) << src.status().to_string();
  // And the file itself swapped for a symlink: refused too.
  ASSERT_EQ(::unlink(at("d").c_str()), 0);
  ASSERT_EQ(::rename(at("old").c_str(), at("d").c_str()), 0);
  ASSERT_EQ(::unlink(at("d/f.txt").c_str()), 0);
  ASSERT_EQ(::symlink((base_ + "/outside/f.txt").c_str(), at("d/f.txt").c_str()), 0);
  src = open_source_beneath(r, "d/f.txt", 6);
  ASSERT_FALSE(src);
  EXPECT_EQ(src.status().code(), Error::kRefused) << src.status().to_string();
}

TEST_F(ExportSourceTest, AFifoSwappedInIsRefusedWithoutBlocking) {
  write(at("f"), "x");
  RootDir r = root();
  ASSERT_EQ(::unlink(at("f").c_str()), 0);
  ASSERT_EQ(::mkfifo(at("f").c_str(), 0644), 0);
  auto src = open_source_beneath(r, "f", 1);
  ASSERT_FALSE(src);
  EXPECT_NE(src.status().message().find("no longer a regular file"), std::string::npos) << src.status().to_string();
}

}  // namespace
}  // namespace ferry
