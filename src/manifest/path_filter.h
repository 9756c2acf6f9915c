// --include / --exclude rules with rsync-like semantics (docs/manifest.md, "Filters").
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry {

// Shell-style match of a whole string, with '/' special:
//   *      any run of bytes except '/'      **   any run of bytes, '/' included
//   ?      one byte except '/'              [..] one byte (not '/') from a class, as fnmatch
//   \c     the byte c literally
//   "**/"  at the start or after a '/': zero or more whole directories ("a/**/b" matches
//          "a/b" and "a/x/y/b"; "**/c" matches "c" and "x/c")
//   "/***" at the end: the directory itself or anything below it ("d/***": "d", "d/x/y")
// Without "**", this is exactly fnmatch(pattern, text, FNM_PATHNAME). Time is
// O(|pattern| * |text|) whatever the pattern (no exponential backtracking).
bool glob_match(std::string_view pattern, std::string_view text);

// A pattern compiled once for glob_match semantics.
class GlobPattern {
 public:
  explicit GlobPattern(std::string_view pattern);
  bool match(std::string_view text) const;

 private:
  enum class Kind : uint8_t {
    kByte,         // one literal byte
    kAnyByte,      // '?'
    kClass,        // '[...]'
    kStar,         // '*'
    kAnyString,    // '**'
    kDirs,         // "**/" : "" or anything ending in '/'
    kSlashAnyOrEnd,  // "/***" at the end: "" or '/' followed by anything
    kNever,        // a trailing backslash: fnmatch never matches it
  };
  struct Token {
    Kind kind;
    uint8_t byte;
    uint32_t cls;  // index into classes_
  };
  std::vector<Token> tokens_;
  std::vector<std::bitset<256>> classes_;
};

struct FilterRule {
  bool include = false;
  std::string pattern;
};

class PathFilter {
 public:
  // Validates user-supplied rules: an empty pattern (or one made only of '/'), a NUL byte
  // or a pattern over 4096 bytes is a kUsage error naming the rule.
  static Result<PathFilter> build(const std::vector<FilterRule>& rules);

  // Appends a rule (command-line order). No validation: a pattern that is empty after
  // removing its leading and trailing '/' never matches.
  void add(bool include, std::string pattern);

  // True when the first rule that matches `rel_path` (a relative path as in FileEntry) is
  // an exclude; false when it is an include or no rule matches. Rules:
  //  - a trailing '/' makes the rule apply to directories only (is_dir);
  //  - a leading '/' anchors it at the transfer root: matched against the whole path;
  //  - a pattern containing '/' (besides a trailing one) or "**" is matched against the
  //    whole relative path;
  //  - otherwise it is matched against the last component, at any depth.
  // Only `rel_path` itself is tested: callers exclude what lies below an excluded directory
  // (apply_filter in source_list.h does).
  bool excluded(std::string_view rel_path, bool is_dir) const;

  bool empty() const { return rules_.empty(); }
  size_t size() const { return rules_.size(); }

 private:
  struct Rule {
    bool include = false;
    bool dir_only = false;
    bool whole_path = false;
    bool never = false;  // empty pattern
    GlobPattern glob{""};  // the pattern without its leading and trailing '/'
  };
  std::vector<Rule> rules_;
};

}  // namespace ferry
