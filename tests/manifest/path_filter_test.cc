// Tests for src/manifest/path_filter.{h,cc}: glob matching and rsync-like include/exclude.
#include "manifest/path_filter.h"

#include <fnmatch.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "manifest/source_list.h"

namespace ferry {
namespace {

using Paths = std::vector<std::string>;

FileEntry entry(const std::string& path, bool dir = false) {
  FileEntry e;
  e.path = path;
  e.type = dir ? FileType::kDirectory : FileType::kRegular;
  return e;
}

Paths paths(const std::vector<FileEntry>& entries) {
  Paths out;
  for (const FileEntry& e : entries) out.push_back(e.path);
  return out;
}

// A small tree in scanner order.
std::vector<FileEntry> tree() {
  return {entry("a.exr"),          entry("b.dpx"),          entry("cache", true),
          entry("cache/c.exr"),    entry("cache/sub", true), entry("cache/sub/d.exr"),
          entry("keep.bak"),       entry("shot", true),      entry("shot/cache", true),
          entry("shot/cache/e.exr"), entry("shot/old.bak"),  entry("shot/tmp"),
          entry("shot/tmp.exr"),   entry("tmp", true),       entry("tmp/f.exr")};
}

PathFilter filter(const std::vector<FilterRule>& rules) {
  auto f = PathFilter::build(rules);
  EXPECT_TRUE(f.is_ok()) << f.status().message();
  return f.is_ok() ? *f : PathFilter();
}

// --- glob_match --------------------------------------------------------------------------

TEST(GlobMatchTest, StarQuestionAndClassesStopAtSlash) {
  EXPECT_TRUE(glob_match("*.exr", "a.exr"));
  EXPECT_TRUE(glob_match("*.exr", ".exr"));
  EXPECT_FALSE(glob_match("*.exr", "d/a.exr"));
  EXPECT_TRUE(glob_match("d/*", "d/a"));
  EXPECT_FALSE(glob_match("d/*", "d/a/b"));
  EXPECT_TRUE(glob_match("shot_??.exr", "shot_01.exr"));
  EXPECT_FALSE(glob_match("shot_??.exr", "shot_1.exr"));
  EXPECT_FALSE(glob_match("a?b", "a/b"));
  EXPECT_TRUE(glob_match("[ab]*.dpx", "b1.dpx"));
  EXPECT_FALSE(glob_match("[ab]*.dpx", "c1.dpx"));
  EXPECT_TRUE(glob_match("[!a]x", "bx"));
  EXPECT_FALSE(glob_match("[!a]x", "ax"));
  EXPECT_FALSE(glob_match("a[!x]b", "a/b"));
  EXPECT_TRUE(glob_match("v[0-9][[:digit:]]", "v42"));
  EXPECT_FALSE(glob_match("v[0-9][[:digit:]]", "v4x"));
  EXPECT_TRUE(glob_match("[]]", "]"));
  EXPECT_TRUE(glob_match("a[", "a["));   // unterminated class: a literal '['
  EXPECT_TRUE(glob_match("\\*x", "*x"));  // escaped star is literal
  EXPECT_FALSE(glob_match("\\*x", "ax"));
  EXPECT_FALSE(glob_match("a\\", "a\\"));  // trailing backslash never matches (as fnmatch)
  EXPECT_TRUE(glob_match("", ""));
  EXPECT_FALSE(glob_match("", "a"));
}

TEST(GlobMatchTest, DoubleStarCrossesDirectories) {
  EXPECT_TRUE(glob_match("**", "a/b/c"));
  EXPECT_TRUE(glob_match("**.bak", "a/b/c.bak"));
  EXPECT_TRUE(glob_match("**/*.bak", "x.bak"));  // zero directories
  EXPECT_TRUE(glob_match("**/*.bak", "a/b/x.bak"));
  EXPECT_FALSE(glob_match("**/*.bak", "a/b/x.bak.txt"));
  EXPECT_TRUE(glob_match("a/**/b", "a/b"));
  EXPECT_TRUE(glob_match("a/**/b", "a/x/b"));
  EXPECT_TRUE(glob_match("a/**/b", "a/x/y/b"));
  EXPECT_FALSE(glob_match("a/**/b", "ab"));
  EXPECT_FALSE(glob_match("a/**/b", "a/xb"));
  EXPECT_TRUE(glob_match("cache/**", "cache/x"));
  EXPECT_TRUE(glob_match("cache/**", "cache/a/b"));
  EXPECT_FALSE(glob_match("cache/**", "cache"));
  EXPECT_TRUE(glob_match("d/***", "d"));  // rsync: the directory and everything in it
  EXPECT_TRUE(glob_match("d/***", "d/x/y"));
  EXPECT_FALSE(glob_match("d/***", "dx"));
  EXPECT_TRUE(glob_match("a**z", "a/b/z"));
  EXPECT_FALSE(glob_match("a**z", "a/b/y"));
}

TEST(GlobMatchTest, AgreesWithFnmatchWhenThereIsNoDoubleStar) {
  std::mt19937 rng(4242);
  const std::vector<std::string> pattern_atoms = {"a", "b", "/", ".", "*", "?", "[ab]", "[!a]",
                                                  "[a-c]", "\\*", "\\a"};
  const std::string text_alphabet = "abc/.*";
  int compared = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string p;
    size_t atoms = rng() % 7;
    for (size_t i = 0; i < atoms; ++i) p += pattern_atoms[rng() % pattern_atoms.size()];
    if (p.find("**") != std::string::npos) continue;
    std::string t;
    size_t len = rng() % 8;
    for (size_t i = 0; i < len; ++i) t += text_alphabet[rng() % text_alphabet.size()];
    bool want = ::fnmatch(p.c_str(), t.c_str(), FNM_PATHNAME) == 0;
    ASSERT_EQ(glob_match(p, t), want) << "pattern '" << p << "' text '" << t << "'";
    ++compared;
  }
  EXPECT_GT(compared, 10000);
}

TEST(GlobMatchTest, PathologicalPatternsStayFast) {
  std::string text(4000, 'a');
  std::string pattern;
  for (int i = 0; i < 30; ++i) pattern += "*a";
  pattern += "*b";
  auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(glob_match(pattern, text));
  EXPECT_FALSE(glob_match("**a**a**a**a**a**a**a**a**b", text));
  EXPECT_TRUE(glob_match(pattern + "*", text + "b"));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - start)
                .count();
  EXPECT_LT(ms, 2000);
}

// --- PathFilter --------------------------------------------------------------------------

TEST(PathFilterTest, NoRulesExcludeNothing) {
  PathFilter f;
  EXPECT_TRUE(f.empty());
  EXPECT_FALSE(f.excluded("a", false));
  EXPECT_FALSE(f.excluded("a/b", true));
  EXPECT_EQ(paths(apply_filter(tree(), f)), paths(tree()));
}

TEST(PathFilterTest, IncludeExrExcludeEverythingElse) {
  PathFilter f = filter({{true, "*.exr"}, {false, "*"}});
  EXPECT_FALSE(f.excluded("a.exr", false));
  EXPECT_FALSE(f.excluded("deep/in/x.exr", false));  // no '/': last component, any depth
  EXPECT_TRUE(f.excluded("b.dpx", false));
  EXPECT_TRUE(f.excluded("shot", true));  // directories too: rsync's classic trap
  // So only top-level .exr files survive: the directories are excluded with their contents.
  EXPECT_EQ(paths(apply_filter(tree(), f)), (Paths{"a.exr"}));
}

TEST(PathFilterTest, IncludeDirectoriesToReachNestedFiles) {
  PathFilter f = filter({{true, "*/"}, {true, "*.exr"}, {false, "*"}});
  EXPECT_EQ(paths(apply_filter(tree(), f)),
            (Paths{"a.exr", "cache", "cache/c.exr", "cache/sub", "cache/sub/d.exr", "shot",
                   "shot/cache", "shot/cache/e.exr", "shot/tmp.exr", "tmp", "tmp/f.exr"}));
}

TEST(PathFilterTest, TrailingSlashMatchesDirectoriesOnly) {
  PathFilter f = filter({{false, "tmp/"}});
  EXPECT_TRUE(f.excluded("tmp", true));
  EXPECT_TRUE(f.excluded("a/b/tmp", true));  // at any depth
  EXPECT_FALSE(f.excluded("tmp", false));    // a file named tmp stays
  EXPECT_FALSE(f.excluded("shot/tmp", false));
  EXPECT_FALSE(f.excluded("tmp.exr", false));
  Paths kept = paths(apply_filter(tree(), f));
  EXPECT_EQ(kept, (Paths{"a.exr", "b.dpx", "cache", "cache/c.exr", "cache/sub", "cache/sub/d.exr",
                         "keep.bak", "shot", "shot/cache", "shot/cache/e.exr", "shot/old.bak",
                         "shot/tmp", "shot/tmp.exr"}));
}

TEST(PathFilterTest, LeadingSlashAnchorsAtTheRoot) {
  PathFilter f = filter({{false, "/cache/**"}});
  EXPECT_TRUE(f.excluded("cache/c.exr", false));
  EXPECT_TRUE(f.excluded("cache/sub", true));
  EXPECT_TRUE(f.excluded("cache/sub/d.exr", false));
  EXPECT_FALSE(f.excluded("cache", true));  // the directory itself stays (empty)
  EXPECT_FALSE(f.excluded("shot/cache/e.exr", false));
  EXPECT_EQ(paths(apply_filter(tree(), f)),
            (Paths{"a.exr", "b.dpx", "cache", "keep.bak", "shot", "shot/cache", "shot/cache/e.exr",
                   "shot/old.bak", "shot/tmp", "shot/tmp.exr", "tmp", "tmp/f.exr"}));

  PathFilter top = filter({{false, "/cache"}});
  EXPECT_TRUE(top.excluded("cache", true));
  EXPECT_FALSE(top.excluded("shot/cache", true));
  PathFilter any = filter({{false, "cache"}});
  EXPECT_TRUE(any.excluded("cache", true));
  EXPECT_TRUE(any.excluded("shot/cache", true));
}

TEST(PathFilterTest, DoubleStarBakAtAnyDepth) {
  PathFilter f = filter({{false, "**/*.bak"}});
  EXPECT_TRUE(f.excluded("keep.bak", false));
  EXPECT_TRUE(f.excluded("shot/old.bak", false));
  EXPECT_TRUE(f.excluded("a/b/c/d.bak", false));
  EXPECT_FALSE(f.excluded("shot/old.bak.exr", false));
  Paths kept = paths(apply_filter(tree(), f));
  EXPECT_EQ(std::count(kept.begin(), kept.end(), "keep.bak"), 0);
  EXPECT_EQ(std::count(kept.begin(), kept.end(), "shot/old.bak"), 0);
  EXPECT_EQ(kept.size(), tree().size() - 2);
}

TEST(PathFilterTest, FirstMatchingRuleWins) {
  PathFilter exclude_first = filter({{false, "*.exr"}, {true, "a.exr"}});
  EXPECT_TRUE(exclude_first.excluded("a.exr", false));
  PathFilter include_first = filter({{true, "a.exr"}, {false, "*.exr"}});
  EXPECT_FALSE(include_first.excluded("a.exr", false));
  EXPECT_TRUE(include_first.excluded("b.exr", false));
  EXPECT_FALSE(include_first.excluded("b.dpx", false));  // no rule matches: included
}

TEST(PathFilterTest, SlashInThePatternAnchorsIt) {
  PathFilter f = filter({{false, "shot/*.exr"}});
  EXPECT_TRUE(f.excluded("shot/tmp.exr", false));
  EXPECT_FALSE(f.excluded("x/shot/tmp.exr", false));
  EXPECT_FALSE(f.excluded("shot/deeper/tmp.exr", false));  // '*' does not cross '/'
  EXPECT_FALSE(f.excluded("tmp.exr", false));
}

TEST(PathFilterTest, IncludedFileInsideAnExcludedDirectoryIsStillDropped) {
  PathFilter f = filter({{false, "cache/"}, {true, "*.exr"}});
  EXPECT_FALSE(f.excluded("cache/c.exr", false));  // the rule alone would keep it...
  Paths kept = paths(apply_filter(tree(), f));     // ...but its directory is excluded
  EXPECT_EQ(kept, (Paths{"a.exr", "b.dpx", "keep.bak", "shot", "shot/old.bak", "shot/tmp",
                         "shot/tmp.exr", "tmp", "tmp/f.exr"}));
}

TEST(PathFilterTest, BuildRejectsEmptyPatterns) {
  for (const char* bad : {"", "/", "//"}) {
    auto f = PathFilter::build({{true, "*.exr"}, {false, bad}});
    ASSERT_FALSE(f.is_ok()) << bad;
    EXPECT_EQ(f.status().code(), Error::kUsage);
    EXPECT_NE(f.status().message().find("empty --exclude pattern"), std::string::npos)
        << f.status().message();
  }
  auto nul = PathFilter::build({{true, std::string("a\0b", 3)}});
  ASSERT_FALSE(nul.is_ok());
  EXPECT_EQ(nul.status().code(), Error::kUsage);
  auto huge = PathFilter::build({{true, std::string(5000, 'a')}});
  ASSERT_FALSE(huge.is_ok());
  EXPECT_EQ(huge.status().code(), Error::kUsage);
  auto ok = PathFilter::build({{true, "*.exr"}, {false, "*"}});
  ASSERT_TRUE(ok.is_ok());
  EXPECT_EQ(ok->size(), 2u);
  // add() without validation: an empty pattern simply never matches.
  PathFilter raw;
  raw.add(false, "/");
  EXPECT_FALSE(raw.excluded("a", true));
}

}  // namespace
}  // namespace ferry
