// Entry lists from a manifest or a --files-from list, and filtering (see source_list.h).
#include "manifest/source_list.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <functional>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "core/log.h"
#include "io/safe_path.h"
#include "manifest/manifest_file.h"

namespace ferry {
namespace {

struct StringViewHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using PathSet = std::unordered_set<std::string, StringViewHash, std::equal_to<>>;

std::string join_root(const std::string& root, std::string_view rel) {
  std::string out = root;
  if (out.empty() || out.back() != '/') out += '/';
  out.append(rel);
  return out;
}

bool is_below(std::string_view parent, std::string_view path) {
  return path.size() > parent.size() && path.compare(0, parent.size(), parent) == 0 &&
         path[parent.size()] == '/';
}

std::string shown(std::string_view path) { return "'" + manifest_escape(path) + "'"; }

int64_t mtime_of(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

FileEntry directory_entry(const std::string& rel, const std::string& local, const struct stat& st) {
  FileEntry e;
  e.path = rel;
  e.type = FileType::kDirectory;
  e.mode = static_cast<uint32_t>(st.st_mode & 07777);
  e.mtime_ns = mtime_of(st);
  e.size = 0;
  e.source_path = local;
  return e;
}

Status check_root(const std::string& root) {
  struct stat st;
  if (root.empty()) return Status(Error::kUsage, "empty source root");
  if (::stat(root.c_str(), &st) != 0) {
    return errno_status(Error::kLocalIo, "source root '" + root + "'", errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return errno_status(Error::kLocalIo, "source root '" + root + "'", ENOTDIR);
  }
  return Status::ok();
}

// lstat of an ancestor that must be a real directory (not a symlink to one).
Status parent_directory(const std::string& root, const std::string& anc, std::string_view child,
                        const std::string& context, FileEntry* out) {
  std::string local = join_root(root, anc);
  struct stat st;
  if (::lstat(local.c_str(), &st) != 0) {
    return errno_status(Error::kLocalIo,
                        context + shown(anc) + " (parent of " + shown(child) + "): lstat '" +
                            local + "'",
                        errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status(Error::kLocalIo, context + shown(anc) + " (parent of " + shown(child) +
                                       ") is not a directory in '" + root + "'");
  }
  *out = directory_entry(anc, local, st);
  return Status::ok();
}

}  // namespace

Result<std::vector<FileEntry>> entries_from_manifest(const std::string& manifest_path,
                                                     const std::string& source_root) {
  auto reader = ManifestReader::open(manifest_path);
  if (!reader) return reader.status();
  if (Status st = check_root(source_root); !st) return st;

  std::vector<FileEntry> out;
  std::vector<std::string> chain;  // directories emitted that enclose the current entry
  ManifestEntry m;
  while (true) {
    auto more = reader->next(&m);
    if (!more) return more.status();
    if (!*more) break;
    const std::string path = m.entry.path;
    // The manifest is in canonical order (the reader checks it), so a directory's subtree is
    // contiguous: once an entry is not below it, nothing later is.
    while (!chain.empty() && !is_below(chain.back(), path)) chain.pop_back();
    size_t from = chain.empty() ? 0 : chain.back().size() + 1;
    for (size_t slash = path.find('/', from); slash != std::string::npos;
         slash = path.find('/', slash + 1)) {
      std::string anc = path.substr(0, slash);
      FileEntry dir;
      if (Status st = parent_directory(source_root, anc, path, "", &dir); !st) return st;
      out.push_back(std::move(dir));
      chain.push_back(std::move(anc));
    }

    FileEntry e = std::move(m.entry);
    e.source_path = join_root(source_root, e.path);
    if (e.type == FileType::kRegular) {
      struct stat st;
      if (::lstat(e.source_path.c_str(), &st) != 0) {
        int err = errno;
        return errno_status(Error::kLocalIo,
                            shown(path) + " listed in the manifest is " +
                                (err == ENOENT ? "missing" : "unreadable") + " (lstat '" +
                                e.source_path + "')",
                            err);
      }
      if (!S_ISREG(st.st_mode)) {
        const char* now = S_ISDIR(st.st_mode)   ? "a directory"
                          : S_ISLNK(st.st_mode) ? "a symlink"
                                                : "a special file";
        return Status(Error::kLocalIo, shown(path) +
                                           " listed in the manifest changed since (was a file, "
                                           "now " + now + ")");
      }
      if (static_cast<uint64_t>(st.st_size) != e.size) {
        return Status(Error::kLocalIo, shown(path) + " listed in the manifest changed since (size " +
                                           std::to_string(e.size) + ", now " +
                                           std::to_string(st.st_size) + ")");
      }
    }
    bool is_dir = e.type == FileType::kDirectory;
    out.push_back(std::move(e));
    if (is_dir) chain.push_back(path);
  }
  return out;
}

Result<std::vector<FileEntry>> entries_from_list(const std::string& list_path,
                                                 const std::string& source_root,
                                                 const ScanWarning& warn) {
  auto lines = LineFileReader::open(list_path, kMaxManifestLine);
  if (!lines) return lines.status();
  if (Status st = check_root(source_root); !st) return st;

  std::vector<FileEntry> out;
  PathSet parents_done;
  std::string_view raw;
  bool terminated = false;
  while (true) {
    auto r = lines->next(&raw, &terminated);
    if (!r) return r.status();
    if (*r == LineFileReader::Read::kEnd) break;
    const std::string where =
        "files-from '" + list_path + "' line " + std::to_string(lines->line_number()) + ": ";
    if (*r == LineFileReader::Read::kTooLong) {
      return Status(Error::kUsage,
                    where + "line longer than " + std::to_string(kMaxManifestLine) + " bytes");
    }
    std::string_view p = raw;
    if (!p.empty() && p.back() == '\r') p.remove_suffix(1);
    if (p.empty() || p.front() == '#') continue;
    while (p.size() >= 2 && p[0] == '.' && p[1] == '/') p.remove_prefix(2);
    while (p.size() > 1 && p.back() == '/') p.remove_suffix(1);

    if (p == "." || p.empty()) {  // "." or "./": everything under the root
      auto all = scan_sources({join_root(source_root, "")}, ScanOptions{}, warn);
      if (!all) return Status(all.status().code(), where + all.status().message());
      out.insert(out.end(), std::make_move_iterator(all->begin()),
                 std::make_move_iterator(all->end()));
      continue;
    }
    if (Status st = validate_relative_path(p); !st) {
      return Status(Error::kUsage, where + st.message());
    }
    std::string rel(p);
    std::string local = join_root(source_root, rel);
    struct stat st;
    if (::lstat(local.c_str(), &st) != 0) {
      return errno_status(Error::kLocalIo, where + shown(rel) + ": lstat '" + local + "'", errno);
    }
    // Parents, each checked once: they must be directories, not symlinks to one.
    for (size_t slash = rel.find('/'); slash != std::string::npos; slash = rel.find('/', slash + 1)) {
      std::string_view anc(rel.data(), slash);
      if (parents_done.find(anc) != parents_done.end()) continue;
      FileEntry dir;
      if (Status s = parent_directory(source_root, std::string(anc), rel, where, &dir); !s) {
        return s;
      }
      parents_done.insert(dir.path);
      out.push_back(std::move(dir));
    }
    // scan_sources names entries after the last component ("b", "b/x"); put the parent back.
    auto found = scan_sources({local}, ScanOptions{}, warn);
    if (!found) return Status(found.status().code(), where + found.status().message());
    size_t slash = rel.rfind('/');
    std::string prefix = slash == std::string::npos ? "" : rel.substr(0, slash + 1);
    for (FileEntry& e : *found) {
      e.path.insert(0, prefix);
      out.push_back(std::move(e));
    }
  }

  auto less = [](const FileEntry& a, const FileEntry& b) {
    return manifest_path_less(a.path, b.path);
  };
  std::stable_sort(out.begin(), out.end(), less);
  auto dup = std::unique(out.begin(), out.end(),
                         [](const FileEntry& a, const FileEntry& b) { return a.path == b.path; });
  out.erase(dup, out.end());
  return out;
}

std::vector<FileEntry> apply_filter(std::vector<FileEntry> entries, const PathFilter& f) {
  if (f.empty()) return entries;
  PathSet excluded_dirs;
  size_t kept = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    FileEntry& e = entries[i];
    bool drop = false;
    if (!excluded_dirs.empty()) {
      for (size_t slash = e.path.find('/'); slash != std::string::npos && !drop;
           slash = e.path.find('/', slash + 1)) {
        drop = excluded_dirs.find(std::string_view(e.path.data(), slash)) != excluded_dirs.end();
      }
    }
    bool is_dir = e.type == FileType::kDirectory;
    if (!drop && f.excluded(e.path, is_dir)) {
      drop = true;
      if (is_dir) excluded_dirs.insert(e.path);
    }
    if (drop) continue;
    if (kept != i) entries[kept] = std::move(e);
    ++kept;
  }
  entries.resize(kept);
  return entries;
}

Result<std::vector<FileEntry>> select_sources(const std::vector<std::string>& sources, const SendOptions& options,
                                              const PathFilter& filter) {
  Result<std::vector<FileEntry>> files = std::vector<FileEntry>{};
  if (!options.manifest_path.empty() || !options.files_from.empty()) {
    if (sources.size() > 1) return Status(Error::kUsage, "with --manifest or --files-from, give at most one SRC (the directory the listed paths are relative to)");
    std::string root = sources.empty() ? "" : sources[0];
    if (!options.manifest_path.empty()) {
      if (root.empty()) {
        auto reader = ManifestReader::open(options.manifest_path);
        if (!reader) return reader.status();
        root = reader->root();
      }
      files = entries_from_manifest(options.manifest_path, root);
    } else {
      if (root.empty()) return Status(Error::kUsage, "--files-from needs the directory its paths are relative to as SRC");
      files = entries_from_list(options.files_from, root);
    }
  } else {
    ScanOptions scan_options;
    scan_options.follow_symlinks = options.follow_symlinks;
    files = scan_sources(sources, scan_options, [](const std::string& m) { log::warning(m); });
  }
  if (!files) return files.status();
  if (!filter.empty()) return apply_filter(std::move(*files), filter);
  return files;
}

Result<PathFilter> build_filter(const SendOptions& options) {
  std::vector<FilterRule> rules;
  for (const auto& r : options.filters) rules.push_back({r.include, r.pattern});
  return PathFilter::build(rules);
}

Result<std::string> sync_source(const std::string& source_dir, const SendOptions& options) {
  if (!options.manifest_path.empty() || !options.files_from.empty())
    return Status(Error::kUsage, "ferry sync mirrors a directory; --manifest and --files-from are for ferry send");
  std::string src = source_dir;
  while (src.size() > 1 && src.back() == '/') src.pop_back();
  return src + "/";
}

}  // namespace ferry
