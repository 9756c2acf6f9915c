// Tests for src/manifest/source_list.{h,cc}: sources from a manifest, from --files-from, and
// filtering.
#include "manifest/source_list.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "manifest/manifest_file.h"
#include "manifest/manifest_ops.h"
#include "manifest/scanner.h"

namespace ferry {
namespace {

using Paths = std::vector<std::string>;

class SourceListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ferry_source_list_XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    base_ = tmpl;
    root_ = base_ + "/src";
    ASSERT_EQ(::mkdir(root_.c_str(), 0755), 0);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
  }
  std::string at(const std::string& rel) const { return root_ + "/" + rel; }
  void mkdir(const std::string& rel, mode_t mode = 0755) {
    ASSERT_EQ(::mkdir(at(rel).c_str(), mode), 0) << rel;
  }
  void write_to(const std::string& path, const std::string& data) {
    ::unlink(path.c_str());
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  void write(const std::string& rel, const std::string& data) { write_to(at(rel), data); }

  // src/: a/ (a/b.exr, a/c/ (a/c/d.exr)), e.txt, link -> e.txt, "sp ace/f"
  void make_tree() {
    mkdir("a");
    write("a/b.exr", "bbb");
    mkdir("a/c", 0700);
    write("a/c/d.exr", "dddd");
    write("e.txt", "e");
    ASSERT_EQ(::symlink("e.txt", at("link").c_str()), 0);
    mkdir("sp ace");
    write("sp ace/f", "ff");
  }

  static Paths paths(const std::vector<FileEntry>& entries) {
    Paths out;
    for (const FileEntry& e : entries) out.push_back(e.path);
    return out;
  }
  static const FileEntry* find(const std::vector<FileEntry>& entries, const std::string& path) {
    for (const FileEntry& e : entries) {
      if (e.path == path) return &e;
    }
    return nullptr;
  }

  // A manifest listing exactly `entries` (paths sorted canonically by the caller).
  std::string manifest_of(const std::vector<ManifestEntry>& entries) {
    std::string path = base_ + "/list.manifest";
    auto w = ManifestWriter::create(path, root_);
    EXPECT_TRUE(w.is_ok());
    for (const ManifestEntry& e : entries) EXPECT_TRUE(w->add(e).is_ok()) << e.entry.path;
    EXPECT_TRUE(w->finish().is_ok());
    return path;
  }
  static ManifestEntry file(const std::string& path, uint64_t size) {
    ManifestEntry m;
    m.entry.path = path;
    m.entry.size = size;
    m.entry.mode = 0640;
    m.entry.mtime_ns = 42;
    return m;
  }

  std::string list(const std::string& text) {
    std::string path = base_ + "/files.txt";
    write_to(path, text);
    return path;
  }

  std::string base_;
  std::string root_;
};

// --- entries_from_manifest ---------------------------------------------------------------

TEST_F(SourceListTest, ManifestOfATreeGivesTheScannerEntries) {
  make_tree();
  std::string m = base_ + "/tree.manifest";
  ASSERT_TRUE(create_manifest(root_, m, nullptr).is_ok());
  auto got = entries_from_manifest(m, root_);
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  auto scanned = scan_sources({root_ + "/"}, ScanOptions{}, nullptr);
  ASSERT_TRUE(scanned.is_ok());
  ASSERT_EQ(paths(*got), paths(*scanned));
  for (size_t i = 0; i < got->size(); ++i) {
    const FileEntry& g = (*got)[i];
    const FileEntry& s = (*scanned)[i];
    EXPECT_EQ(g.source_path, root_ + "/" + g.path);
    EXPECT_EQ(g.source_path, s.source_path);
    EXPECT_EQ(g.type, s.type) << g.path;
    EXPECT_EQ(g.size, s.size) << g.path;
    EXPECT_EQ(g.mode, s.mode) << g.path;
    EXPECT_EQ(g.mtime_ns, s.mtime_ns) << g.path;
    EXPECT_EQ(g.link_target, s.link_target) << g.path;
  }
}

TEST_F(SourceListTest, UnlistedParentsAreEmittedBeforeTheirFiles) {
  make_tree();
  std::string m = manifest_of({file("a/c/d.exr", 4), file("e.txt", 1), file("sp ace/f", 2)});
  auto got = entries_from_manifest(m, root_);
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  EXPECT_EQ(paths(*got), (Paths{"a", "a/c", "a/c/d.exr", "e.txt", "sp ace", "sp ace/f"}));
  const FileEntry* c = find(*got, "a/c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->type, FileType::kDirectory);
  EXPECT_EQ(c->mode, 0700u);  // from the source directory
  EXPECT_EQ(c->source_path, at("a/c"));
  const FileEntry* d = find(*got, "a/c/d.exr");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->mode, 0640u);  // the manifest's attributes
  EXPECT_EQ(d->mtime_ns, 42);
  EXPECT_EQ(d->source_path, at("a/c/d.exr"));
}

TEST_F(SourceListTest, ListedDirectoriesAreNotRepeatedAsParents) {
  make_tree();
  ManifestEntry a;
  a.entry.path = "a";
  a.entry.type = FileType::kDirectory;
  a.entry.mode = 0711;
  std::string m = manifest_of({a, file("a/b.exr", 3), file("a/c/d.exr", 4)});
  auto got = entries_from_manifest(m, root_);
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  EXPECT_EQ(paths(*got), (Paths{"a", "a/b.exr", "a/c", "a/c/d.exr"}));
  EXPECT_EQ((*got)[0].mode, 0711u);  // the listed directory keeps the manifest's mode
}

TEST_F(SourceListTest, ChangedMissingOrRetypedFilesAreErrors) {
  make_tree();
  std::string m = manifest_of({file("a/b.exr", 3)});
  write("a/b.exr", "bbbbb");
  auto changed = entries_from_manifest(m, root_);
  ASSERT_FALSE(changed.is_ok());
  EXPECT_EQ(changed.status().code(), Error::kLocalIo);
  EXPECT_EQ(changed.status().message(),
            "'a/b.exr' listed in the manifest changed since (size 3, now 5)");

  ASSERT_EQ(::unlink(at("a/b.exr").c_str()), 0);
  auto missing = entries_from_manifest(m, root_);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), Error::kLocalIo);
  EXPECT_NE(missing.status().message().find("'a/b.exr' listed in the manifest is missing"),
            std::string::npos)
      << missing.status().message();

  mkdir("a/b.exr");
  auto retyped = entries_from_manifest(m, root_);
  ASSERT_FALSE(retyped.is_ok());
  EXPECT_NE(retyped.status().message().find("was a file, now a directory"), std::string::npos)
      << retyped.status().message();

  auto no_root = entries_from_manifest(m, base_ + "/nope");
  ASSERT_FALSE(no_root.is_ok());
  EXPECT_EQ(no_root.status().code(), Error::kLocalIo);
}

TEST_F(SourceListTest, ParentThatIsNotADirectoryIsAnError) {
  make_tree();
  ASSERT_EQ(::symlink("a", at("alias").c_str()), 0);
  std::string m = manifest_of({file("alias/b.exr", 3)});
  auto got = entries_from_manifest(m, root_);
  ASSERT_FALSE(got.is_ok());
  EXPECT_EQ(got.status().code(), Error::kLocalIo);
  EXPECT_NE(got.status().message().find("'alias' (parent of 'alias/b.exr') is not a directory"),
            std::string::npos)
      << got.status().message();
}

TEST_F(SourceListTest, InvalidManifestIsAUsageError) {
  make_tree();
  std::string m = base_ + "/bad.manifest";
  write_to(m, "ferry-manifest 1\nroot /x\nf 0644 0 3 - a/b.exr\n");
  auto got = entries_from_manifest(m, root_);
  ASSERT_FALSE(got.is_ok());
  EXPECT_EQ(got.status().code(), Error::kUsage);
  EXPECT_NE(got.status().message().find("line 4: missing trailer"), std::string::npos)
      << got.status().message();
}

// --- entries_from_list -------------------------------------------------------------------

TEST_F(SourceListTest, FilesFromListWithCommentsPrefixesDirectoriesAndDuplicates) {
  make_tree();
  std::string l = list(
      "# shots to send\n"
      "\n"
      "./e.txt\r\n"
      "a/c/d.exr\n"
      "sp ace/\n"
      "e.txt\n"
      "link\n"
      "a/c\n");  // a directory: sent recursively; d.exr is then a duplicate
  auto got = entries_from_list(l, root_);
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  EXPECT_EQ(paths(*got), (Paths{"a", "a/c", "a/c/d.exr", "e.txt", "link", "sp ace", "sp ace/f"}));
  const FileEntry* link = find(*got, "link");
  ASSERT_NE(link, nullptr);
  EXPECT_EQ(link->type, FileType::kSymlink);
  EXPECT_EQ(link->link_target, "e.txt");
  const FileEntry* d = find(*got, "a/c/d.exr");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->source_path, at("a/c/d.exr"));
  EXPECT_EQ(d->size, 4u);
  const FileEntry* c = find(*got, "a/c");
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->type, FileType::kDirectory);
  EXPECT_EQ(c->mode, 0700u);
}

TEST_F(SourceListTest, DotListsTheWholeRoot) {
  make_tree();
  auto got = entries_from_list(list(".\na/b.exr\n"), root_);
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  auto scanned = scan_sources({root_ + "/"}, ScanOptions{}, nullptr);
  ASSERT_TRUE(scanned.is_ok());
  EXPECT_EQ(paths(*got), paths(*scanned));
}

TEST_F(SourceListTest, LastLineWithoutNewlineIsRead) {
  make_tree();
  auto got = entries_from_list(list("e.txt\na/b.exr"), root_);
  ASSERT_TRUE(got.is_ok()) << got.status().message();
  EXPECT_EQ(paths(*got), (Paths{"a", "a/b.exr", "e.txt"}));
}

TEST_F(SourceListTest, FilesFromErrorsNameTheLine) {
  make_tree();
  auto missing = entries_from_list(list("e.txt\n# c\nnope/x.exr\n"), root_);
  ASSERT_FALSE(missing.is_ok());
  EXPECT_EQ(missing.status().code(), Error::kLocalIo);
  EXPECT_NE(missing.status().message().find("files-from '" + base_ + "/files.txt' line 3: "
                                            "'nope/x.exr'"),
            std::string::npos)
      << missing.status().message();

  auto escape = entries_from_list(list("e.txt\n../etc/passwd\n"), root_);
  ASSERT_FALSE(escape.is_ok());
  EXPECT_EQ(escape.status().code(), Error::kUsage);
  EXPECT_NE(escape.status().message().find("line 2: "), std::string::npos)
      << escape.status().message();

  auto absolute = entries_from_list(list("/etc/passwd\n"), root_);
  ASSERT_FALSE(absolute.is_ok());
  EXPECT_EQ(absolute.status().code(), Error::kUsage);

  ASSERT_EQ(::symlink("a", at("alias").c_str()), 0);
  auto through_link = entries_from_list(list("alias/b.exr\n"), root_);
  ASSERT_FALSE(through_link.is_ok());
  EXPECT_NE(through_link.status().message().find("is not a directory"), std::string::npos)
      << through_link.status().message();

  auto too_long = entries_from_list(list(std::string(20000, 'x') + "\n"), root_);
  ASSERT_FALSE(too_long.is_ok());
  EXPECT_EQ(too_long.status().code(), Error::kUsage);
  EXPECT_NE(too_long.status().message().find("line 1: line longer than"), std::string::npos);

  auto no_list = entries_from_list(base_ + "/absent.txt", root_);
  ASSERT_FALSE(no_list.is_ok());
  EXPECT_EQ(no_list.status().code(), Error::kLocalIo);
}

// --- apply_filter on listed sources ------------------------------------------------------

TEST_F(SourceListTest, FilterAppliesToListedSources) {
  make_tree();
  auto got = entries_from_list(list(".\n"), root_);
  ASSERT_TRUE(got.is_ok());
  auto f = PathFilter::build({{false, "c/"}, {false, "*.txt"}});
  ASSERT_TRUE(f.is_ok());
  EXPECT_EQ(paths(apply_filter(*got, *f)), (Paths{"a", "a/b.exr", "link", "sp ace", "sp ace/f"}));
}

}  // namespace
}  // namespace ferry
