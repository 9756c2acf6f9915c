#include "io/safe_path.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace ferry {
namespace {

class SafePathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry_safe_path_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string at(const std::string& rel) const { return dir_ + "/" + rel; }
  bool is_dir(const std::string& p) const {
    struct stat st;
    return ::lstat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }
  std::string dir_;
};

void expect_refused(std::string_view path, const std::string& rule_word) {
  Status st = validate_relative_path(path);
  EXPECT_EQ(st.code(), Error::kRefused) << "path accepted: " << path.size() << " bytes";
  EXPECT_NE(st.message().find(rule_word), std::string::npos) << st.message();
}

TEST(ValidateRelativePath, AcceptsOrdinaryPaths) {
  for (const char* p : {"a", "a/b/c", "shots/a b.exr", "é✓/$(x);'\"*", ".hidden", "a/..b",
                        "...", "a/.b./c"}) {
    Status st = validate_relative_path(p);
    EXPECT_TRUE(st.is_ok()) << p << ": " << st.message();
  }
  EXPECT_TRUE(validate_relative_path(std::string(255, 'x')).is_ok());
  std::string max_path;
  while (max_path.size() + 101 <= kMaxPathBytes) max_path += std::string(100, 'p') + "/";
  max_path += std::string(kMaxPathBytes - max_path.size(), 'q');
  ASSERT_EQ(max_path.size(), kMaxPathBytes);
  EXPECT_TRUE(validate_relative_path(max_path).is_ok());
}

TEST(ValidateRelativePath, RejectsUnsafePaths) {
  expect_refused("", "empty");
  expect_refused("/etc/passwd", "absolute");
  expect_refused("..", "..");
  expect_refused("../x", "..");
  expect_refused("a/../b", "..");
  expect_refused("a/..", "..");
  expect_refused(".", "'.'");
  expect_refused("a/./b", "'.'");
  expect_refused("a//b", "empty component");
  expect_refused("a/", "empty component");
  expect_refused(std::string_view("a\0b", 3), "NUL");
  expect_refused("d/" + std::string(256, 'x'), "255");
  std::string long_path;
  while (long_path.size() <= kMaxPathBytes) long_path += "abcdefgh/";
  long_path += "z";
  expect_refused(long_path, "4096");
}

TEST(ValidateRelativePath, MessageQuotesPathWithoutControlBytes) {
  Status st = validate_relative_path(std::string_view("a/\x1b[2J/..\0", 10));
  ASSERT_EQ(st.code(), Error::kRefused);
  EXPECT_EQ(st.message().find('\x1b'), std::string::npos) << st.message();
  EXPECT_NE(st.message().find("a/\\x1b[2J"), std::string::npos) << st.message();
}

TEST(JoinAndSplit, Basics) {
  EXPECT_EQ(join_relative("", "a"), "a");
  EXPECT_EQ(join_relative("d", ""), "d");
  EXPECT_EQ(join_relative("d", "a/b"), "d/a/b");
  std::string parent, name;
  split_parent("a/b/c", &parent, &name);
  EXPECT_EQ(parent, "a/b");
  EXPECT_EQ(name, "c");
  split_parent("top", &parent, &name);
  EXPECT_EQ(parent, "");
  EXPECT_EQ(name, "top");
}

TEST_F(SafePathTest, RootOpenCreatesMissingParents) {
  std::string root_path = at("x/y/z");
  Result<RootDir> missing = RootDir::open(root_path, false);
  EXPECT_EQ(missing.status().code(), Error::kLocalIo);
  EXPECT_NE(missing.status().message().find(root_path), std::string::npos);
  Result<RootDir> root = RootDir::open(root_path, true);
  ASSERT_TRUE(root.is_ok()) << root.status().message();
  EXPECT_TRUE(is_dir(root_path));
  EXPECT_EQ(root->path(), root_path);
  // The root itself may be reached through a symlink (operator's choice).
  ASSERT_EQ(::symlink(root_path.c_str(), at("via").c_str()), 0);
  EXPECT_TRUE(RootDir::open(at("via"), false).is_ok());
}

TEST_F(SafePathTest, OpenDirCreatesNestedDirectories) {
  Result<RootDir> root = RootDir::open(dir_, false);
  ASSERT_TRUE(root.is_ok());
  Result<UniqueFd> missing = root->open_dir("a/b/c", false);
  EXPECT_FALSE(missing.is_ok());
  EXPECT_FALSE(is_dir(at("a")));
  Result<UniqueFd> fd = root->open_dir("a/b/c", true);
  ASSERT_TRUE(fd.is_ok()) << fd.status().message();
  EXPECT_TRUE(is_dir(at("a/b/c")));
  // The fd really is a/b/c: a file created through it lands there.
  int f = ::openat(fd->get(), "probe", O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  ASSERT_GE(f, 0);
  ::close(f);
  EXPECT_EQ(::access(at("a/b/c/probe").c_str(), F_OK), 0);
  // Opening again (existing) works, with and without create; "" is the root itself.
  EXPECT_TRUE(root->open_dir("a/b/c", true).is_ok());
  EXPECT_TRUE(root->open_dir("a/b", false).is_ok());
  EXPECT_TRUE(root->open_dir("", false).is_ok());
  EXPECT_EQ(root->open_dir("a/../b", true).status().code(), Error::kRefused);
}

TEST_F(SafePathTest, SymlinkOutsideRootIsRefusedAndNothingIsCreated) {
  std::string outside = at("outside");
  ASSERT_EQ(::mkdir(outside.c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(at("root").c_str(), 0755), 0);
  ASSERT_EQ(::symlink(outside.c_str(), at("root/evil").c_str()), 0);
  Result<RootDir> root = RootDir::open(at("root"), false);
  ASSERT_TRUE(root.is_ok());

  Result<UniqueFd> fd = root->open_dir("evil/x", true);
  ASSERT_FALSE(fd.is_ok());
  EXPECT_EQ(fd.status().code(), Error::kRefused);
  EXPECT_NE(fd.status().message().find("'evil/x'"), std::string::npos) << fd.status().message();
  EXPECT_NE(fd.status().message().find("at 'evil'"), std::string::npos) << fd.status().message();
  EXPECT_EQ(root->open_dir("evil", true).status().code(), Error::kRefused);
  EXPECT_EQ(root->open_dir("evil", false).status().code(), Error::kRefused);

  // Nothing appeared in the outside directory.
  DIR* d = ::opendir(outside.c_str());
  ASSERT_NE(d, nullptr);
  int count = 0;
  while (dirent* e = ::readdir(d)) {
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++count;
  }
  ::closedir(d);
  EXPECT_EQ(count, 0);

  // lstat_beneath sees the link itself but refuses to go through it.
  struct stat st;
  EXPECT_EQ(root->lstat_beneath("evil", &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(::mkdir(at("outside/secret").c_str(), 0755), 0);
  int err = root->lstat_beneath("evil/secret", &st);
  EXPECT_TRUE(err == ELOOP || err == ENOTDIR) << err;
}

TEST_F(SafePathTest, RegularFileInTheWayIsRefused) {
  int f = ::open(at("file").c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
  ASSERT_GE(f, 0);
  ::close(f);
  Result<RootDir> root = RootDir::open(dir_, false);
  ASSERT_TRUE(root.is_ok());
  Result<UniqueFd> fd = root->open_dir("file/sub", true);
  EXPECT_EQ(fd.status().code(), Error::kRefused);
  EXPECT_NE(fd.status().message().find("at 'file'"), std::string::npos) << fd.status().message();
  EXPECT_EQ(root->open_dir("file", true).status().code(), Error::kRefused);
  struct stat st;
  EXPECT_EQ(::lstat(at("file").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
}

TEST_F(SafePathTest, LstatBeneathReportsErrno) {
  ASSERT_EQ(::mkdir(at("d").c_str(), 0755), 0);
  ASSERT_EQ(::symlink("nowhere", at("d/link").c_str()), 0);
  Result<RootDir> root = RootDir::open(dir_, false);
  ASSERT_TRUE(root.is_ok());
  struct stat st;
  EXPECT_EQ(root->lstat_beneath("d", &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(root->lstat_beneath("d/link", &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(root->lstat_beneath("d/missing", &st), ENOENT);
  EXPECT_EQ(root->lstat_beneath("missing/x", &st), ENOENT);
  EXPECT_EQ(root->lstat_beneath("../x", &st), EINVAL);
}

}  // namespace
}  // namespace ferry
