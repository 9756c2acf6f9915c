#include "io/staged_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/source_file.h"

namespace ferry {
namespace {

class StagedFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry_staged_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    Result<RootDir> root = RootDir::open(dir_, false);
    ASSERT_TRUE(root.is_ok()) << root.status().message();
    root_ = std::make_unique<RootDir>(std::move(root.value()));
  }
  void TearDown() override {
    root_.reset();
    if (mounted_) ::umount2(mount_point_.c_str(), MNT_DETACH);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string at(const std::string& rel) const { return dir_ + "/" + rel; }
  int lstat_errno(const std::string& rel, struct stat* st) const {
    return ::lstat(at(rel).c_str(), st) == 0 ? 0 : errno;
  }
  // Every name in `rel_dir` (hidden ones included), except "." and "..".
  std::vector<std::string> list(const std::string& rel_dir) const {
    std::vector<std::string> names;
    DIR* d = ::opendir(rel_dir.empty() ? dir_.c_str() : at(rel_dir).c_str());
    if (d == nullptr) return {"<opendir failed>"};
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != "..") names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }
  std::string read_all(const std::string& rel) const {
    int fd = ::open(at(rel).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return "<open failed>";
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return out;
  }
  void write_file(const std::string& rel, const std::string& data) {
    int fd = ::open(at(rel).c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  static Status put(StagedFile& f, uint64_t off, const std::string& s) {
    return f.write_at(off, reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }

  std::string dir_;
  std::unique_ptr<RootDir> root_;
  std::string mount_point_;
  bool mounted_ = false;
};

constexpr int64_t kMtime = 1700000000123456789;  // nanoseconds, not a multiple of 1000

TEST_F(StagedFileTest, FinalNameAppearsOnlyAtCommit) {
  auto f = StagedFile::create(*root_, "shots/a b.exr", 10, "00ff");
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  struct stat st;
  EXPECT_EQ(lstat_errno("shots/a b.exr", &st), ENOENT);
  EXPECT_EQ(list("shots"), std::vector<std::string>{".a b.exr.ferry-00ff.part"});
  // Out of order: tail first, then head.
  ASSERT_TRUE(put(**f, 5, "56789").is_ok());
  EXPECT_EQ(lstat_errno("shots/a b.exr", &st), ENOENT);
  ASSERT_TRUE(put(**f, 0, "01234").is_ok());
  uint8_t back[10];
  ASSERT_TRUE((*f)->read_at(0, back, 10).is_ok());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(back), 10), "0123456789");
  EXPECT_EQ((*f)->read_at(5, back, 10).code(), Error::kInternal);
  EXPECT_EQ(lstat_errno("shots/a b.exr", &st), ENOENT);

  ASSERT_TRUE((*f)->commit(0640, kMtime).is_ok());
  ASSERT_EQ(lstat_errno("shots/a b.exr", &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  EXPECT_EQ(static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, kMtime);
  EXPECT_EQ(read_all("shots/a b.exr"), "0123456789");
  f.value().reset();  // destructor after commit must not remove anything
  EXPECT_EQ(list("shots"), std::vector<std::string>{"a b.exr"});
}

TEST_F(StagedFileTest, CommitReplacesExistingFile) {
  write_file("f", "old contents, longer");
  auto f = StagedFile::create(*root_, "f", 3, "1");
  ASSERT_TRUE(f.is_ok());
  ASSERT_TRUE(put(**f, 0, "new").is_ok());
  EXPECT_EQ(read_all("f"), "old contents, longer");
  ASSERT_TRUE((*f)->commit(0600, kMtime).is_ok());
  EXPECT_EQ(read_all("f"), "new");
  EXPECT_EQ(list(""), std::vector<std::string>{"f"});
}

TEST_F(StagedFileTest, CommitReplacesSymlinkNotItsTarget) {
  write_file("target", "keep me");
  ASSERT_EQ(::symlink("target", at("link").c_str()), 0);
  auto f = StagedFile::create(*root_, "link", 4, "2");
  ASSERT_TRUE(f.is_ok());
  ASSERT_TRUE(put(**f, 0, "data").is_ok());
  ASSERT_TRUE((*f)->commit(0644, kMtime).is_ok());
  struct stat st;
  ASSERT_EQ(lstat_errno("link", &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(read_all("link"), "data");
  EXPECT_EQ(read_all("target"), "keep me");
}

TEST_F(StagedFileTest, DirectoryAtFinalNameIsRefused) {
  ASSERT_EQ(::mkdir(at("d").c_str(), 0755), 0);
  auto f = StagedFile::create(*root_, "d", 1, "3");
  ASSERT_TRUE(f.is_ok());
  ASSERT_TRUE(put(**f, 0, "x").is_ok());
  Status st = (*f)->commit(0644, kMtime);
  EXPECT_EQ(st.code(), Error::kRefused);
  EXPECT_EQ(st.message(), "'d' exists on the receiver as a directory");
  f.value().reset();
  EXPECT_EQ(list(""), std::vector<std::string>{"d"});
  EXPECT_TRUE(list("d").empty());
}

TEST_F(StagedFileTest, DestructorWithoutCommitLeavesNothing) {
  {
    auto f = StagedFile::create(*root_, "sub/x", 100, "4");
    ASSERT_TRUE(f.is_ok());
    ASSERT_TRUE(put(**f, 0, "partial").is_ok());
    EXPECT_EQ(list("sub").size(), 1u);
  }
  EXPECT_TRUE(list("sub").empty()) << list("sub")[0];
  auto g = StagedFile::create(*root_, "sub/y", 0, "5");
  ASSERT_TRUE(g.is_ok());
  (*g)->abort();
  (*g)->abort();  // idempotent
  EXPECT_TRUE(list("sub").empty());
  EXPECT_EQ((*g)->commit(0644, kMtime).code(), Error::kInternal);
}

TEST_F(StagedFileTest, LongNameTempIsTruncatedToFit) {
  std::string name(255, 'n');
  auto f = StagedFile::create(*root_, name, 1, "abcdef0123456789");
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  std::vector<std::string> names = list("");
  ASSERT_EQ(names.size(), 1u);
  EXPECT_EQ(names[0].size(), 255u);
  EXPECT_EQ(names[0].substr(0, 2), ".n");
  EXPECT_EQ(names[0].substr(names[0].size() - 29), "n.ferry-abcdef0123456789.part");
  ASSERT_TRUE(put(**f, 0, "z").is_ok());
  ASSERT_TRUE((*f)->commit(0644, kMtime).is_ok());
  EXPECT_EQ(list(""), std::vector<std::string>{name});
}

TEST_F(StagedFileTest, SymlinkInParentIsRefused) {
  ASSERT_EQ(::mkdir(at("out").c_str(), 0755), 0);
  ASSERT_EQ(::symlink(at("out").c_str(), at("evil").c_str()), 0);
  auto f = StagedFile::create(*root_, "evil/f", 1, "6");
  ASSERT_FALSE(f.is_ok());
  EXPECT_EQ(f.status().code(), Error::kRefused);
  EXPECT_NE(f.status().message().find("'evil/f'"), std::string::npos) << f.status().message();
  EXPECT_TRUE(list("out").empty());
}

TEST_F(StagedFileTest, MakeDirectoryAndAttributes) {
  ASSERT_TRUE(make_directory(*root_, "a/b").is_ok());
  ASSERT_TRUE(make_directory(*root_, "a/b").is_ok());  // existing is fine
  ASSERT_TRUE(set_directory_attributes(*root_, "a/b", 0710, kMtime).is_ok());
  struct stat st;
  ASSERT_EQ(lstat_errno("a/b", &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0710u);
  EXPECT_EQ(static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, kMtime);
  EXPECT_FALSE(set_directory_attributes(*root_, "a/missing", 0755, kMtime).is_ok());
  write_file("plain", "x");
  EXPECT_EQ(make_directory(*root_, "plain").code(), Error::kRefused);
}

TEST_F(StagedFileTest, CreateSymlinkIsAtomicAndNotFollowed) {
  write_file("victim", "untouched");
  ASSERT_TRUE(create_symlink(*root_, "l/link", "../victim", kMtime).is_ok());
  struct stat st;
  ASSERT_EQ(lstat_errno("l/link", &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec, kMtime);
  char buf[64];
  ssize_t n = ::readlink(at("l/link").c_str(), buf, sizeof buf);
  ASSERT_EQ(n, 9);
  EXPECT_EQ(std::string(buf, 9), "../victim");
  // Replacing it (and a regular file) leaves the old target alone and no temp behind.
  ASSERT_TRUE(create_symlink(*root_, "l/link", "/elsewhere", kMtime).is_ok());
  n = ::readlink(at("l/link").c_str(), buf, sizeof buf);
  EXPECT_EQ(std::string(buf, static_cast<size_t>(std::max<ssize_t>(n, 0))), "/elsewhere");
  EXPECT_EQ(read_all("victim"), "untouched");
  EXPECT_EQ(list("l"), std::vector<std::string>{"link"});
  ASSERT_EQ(::mkdir(at("l/dir").c_str(), 0755), 0);
  Status st2 = create_symlink(*root_, "l/dir", "x", kMtime);
  EXPECT_EQ(st2.code(), Error::kRefused);
  EXPECT_EQ(list("l"), (std::vector<std::string>{"dir", "link"}));
}

TEST_F(StagedFileTest, SourceFileReadsAndDetectsShrink) {
  write_file("src", "hello world");
  auto s = SourceFile::open(at("src"), 11);
  ASSERT_TRUE(s.is_ok()) << s.status().message();
  EXPECT_EQ((*s)->size(), 11u);
  uint8_t buf[11];
  ASSERT_TRUE((*s)->read_at(6, buf, 5).is_ok());
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 5), "world");
  ASSERT_EQ(::truncate(at("src").c_str(), 4), 0);
  Status st = (*s)->read_at(0, buf, 11);
  EXPECT_EQ(st.code(), Error::kLocalIo);
  EXPECT_NE(st.message().find("shorter than scanned"), std::string::npos) << st.message();
  auto missing = SourceFile::open(at("nope"), 1);
  EXPECT_EQ(missing.status().code(), Error::kLocalIo);
  EXPECT_NE(missing.status().message().find("nope"), std::string::npos);
}

class StagedFileEnospcTest : public StagedFileTest {
 protected:
  void SetUp() override {
    StagedFileTest::SetUp();
    mount_point_ = at("small");
    ASSERT_EQ(::mkdir(mount_point_.c_str(), 0755), 0);
    if (::mount("tmpfs", mount_point_.c_str(), "tmpfs", 0, "size=1m") != 0) {
      GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
    }
    mounted_ = true;
    Result<RootDir> root = RootDir::open(mount_point_, false);
    ASSERT_TRUE(root.is_ok());
    small_ = std::make_unique<RootDir>(std::move(root.value()));
  }
  void TearDown() override {
    small_.reset();
    StagedFileTest::TearDown();
  }
  std::vector<std::string> small_names() const { return list("small/shots"); }
  std::unique_ptr<RootDir> small_;
};

void expect_enospc(const Status& st) {
  EXPECT_EQ(st.code(), Error::kLocalIo);
  EXPECT_NE(st.message().find("shots/big file.exr"), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("No space left on device"), std::string::npos) << st.message();
}

TEST_F(StagedFileEnospcTest, WriteFailsNamingTheFile) {
  // Declared size 0: no preallocation, so the pwrite itself runs out of space.
  auto f = StagedFile::create(*small_, "shots/big file.exr", 0, "7");
  ASSERT_TRUE(f.is_ok()) << f.status().message();
  std::string chunk(256 * 1024, 'x');
  Status st;
  for (uint64_t off = 0; off < 2 * 1024 * 1024 && st.is_ok(); off += chunk.size()) st = put(**f, off, chunk);
  expect_enospc(st);
  f.value().reset();
  EXPECT_TRUE(small_names().empty());
}

TEST_F(StagedFileEnospcTest, PreallocationFailsNamingTheFile) {
  auto f = StagedFile::create(*small_, "shots/big file.exr", 2 * 1024 * 1024, "8");
  ASSERT_FALSE(f.is_ok());
  expect_enospc(f.status());
  EXPECT_TRUE(small_names().empty());
}

}  // namespace
}  // namespace ferry
