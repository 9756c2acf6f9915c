// Tests for src/manifest/manifest_ops.{h,cc}: create_manifest and verify_tree on real trees.
#include "manifest/manifest_ops.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "codec/hash.h"
#include "manifest/manifest_file.h"

namespace ferry {
namespace {

using Paths = std::vector<std::string>;

class ManifestOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry_manifest_ops_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    tree_ = base_ + "/tree";
    manifest_ = base_ + "/tree.manifest";
    ASSERT_EQ(::mkdir(tree_.c_str(), 0755), 0);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }
  std::string at(const std::string& rel) const { return tree_ + "/" + rel; }
  void mkdir(const std::string& rel) { ASSERT_EQ(::mkdir(at(rel).c_str(), 0755), 0) << rel; }
  void write(const std::string& rel, const std::string& data) {
    ::unlink(at(rel).c_str());
    int fd = ::open(at(rel).c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << rel;
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  void symlink(const std::string& target, const std::string& rel) {
    ASSERT_EQ(::symlink(target.c_str(), at(rel).c_str()), 0) << rel;
  }
  static bool exists(const std::string& path) {
    struct stat st;
    return ::lstat(path.c_str(), &st) == 0;
  }
  // Sets the mtime of `rel` (not following a symlink) to a fixed value.
  void set_mtime(const std::string& rel, int64_t sec) {
    struct timespec ts[2] = {{sec, 0}, {sec, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, at(rel).c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << rel;
  }

  // tree/: a.exr (3 bytes), big.bin (3 MiB + 17), empty, "name with space",
  //        shots/ (shots/s1.exr, shots/deep/x.dpx), link -> a.exr
  void make_tree() {
    write("a.exr", "abc");
    std::string big((3 << 20) + 17, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 131) >> 7);
    big_ = big;
    write("big.bin", big);
    write("empty", "");
    write("name with space", "spaced out");
    mkdir("shots");
    write("shots/s1.exr", "s1-data");
    mkdir("shots/deep");
    write("shots/deep/x.dpx", "xx");
    symlink("a.exr", "link");
  }
  static constexpr uint64_t kEntries = 9;       // 6 files, 2 directories, 1 symlink
  static constexpr uint64_t kRegularFiles = 6;

  Status create() { return create_manifest(tree_, manifest_, nullptr); }
  VerifyReport verify() {
    auto r = verify_tree(tree_, manifest_, nullptr);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    return r.is_ok() ? *r : VerifyReport{};
  }
  std::vector<ManifestEntry> read_manifest() {
    std::vector<ManifestEntry> out;
    auto r = ManifestReader::open(manifest_);
    EXPECT_TRUE(r.is_ok()) << r.status().message();
    if (!r) return out;
    ManifestEntry m;
    while (true) {
      auto more = r->next(&m);
      EXPECT_TRUE(more.is_ok()) << more.status().message();
      if (!more || !*more) break;
      out.push_back(m);
    }
    return out;
  }

  std::string base_;
  std::string tree_;
  std::string manifest_;
  std::string big_;
};

TEST_F(ManifestOpsTest, CreateRecordsEveryEntryWithItsHash) {
  make_tree();
  uint64_t calls = 0;
  uint64_t last_files = 0;
  uint64_t last_bytes = 0;
  Status st = create_manifest(tree_, manifest_, [&](uint64_t files, uint64_t bytes) {
    ++calls;
    last_files = files;
    last_bytes = bytes;
  });
  ASSERT_TRUE(st.is_ok()) << st.message();
  EXPECT_FALSE(exists(manifest_ + ".tmp"));
  EXPECT_GE(calls, 1u);
  EXPECT_EQ(last_files, kRegularFiles);
  EXPECT_EQ(last_bytes, 3u + big_.size() + 0 + 10 + 7 + 2);

  auto r = ManifestReader::open(manifest_);
  ASSERT_TRUE(r.is_ok());
  EXPECT_EQ(r->root(), tree_);
  std::vector<ManifestEntry> entries = read_manifest();
  Paths paths;
  for (const auto& m : entries) paths.push_back(m.entry.path);
  EXPECT_EQ(paths, (Paths{"a.exr", "big.bin", "empty", "link", "name with space", "shots",
                          "shots/deep", "shots/deep/x.dpx", "shots/s1.exr"}));
  ASSERT_EQ(entries.size(), kEntries);
  const ManifestEntry& big = entries[1];
  EXPECT_EQ(big.entry.size, big_.size());
  EXPECT_TRUE(big.has_hash);
  EXPECT_EQ(big.hash, xxh3_128(big_.data(), big_.size()));
  EXPECT_EQ(entries[0].hash, xxh3_128("abc", 3));
  EXPECT_EQ(entries[2].hash, xxh3_128("", 0));
  EXPECT_EQ(entries[2].entry.size, 0u);
  EXPECT_EQ(entries[3].entry.type, FileType::kSymlink);
  EXPECT_EQ(entries[3].entry.link_target, "a.exr");
  EXPECT_FALSE(entries[3].has_hash);
  EXPECT_EQ(entries[5].entry.type, FileType::kDirectory);
  EXPECT_FALSE(entries[5].has_hash);
}

TEST_F(ManifestOpsTest, VerifyOfAnUnchangedTreeMatchesEverything) {
  make_tree();
  ASSERT_TRUE(create().is_ok());
  uint64_t last_files = 0;
  auto r = verify_tree(tree_, manifest_, [&](uint64_t files, uint64_t) { last_files = files; });
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->matched, kEntries);
  EXPECT_TRUE(r->missing.empty());
  EXPECT_TRUE(r->extra.empty());
  EXPECT_TRUE(r->mismatched.empty());
  EXPECT_TRUE(r->attr_differences.empty());
  EXPECT_TRUE(r->clean());
  EXPECT_EQ(last_files, kRegularFiles);  // every regular file was hashed
}

TEST_F(ManifestOpsTest, FlippingOneByteMismatchesExactlyThatFile) {
  make_tree();
  ASSERT_TRUE(create().is_ok());
  // Same size, one byte different, deep inside the 3 MiB file (past the first buffer).
  int fd = ::open(at("big.bin").c_str(), O_WRONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  char c = static_cast<char>(big_[(2 << 20) + 5] ^ 0x01);
  ASSERT_EQ(::pwrite(fd, &c, 1, (2 << 20) + 5), 1);
  ::close(fd);
  VerifyReport r = verify();
  EXPECT_EQ(r.mismatched, (Paths{"big.bin"}));
  EXPECT_EQ(r.matched, kEntries - 1);
  EXPECT_TRUE(r.missing.empty());
  EXPECT_TRUE(r.extra.empty());
  EXPECT_TRUE(r.attr_differences.empty());
  EXPECT_FALSE(r.clean());
}

TEST_F(ManifestOpsTest, DeletedFileIsMissing) {
  make_tree();
  ASSERT_TRUE(create().is_ok());
  ASSERT_EQ(::unlink(at("shots/s1.exr").c_str()), 0);
  VerifyReport r = verify();
  EXPECT_EQ(r.missing, (Paths{"shots/s1.exr"}));
  EXPECT_EQ(r.matched, kEntries - 1);
  EXPECT_TRUE(r.extra.empty());
  EXPECT_TRUE(r.mismatched.empty());
}

TEST_F(ManifestOpsTest, AddedFileIsExtra) {
  make_tree();
  set_mtime("shots/deep", 1600000000);
  ASSERT_TRUE(create().is_ok());
  write("shots/deep/new.exr", "new");
  set_mtime("shots/deep", 1600000000);  // so the directory's attributes still match
  VerifyReport r = verify();
  EXPECT_EQ(r.extra, (Paths{"shots/deep/new.exr"}));
  EXPECT_EQ(r.matched, kEntries);
  EXPECT_TRUE(r.missing.empty());
  EXPECT_TRUE(r.mismatched.empty());
  EXPECT_TRUE(r.attr_differences.empty());
}

TEST_F(ManifestOpsTest, ChmodAndTouchAreAttributeDifferencesOnly) {
  make_tree();
  ASSERT_TRUE(create().is_ok());
  ASSERT_EQ(::chmod(at("a.exr").c_str(), 0600), 0);
  set_mtime("shots/s1.exr", 1234567890);
  VerifyReport r = verify();
  EXPECT_EQ(r.attr_differences, (Paths{"a.exr", "shots/s1.exr"}));
  EXPECT_EQ(r.matched, kEntries);
  EXPECT_TRUE(r.mismatched.empty());
  EXPECT_TRUE(r.missing.empty());
  EXPECT_TRUE(r.extra.empty());
  EXPECT_TRUE(r.clean());
}

TEST_F(ManifestOpsTest, TypeSizeAndLinkTargetChangesAreMismatches) {
  make_tree();
  ASSERT_TRUE(create().is_ok());
  ASSERT_EQ(::unlink(at("link").c_str()), 0);
  symlink("big.bin", "link");                 // different target
  write("name with space", "spaced out!");  // different size
  ASSERT_EQ(::unlink(at("empty").c_str()), 0);
  mkdir("empty");  // file -> directory
  VerifyReport r = verify();
  EXPECT_EQ(r.mismatched, (Paths{"empty", "link", "name with space"}));
  EXPECT_EQ(r.matched, kEntries - 3);
  EXPECT_TRUE(r.missing.empty());
  EXPECT_TRUE(r.extra.empty());
}

TEST_F(ManifestOpsTest, MissingDirectoryListsItsWholeSubtreeInOrder) {
  make_tree();
  ASSERT_TRUE(create().is_ok());
  std::filesystem::remove_all(at("shots"));
  write("zzz", "late");
  VerifyReport r = verify();
  EXPECT_EQ(r.missing, (Paths{"shots", "shots/deep", "shots/deep/x.dpx", "shots/s1.exr"}));
  EXPECT_EQ(r.extra, (Paths{"zzz"}));
  EXPECT_EQ(r.matched, kEntries - 4);
}

TEST_F(ManifestOpsTest, ManifestInsideTheTreeIsLeftOut) {
  make_tree();
  std::string inside = at("MANIFEST");
  Status st = create_manifest(tree_ + "/", inside, nullptr);
  ASSERT_TRUE(st.is_ok()) << st.message();
  manifest_ = inside;
  std::vector<ManifestEntry> entries = read_manifest();
  EXPECT_EQ(entries.size(), kEntries);
  for (const auto& m : entries) EXPECT_NE(m.entry.path, "MANIFEST");
  VerifyReport r = verify();
  EXPECT_EQ(r.matched, kEntries);
  EXPECT_TRUE(r.extra.empty()) << r.extra.front();
  // Re-creating it in place does not record the old one either.
  ASSERT_TRUE(create_manifest(tree_, inside, nullptr).is_ok());
  EXPECT_EQ(read_manifest().size(), kEntries);
}

TEST_F(ManifestOpsTest, RootLineIsAbsoluteEvenForARelativeDirectory) {
  make_tree();
  char cwd[4096];
  ASSERT_NE(::getcwd(cwd, sizeof cwd), nullptr);
  ASSERT_EQ(::chdir(base_.c_str()), 0);
  Status st = create_manifest("./tree/", "rel.manifest", nullptr);
  ASSERT_EQ(::chdir(cwd), 0);
  ASSERT_TRUE(st.is_ok()) << st.message();
  auto r = ManifestReader::open(base_ + "/rel.manifest");
  ASSERT_TRUE(r.is_ok()) << r.status().message();
  EXPECT_EQ(r->root(), tree_);
}

TEST_F(ManifestOpsTest, FailuresLeaveNoManifestBehind) {
  Status st = create_manifest(base_ + "/absent", manifest_, nullptr);
  EXPECT_EQ(st.code(), Error::kLocalIo);
  EXPECT_NE(st.message().find("absent"), std::string::npos);
  EXPECT_FALSE(exists(manifest_));
  EXPECT_FALSE(exists(manifest_ + ".tmp"));

  make_tree();
  if (::geteuid() != 0) {  // root reads anything
    ASSERT_EQ(::chmod(at("shots/s1.exr").c_str(), 0), 0);
    st = create();
    EXPECT_EQ(st.code(), Error::kLocalIo);
    EXPECT_NE(st.message().find("shots/s1.exr"), std::string::npos) << st.message();
    EXPECT_FALSE(exists(manifest_));
    EXPECT_FALSE(exists(manifest_ + ".tmp"));
    ASSERT_EQ(::chmod(at("shots/s1.exr").c_str(), 0644), 0);
  }
  st = create_manifest(tree_, base_ + "/no/dir/m", nullptr);
  EXPECT_EQ(st.code(), Error::kLocalIo);
}

TEST_F(ManifestOpsTest, VerifyReportsBadManifests) {
  make_tree();
  auto absent = verify_tree(tree_, manifest_, nullptr);
  ASSERT_FALSE(absent.is_ok());
  EXPECT_EQ(absent.status().code(), Error::kLocalIo);

  ASSERT_TRUE(create().is_ok());
  // Corrupt the trailer: verify must fail, not report a partial comparison.
  FILE* f = std::fopen(manifest_.c_str(), "r+b");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(std::fseek(f, -3, SEEK_END), 0);
  std::fputc('g', f);
  std::fclose(f);
  auto bad = verify_tree(tree_, manifest_, nullptr);
  ASSERT_FALSE(bad.is_ok());
  EXPECT_EQ(bad.status().code(), Error::kUsage);
  EXPECT_NE(bad.status().message().find("line 12"), std::string::npos) << bad.status().message();
}

TEST_F(ManifestOpsTest, ProgressIsRateLimited) {
  for (int i = 0; i < 300; ++i) write("f" + std::to_string(i), std::string(100, 'x'));
  uint64_t calls = 0;
  uint64_t files = 0;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(create_manifest(tree_, manifest_, [&](uint64_t f, uint64_t) {
                ++calls;
                files = f;
              }).is_ok());
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start)
                .count();
  EXPECT_EQ(files, 300u);
  EXPECT_GE(calls, 1u);
  // At most one call per 250 ms while working, plus the final one.
  EXPECT_LE(calls, static_cast<uint64_t>(ms / 250) + 1) << ms << " ms";
}

}  // namespace
}  // namespace ferry
