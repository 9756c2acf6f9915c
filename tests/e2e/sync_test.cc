// ferry sync end to end: the destination becomes a mirror of the source, only what changed
// travels, and --delete stays inside the destination.
#include <sys/stat.h>

#include "e2e_util.h"

namespace ferry::test {
namespace {

class SyncTest : public ::testing::Test {
 protected:
  TempDir src_{"src"};
  TempDir root_{"root"};
  std::string dest() { return root_ / "mirror"; }

  void SetUp() override {
    ASSERT_EQ(mkdir((src_ / "shots").c_str(), 0755), 0);
    ASSERT_EQ(mkdir((src_ / "shots/sh010").c_str(), 0755), 0);
    for (int i = 0; i < 20; ++i)
      write_random_file(src_ / ("shots/sh010/plate." + std::to_string(1000 + i) + ".exr"), 20000 + i, i);
    write_text(src_ / "notes.txt", "v1");
    ASSERT_EQ(symlink("shots/sh010", (src_ / "current").c_str()), 0);
  }
  TransferReport sync(SyncOptions s = {}, std::vector<PathRule> filters = {}) {
    SendOptions o = quiet_options();
    o.filters = std::move(filters);
    return sync_tree(src_.path(), rx_->url("mirror"), o, s);
  }
  std::unique_ptr<ReceiverThread> rx_ = std::make_unique<ReceiverThread>(root_.path());
};

TEST_F(SyncTest, AddedChangedDeletedAndRenamedFilesAreMirrored) {
  ASSERT_TRUE(sync().status.is_ok());
  expect_same_tree(src_.path(), dest());
  write_text(src_ / "notes.txt", "v2, longer");
  write_text(src_ / "shots/sh010/new.exr", "new");
  ASSERT_EQ(unlink((src_ / "shots/sh010/plate.1003.exr").c_str()), 0);
  ASSERT_EQ(rename((src_ / "shots/sh010/plate.1004.exr").c_str(), (src_ / "shots/sh010/renamed.exr").c_str()), 0);
  SyncOptions s;
  s.delete_extraneous = true;
  TransferReport r = sync(s);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.sync.send, 2u);    // new.exr, renamed.exr
  EXPECT_EQ(r.sync.update, 1u + 1u);  // notes.txt, and sh010 whose mtime changed
  EXPECT_EQ(r.sync.remove, 2u);  // plate.1003, plate.1004
  EXPECT_EQ(r.sync.deleted, 2u);
  EXPECT_EQ(r.files_sent, 3u) << "only new and changed files travel";
  expect_same_tree(src_.path(), dest());
}

TEST_F(SyncTest, SecondSyncHasNothingToDo) {
  ASSERT_TRUE(sync().status.is_ok());
  TransferReport r = sync();
  ASSERT_TRUE(r.status.is_ok());
  EXPECT_FALSE(r.sync.changed());
  EXPECT_EQ(r.files_sent, 0u);
  EXPECT_EQ(r.sync.skip, 24u);
}

TEST_F(SyncTest, DryRunReportsThePlanAndChangesNothing) {
  ASSERT_TRUE(sync().status.is_ok());
  write_text(src_ / "notes.txt", "v2, longer");
  ASSERT_EQ(unlink((src_ / "shots/sh010/plate.1000.exr").c_str()), 0);
  std::map<std::string, TreeItem> before, after;
  list_tree(dest(), "", &before);
  SyncOptions s;
  s.delete_extraneous = true;
  s.dry_run = true;
  TransferReport r = sync(s);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.sync.update, 2u);
  EXPECT_EQ(r.sync.remove, 1u);
  EXPECT_EQ(r.sync.deleted, 0u);
  list_tree(dest(), "", &after);
  ASSERT_EQ(before.size(), after.size());
  for (const auto& [path, item] : before) {
    ASSERT_TRUE(after.count(path)) << path;
    EXPECT_EQ(after[path].content, item.content) << path;
    EXPECT_EQ(after[path].mtime_ns, item.mtime_ns) << path;
  }
  bool planned_delete = false;
  for (const auto& f : r.files) planned_delete |= f.action == "delete" && f.path == "shots/sh010/plate.1000.exr";
  EXPECT_TRUE(planned_delete);
}

TEST_F(SyncTest, DeleteRemovesASymlinkButNeverFollowsItOutOfTheDestination) {
  ASSERT_TRUE(sync().status.is_ok());
  TempDir outside("outside");
  write_text(outside / "precious.exr", "do not touch");
  ASSERT_EQ(mkdir((outside / "dir").c_str(), 0755), 0);
  write_text(outside / "dir/also.exr", "do not touch either");
  ASSERT_EQ(symlink(outside.path().c_str(), (dest() + "/escape").c_str()), 0);
  ASSERT_EQ(symlink((outside / "dir").c_str(), (dest() + "/shots/escape-dir").c_str()), 0);
  SyncOptions s;
  s.delete_extraneous = true;
  TransferReport r = sync(s);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  struct stat st {};
  EXPECT_NE(lstat((dest() + "/escape").c_str(), &st), 0) << "the link itself is deleted";
  EXPECT_NE(lstat((dest() + "/shots/escape-dir").c_str(), &st), 0);
  EXPECT_EQ(read_text(outside / "precious.exr"), "do not touch");
  EXPECT_EQ(read_text(outside / "dir/also.exr"), "do not touch either");
  expect_same_tree(src_.path(), dest());
}

TEST_F(SyncTest, ExcludedPathsAreNeitherSentNorDeleted) {
  write_text(src_ / "render.tmp", "scratch");
  ASSERT_TRUE(sync({}, {{false, "*.tmp"}}).status.is_ok());
  struct stat st {};
  EXPECT_NE(lstat((dest() + "/render.tmp").c_str(), &st), 0);
  write_text(dest() + "/local.tmp", "receiver's own scratch");
  SyncOptions s;
  s.delete_extraneous = true;
  TransferReport r = sync(s, {{false, "*.tmp"}});
  ASSERT_TRUE(r.status.is_ok());
  EXPECT_EQ(read_text(dest() + "/local.tmp"), "receiver's own scratch");
  EXPECT_EQ(r.sync.remove, 0u);
}

TEST_F(SyncTest, ChecksumFindsAChangeThatKeptSizeAndMtime) {
  ASSERT_TRUE(sync().status.is_ok());
  struct stat st {};
  ASSERT_EQ(stat((src_ / "notes.txt").c_str(), &st), 0);
  write_text(src_ / "notes.txt", "V1");  // same size
  struct timespec ts[2] = {{0, UTIME_OMIT}, st.st_mtim};
  ASSERT_EQ(utimensat(AT_FDCWD, (src_ / "notes.txt").c_str(), ts, 0), 0);
  TransferReport quick = sync();
  ASSERT_TRUE(quick.status.is_ok());
  EXPECT_EQ(quick.files_sent, 0u) << "size and mtime match: the default sync skips it";
  SyncOptions s;
  s.checksum = true;
  TransferReport r = sync(s);
  ASSERT_TRUE(r.status.is_ok());
  EXPECT_EQ(r.sync.update, 1u);
  EXPECT_EQ(read_text(dest() + "/notes.txt"), "V1");
}

TEST_F(SyncTest, ADirectoryReplacedByAFileIsMirrored) {
  ASSERT_TRUE(sync().status.is_ok());
  ASSERT_EQ(std::system(("rm -rf '" + src_ / "shots" + "'").c_str()), 0);
  write_text(src_ / "shots", "now a file");
  ASSERT_EQ(unlink((src_ / "current").c_str()), 0);
  SyncOptions s;
  s.delete_extraneous = true;
  TransferReport r = sync(s);
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  expect_same_tree(src_.path(), dest());
}

}  // namespace
}  // namespace ferry::test
