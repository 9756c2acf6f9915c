#include "manifest/scanner.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

namespace ferry {
namespace {

class ScannerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry_scanner_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string at(const std::string& rel) const { return dir_ + "/" + rel; }
  void mkdir(const std::string& rel) { ASSERT_EQ(::mkdir(at(rel).c_str(), 0755), 0) << rel; }
  void write(const std::string& rel, const std::string& data) {
    int fd = ::open(at(rel).c_str(), O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << rel;
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  // dir_/src: a, sub/, sub/b, empty/, zero
  void make_tree() {
    mkdir("src");
    write("src/a", "aaa");
    mkdir("src/sub");
    write("src/sub/b", "bbbbb");
    mkdir("src/empty");
    write("src/zero", "");
  }
  Result<std::vector<FileEntry>> scan(const std::vector<std::string>& srcs, bool follow = false) {
    warnings_.clear();
    ScanOptions options;
    options.follow_symlinks = follow;
    return scan_sources(srcs, options, [this](const std::string& m) { warnings_.push_back(m); });
  }
  static std::vector<std::string> paths(const std::vector<FileEntry>& entries) {
    std::vector<std::string> out;
    for (const FileEntry& e : entries) out.push_back(e.path);
    return out;
  }
  static const FileEntry* find(const std::vector<FileEntry>& entries, const std::string& path) {
    for (const FileEntry& e : entries) {
      if (e.path == path) return &e;
    }
    return nullptr;
  }

  std::string dir_;
  std::vector<std::string> warnings_;
};

using Paths = std::vector<std::string>;

TEST_F(ScannerTest, DirectoryWithoutSlashKeepsItsName) {
  make_tree();
  auto r = scan({at("src")});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(paths(*r), (Paths{"src", "src/a", "src/empty", "src/sub", "src/sub/b", "src/zero"}));
  EXPECT_TRUE(warnings_.empty());
  const FileEntry* b = find(*r, "src/sub/b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->type, FileType::kRegular);
  EXPECT_EQ(b->size, 5u);
  EXPECT_EQ(b->source_path, at("src/sub/b"));
  const FileEntry* zero = find(*r, "src/zero");
  ASSERT_NE(zero, nullptr);
  EXPECT_EQ(zero->type, FileType::kRegular);
  EXPECT_EQ(zero->size, 0u);
  const FileEntry* empty = find(*r, "src/empty");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->type, FileType::kDirectory);
  EXPECT_EQ(empty->size, 0u);
}

TEST_F(ScannerTest, TrailingSlashMeansContents) {
  make_tree();
  auto r = scan({at("src/")});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(paths(*r), (Paths{"a", "empty", "sub", "sub/b", "zero"}));
  EXPECT_EQ(find(*r, "sub/b")->source_path, at("src/sub/b"));
  // An empty directory's contents are nothing at all.
  auto e = scan({at("src/empty/")});
  ASSERT_TRUE(e.is_ok());
  EXPECT_TRUE(e->empty());
}

TEST_F(ScannerTest, SingleFileUsesBaseName) {
  make_tree();
  auto r = scan({at("src/sub/b")});
  ASSERT_TRUE(r.is_ok());
  ASSERT_EQ(paths(*r), Paths{"b"});
  EXPECT_EQ((*r)[0].size, 5u);
}

TEST_F(ScannerTest, PreOrderSortedBytewise) {
  mkdir("t");
  for (const char* n : {"b", "B", "a.txt", "a", "\xc3\xa9", "_"}) write(std::string("t/") + n, "");
  mkdir("t/a-dir");
  write("t/a-dir/z", "");
  auto r = scan({at("t/")});
  ASSERT_TRUE(r.is_ok());
  // Bytewise: 'B' (0x42) < '_' (0x5f) < 'a' < ... < 0xc3 (unsigned, not locale order).
  EXPECT_EQ(paths(*r), (Paths{"B", "_", "a", "a-dir", "a-dir/z", "a.txt", "b", "\xc3\xa9"}));
}

TEST_F(ScannerTest, SymlinksKeptAsLinksByDefault) {
  make_tree();
  std::string long_target(3000, 'x');
  ASSERT_EQ(::symlink("sub", at("src/dirlink").c_str()), 0);
  ASSERT_EQ(::symlink("a", at("src/filelink").c_str()), 0);
  ASSERT_EQ(::symlink(long_target.c_str(), at("src/long").c_str()), 0);
  auto r = scan({at("src/")});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(paths(*r),
            (Paths{"a", "dirlink", "empty", "filelink", "long", "sub", "sub/b", "zero"}));
  const FileEntry* dl = find(*r, "dirlink");
  ASSERT_NE(dl, nullptr);
  EXPECT_EQ(dl->type, FileType::kSymlink);
  EXPECT_EQ(dl->link_target, "sub");
  EXPECT_EQ(dl->size, 0u);
  EXPECT_EQ(find(*r, "long")->link_target, long_target);
  // A symlink named as SRC is a symlink too.
  auto top = scan({at("src/filelink")});
  ASSERT_TRUE(top.is_ok());
  ASSERT_EQ(top->size(), 1u);
  EXPECT_EQ((*top)[0].type, FileType::kSymlink);
  EXPECT_EQ((*top)[0].link_target, "a");
}

TEST_F(ScannerTest, FollowSymlinksOptionAndLoops) {
  make_tree();
  ASSERT_EQ(::symlink("sub", at("src/dirlink").c_str()), 0);
  ASSERT_EQ(::symlink("a", at("src/filelink").c_str()), 0);
  ASSERT_EQ(::symlink("..", at("src/sub/up").c_str()), 0);  // loops back to src
  auto r = scan({at("src")}, /*follow=*/true);
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  // The loop is reached twice (via sub and via dirlink), skipped with a warning each time.
  EXPECT_EQ(paths(*r), (Paths{"src", "src/a", "src/dirlink", "src/dirlink/b", "src/empty",
                              "src/filelink", "src/sub", "src/sub/b", "src/zero"}));
  ASSERT_EQ(warnings_.size(), 2u);
  EXPECT_NE(warnings_[0].find("'src/dirlink/up'"), std::string::npos) << warnings_[0];
  EXPECT_NE(warnings_[0].find("loop"), std::string::npos) << warnings_[0];
  EXPECT_NE(warnings_[1].find("'src/sub/up'"), std::string::npos) << warnings_[1];
  const FileEntry* dl = find(*r, "src/dirlink");
  EXPECT_EQ(dl->type, FileType::kDirectory);
  EXPECT_EQ(find(*r, "src/dirlink/b")->source_path, at("src/dirlink/b"));
  const FileEntry* fl = find(*r, "src/filelink");
  EXPECT_EQ(fl->type, FileType::kRegular);
  EXPECT_EQ(fl->size, 3u);
  EXPECT_TRUE(fl->link_target.empty());
  // A followed symlink given as SRC takes the link's name, the target's type. Only
  // directories on the current path count as loops: "up" leads to src, which is not one of
  // them here, but src's "sub" and "dirlink" then lead back to sub, which is.
  auto top = scan({at("src/dirlink")}, /*follow=*/true);
  ASSERT_TRUE(top.is_ok());
  EXPECT_EQ(paths(*top), (Paths{"dirlink", "dirlink/b", "dirlink/up", "dirlink/up/a",
                                "dirlink/up/empty", "dirlink/up/filelink", "dirlink/up/zero"}));
  ASSERT_EQ(warnings_.size(), 2u);
  EXPECT_NE(warnings_[0].find("'dirlink/up/dirlink'"), std::string::npos) << warnings_[0];
  EXPECT_NE(warnings_[1].find("'dirlink/up/sub'"), std::string::npos) << warnings_[1];
  // A dangling link cannot be followed: warned about and skipped.
  ASSERT_EQ(::symlink("nowhere", at("src/empty/dangling").c_str()), 0);
  auto d = scan({at("src/empty/")}, /*follow=*/true);
  ASSERT_TRUE(d.is_ok());
  EXPECT_TRUE(d->empty());
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_NE(warnings_[0].find("'dangling'"), std::string::npos) << warnings_[0];
}

TEST_F(ScannerTest, FifoSkippedWithWarning) {
  make_tree();
  ASSERT_EQ(::mkfifo(at("src/sub/p").c_str(), 0644), 0);
  auto r = scan({at("src")});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(find(*r, "src/sub/p"), nullptr);
  EXPECT_NE(find(*r, "src/sub/b"), nullptr);
  ASSERT_EQ(warnings_.size(), 1u);
  EXPECT_EQ(warnings_[0], "skipping fifo 'src/sub/p': not a regular file, directory or symlink");
  // A fifo given directly as SRC is skipped the same way, not an error.
  auto top = scan({at("src/sub/p")});
  ASSERT_TRUE(top.is_ok());
  EXPECT_TRUE(top->empty());
  EXPECT_EQ(warnings_.size(), 1u);
}

TEST_F(ScannerTest, AwkwardNamesAreRawBytes) {
  mkdir("n");
  const Paths names{"$(x);'\"*", "a b", "\xc3\xa9\xe2\x9c\x93"};  // "é✓"
  for (const std::string& n : names) write("n/" + n, n);
  mkdir("n/a b dir");
  write("n/a b dir/\xc3\xa9\xe2\x9c\x93", "");
  auto r = scan({at("n")});
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(paths(*r), (Paths{"n", "n/$(x);'\"*", "n/a b", "n/a b dir",
                              "n/a b dir/\xc3\xa9\xe2\x9c\x93", "n/\xc3\xa9\xe2\x9c\x93"}));
  for (const std::string& n : names) {
    const FileEntry* e = find(*r, "n/" + n);
    ASSERT_NE(e, nullptr) << n;
    EXPECT_EQ(e->size, n.size()) << n;
    EXPECT_EQ(e->source_path, at("n/" + n));
  }
}

TEST_F(ScannerTest, DuplicatePathFromTwoSourcesIsUsageError) {
  mkdir("one");
  mkdir("two");
  write("one/x", "1");
  write("two/x", "2");
  auto r = scan({at("one/x"), at("two/x")});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Error::kUsage);
  EXPECT_NE(r.status().message().find("'x'"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find(at("two/x")), std::string::npos) << r.status().message();
  // A directory's contents colliding with a file named on its own.
  auto c = scan({at("one/"), at("two/x")});
  EXPECT_EQ(c.status().code(), Error::kUsage);
  // Distinct sources are fine and keep argument order.
  auto ok = scan({at("two/x"), at("one")});
  ASSERT_TRUE(ok.is_ok()) << ok.status().message();
  EXPECT_EQ(paths(*ok), (Paths{"x", "one", "one/x"}));
}

TEST_F(ScannerTest, MissingSourceIsLocalIoNamingIt) {
  std::string missing = at("does not exist");
  auto r = scan({missing});
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Error::kLocalIo);
  EXPECT_EQ(r.status().message(), "scan '" + missing + "': No such file or directory");
  write("file", "");
  auto f = scan({at("file/")});  // a trailing slash on a file
  EXPECT_EQ(f.status().code(), Error::kLocalIo);
}

TEST_F(ScannerTest, ModeAndMtimeCaptured) {
  make_tree();
  ASSERT_EQ(::chmod(at("src/a").c_str(), 04751), 0);
  ASSERT_EQ(::chmod(at("src/sub").c_str(), 0700), 0);
  const timespec times[2] = {{0, UTIME_OMIT}, {1600000000, 123456789}};
  ASSERT_EQ(::utimensat(AT_FDCWD, at("src/a").c_str(), times, 0), 0);
  const timespec dtimes[2] = {{0, UTIME_OMIT}, {1500000000, 987654321}};
  ASSERT_EQ(::utimensat(AT_FDCWD, at("src/sub").c_str(), dtimes, 0), 0);
  auto r = scan({at("src/")});
  ASSERT_TRUE(r.is_ok());
  const FileEntry* a = find(*r, "a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->mode, 04751u);
  EXPECT_EQ(a->mtime_ns, 1600000000123456789);
  const FileEntry* sub = find(*r, "sub");
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(sub->mode, 0700u);
  EXPECT_EQ(sub->mtime_ns, 1500000000987654321);
}

TEST(FileTypeTest, ToString) {
  EXPECT_STREQ(to_string(FileType::kRegular), "file");
  EXPECT_STREQ(to_string(FileType::kDirectory), "directory");
  EXPECT_STREQ(to_string(FileType::kSymlink), "symlink");
}

}  // namespace
}  // namespace ferry
