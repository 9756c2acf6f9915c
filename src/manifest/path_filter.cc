// Glob matching with "**" and rsync-like include/exclude rules (see path_filter.h).
#include "manifest/path_filter.h"

#include <fnmatch.h>

#include <utility>

namespace ferry {
namespace {

constexpr size_t kMaxPatternBytes = 4096;

// End of a bracket expression starting at p[i] == '[' (index of its closing ']'), or npos
// when it is unterminated (then fnmatch takes the '[' literally). Mirrors glibc's parsing:
// a leading '!' or '^', then a leading ']' that is a member, backslash escapes, and
// "[:name:]", "[.x.]", "[=x=]" inside.
size_t bracket_end(std::string_view p, size_t i) {
  size_t j = i + 1;
  if (j < p.size() && (p[j] == '!' || p[j] == '^')) ++j;
  if (j < p.size() && p[j] == ']') ++j;
  while (j < p.size() && p[j] != ']') {
    if (p[j] == '\\') {
      j += 2;
    } else if (p[j] == '[' && j + 1 < p.size() &&
               (p[j + 1] == ':' || p[j + 1] == '.' || p[j + 1] == '=')) {
      char delim[3] = {p[j + 1], ']', '\0'};
      size_t close = p.find(delim, j + 2);
      j = close == std::string_view::npos ? j + 1 : close + 2;
    } else {
      ++j;
    }
  }
  return j < p.size() ? j : std::string_view::npos;
}

}  // namespace

GlobPattern::GlobPattern(std::string_view p) {
  size_t i = 0;
  while (i < p.size()) {
    char c = p[i];
    if (c == '\\') {
      if (i + 1 == p.size()) {
        tokens_.push_back({Kind::kNever, 0, 0});
        ++i;
      } else {
        tokens_.push_back({Kind::kByte, static_cast<uint8_t>(p[i + 1]), 0});
        i += 2;
      }
    } else if (c == '?') {
      tokens_.push_back({Kind::kAnyByte, 0, 0});
      ++i;
    } else if (c == '[') {
      size_t end = bracket_end(p, i);
      if (end == std::string_view::npos) {
        tokens_.push_back({Kind::kByte, static_cast<uint8_t>('['), 0});
        ++i;
        continue;
      }
      // The class's members are whatever fnmatch says they are, byte by byte; '/' never is
      // (FNM_PATHNAME) and NUL cannot be in a path.
      std::string cls(p.substr(i, end - i + 1));
      std::bitset<256> set;
      for (int b = 1; b < 256; ++b) {
        if (b == '/') continue;
        char s[2] = {static_cast<char>(b), '\0'};
        if (::fnmatch(cls.c_str(), s, FNM_PATHNAME) == 0) set.set(static_cast<size_t>(b));
      }
      classes_.push_back(set);
      tokens_.push_back({Kind::kClass, 0, static_cast<uint32_t>(classes_.size() - 1)});
      i = end + 1;
    } else if (c == '*') {
      size_t run = 0;
      while (i + run < p.size() && p[i + run] == '*') ++run;
      bool after_slash = tokens_.empty() ||
                         (tokens_.back().kind == Kind::kByte && tokens_.back().byte == '/');
      if (run == 1) {
        tokens_.push_back({Kind::kStar, 0, 0});
        i += 1;
      } else if (run == 3 && i + 3 == p.size() && !tokens_.empty() && after_slash) {
        tokens_.back() = {Kind::kSlashAnyOrEnd, 0, 0};  // replaces the '/'
        i += 3;
      } else if (after_slash && i + run < p.size() && p[i + run] == '/') {
        tokens_.push_back({Kind::kDirs, 0, 0});
        i += run + 1;
      } else {
        tokens_.push_back({Kind::kAnyString, 0, 0});
        i += run;
      }
    } else {
      tokens_.push_back({Kind::kByte, static_cast<uint8_t>(c), 0});
      ++i;
    }
  }
}

bool GlobPattern::match(std::string_view s) const {
  // cur[j]: the tokens so far can match s[0, j). One pass per token: O(tokens * |s|).
  const size_t n = s.size();
  std::vector<char> cur(n + 1, 0);
  std::vector<char> nxt(n + 1, 0);
  cur[0] = 1;
  auto byte = [&](size_t j) { return static_cast<unsigned char>(s[j]); };
  for (const Token& t : tokens_) {
    bool any_live = false;
    switch (t.kind) {
      case Kind::kByte:
      case Kind::kAnyByte:
      case Kind::kClass:
        nxt[0] = 0;
        for (size_t j = 1; j <= n; ++j) {
          unsigned char b = byte(j - 1);
          bool ok;
          if (t.kind == Kind::kByte) {
            ok = b == t.byte;
          } else if (t.kind == Kind::kAnyByte) {
            ok = b != '/';
          } else {
            ok = classes_[t.cls].test(b);
          }
          nxt[j] = cur[j - 1] && ok;
        }
        break;
      case Kind::kStar:
        nxt[0] = cur[0];
        for (size_t j = 1; j <= n; ++j) nxt[j] = cur[j] || (nxt[j - 1] && byte(j - 1) != '/');
        break;
      case Kind::kAnyString:
        nxt[0] = cur[0];
        for (size_t j = 1; j <= n; ++j) nxt[j] = cur[j] || nxt[j - 1];
        break;
      case Kind::kDirs: {
        // "" or any run that ends with '/'.
        bool started = false;
        nxt[0] = cur[0];
        for (size_t j = 1; j <= n; ++j) {
          started = started || cur[j - 1];
          nxt[j] = cur[j] || (started && byte(j - 1) == '/');
        }
        break;
      }
      case Kind::kSlashAnyOrEnd: {
        // "" or '/' followed by anything.
        bool slash_seen = false;
        nxt[0] = cur[0];
        for (size_t j = 1; j <= n; ++j) {
          slash_seen = slash_seen || (cur[j - 1] && byte(j - 1) == '/');
          nxt[j] = cur[j] || slash_seen;
        }
        break;
      }
      case Kind::kNever:
        return false;
    }
    for (size_t j = 0; j <= n; ++j) any_live = any_live || nxt[j];
    if (!any_live) return false;
    std::swap(cur, nxt);
  }
  return cur[n] != 0;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  return GlobPattern(pattern).match(text);
}

Result<PathFilter> PathFilter::build(const std::vector<FilterRule>& rules) {
  PathFilter filter;
  for (const FilterRule& r : rules) {
    const char* kind = r.include ? "--include" : "--exclude";
    if (r.pattern.find_first_not_of('/') == std::string::npos) {
      return Status(Error::kUsage, std::string("empty ") + kind + " pattern" +
                                       (r.pattern.empty() ? "" : " '" + r.pattern + "'"));
    }
    if (r.pattern.find('\0') != std::string::npos) {
      return Status(Error::kUsage, std::string(kind) + " pattern contains a NUL byte");
    }
    if (r.pattern.size() > kMaxPatternBytes) {
      return Status(Error::kUsage, std::string(kind) + " pattern longer than " +
                                       std::to_string(kMaxPatternBytes) + " bytes");
    }
    filter.add(r.include, r.pattern);
  }
  return filter;
}

void PathFilter::add(bool include, std::string pattern) {
  Rule rule;
  rule.include = include;
  size_t last = pattern.find_last_not_of('/');
  if (last == std::string::npos) {
    rule.never = true;
    rules_.push_back(std::move(rule));
    return;
  }
  rule.dir_only = last + 1 < pattern.size();
  pattern.resize(last + 1);
  size_t first = pattern.find_first_not_of('/');
  bool anchored = first > 0;
  pattern.erase(0, first);
  rule.whole_path = anchored || pattern.find('/') != std::string::npos ||
                    pattern.find("**") != std::string::npos;
  rule.glob = GlobPattern(pattern);
  rules_.push_back(std::move(rule));
}

bool PathFilter::excluded(std::string_view rel_path, bool is_dir) const {
  std::string_view base = rel_path;
  if (size_t slash = rel_path.rfind('/'); slash != std::string_view::npos) {
    base = rel_path.substr(slash + 1);
  }
  for (const Rule& rule : rules_) {
    if (rule.never) continue;
    if (rule.dir_only && !is_dir) continue;
    if (rule.glob.match(rule.whole_path ? rel_path : base)) return !rule.include;
  }
  return false;
}

}  // namespace ferry
