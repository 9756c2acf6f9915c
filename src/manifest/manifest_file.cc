// Manifest file writer and reader (see manifest_file.h and docs/manifest.md).
#include "manifest/manifest_file.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <utility>

#include "io/safe_path.h"

namespace ferry {
namespace {

constexpr size_t kWriteBuffer = 64 * 1024;
constexpr size_t kMaxFields = 8;  // one more than any line has (7 for a symlink)

bool needs_escape(unsigned char c) { return c <= 0x20 || c == 0x7f || c == '%'; }

int hex_value_upper(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

int hex_value_lower(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Canonical decimal integers: what std::to_string would print, nothing else ("007", "+1",
// "-0", " 1" and out-of-range values are all rejected).
template <typename T>
bool parse_canonical(std::string_view s, T* out) {
  if (s.empty() || s.size() > 20) return false;
  T v{};
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return false;
  if (std::to_string(v) != s) return false;
  *out = v;
  return true;
}

bool parse_mode(std::string_view s, uint32_t* out) {
  if (s.size() != 4) return false;
  uint32_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '7') return false;
    v = v * 8 + static_cast<uint32_t>(c - '0');
  }
  *out = v;
  return true;
}

bool parse_hex64(std::string_view s, uint64_t* out) {
  if (s.size() != 16) return false;
  uint64_t v = 0;
  for (char c : s) {
    int d = hex_value_lower(c);
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  *out = v;
  return true;
}

char type_char(FileType t) {
  switch (t) {
    case FileType::kRegular: return 'f';
    case FileType::kDirectory: return 'd';
    case FileType::kSymlink: return 'l';
  }
  return '?';
}

bool is_below(std::string_view parent, std::string_view path) {
  return path.size() > parent.size() && path.compare(0, parent.size(), parent) == 0 &&
         path[parent.size()] == '/';
}

// Checks what an entry must satisfy beyond its own fields: strictly increasing canonical
// order and nothing below a non-directory. Returns an empty string when fine.
std::string order_problem(bool have_prev, const std::string& prev, bool prev_is_dir,
                          std::string_view path) {
  if (!have_prev) return {};
  int c = compare_manifest_paths(prev, path);
  if (c == 0) return "duplicate path '" + manifest_escape(path) + "'";
  if (c > 0) {
    return "entries out of order: '" + manifest_escape(path) + "' after '" +
           manifest_escape(prev) + "'";
  }
  if (!prev_is_dir && is_below(prev, path)) {
    return "'" + manifest_escape(path) + "' is below '" + manifest_escape(prev) +
           "', which is not a directory";
  }
  return {};
}

Status write_all(int fd, const char* data, size_t len, const std::string& what) {
  while (len > 0) {
    ssize_t n = ::write(fd, data, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno_status(Error::kLocalIo, "write '" + what + "'", errno);
    }
    data += n;
    len -= static_cast<size_t>(n);
  }
  return Status::ok();
}

std::string parent_dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

// --- Escaping and order ------------------------------------------------------------------

std::string manifest_escape(std::string_view raw) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(raw.size());
  for (char ch : raw) {
    unsigned char c = static_cast<unsigned char>(ch);
    if (needs_escape(c)) {
      out += '%';
      out += kDigits[c >> 4];
      out += kDigits[c & 0x0f];
    } else {
      out += ch;
    }
  }
  return out;
}

bool manifest_unescape(std::string_view text, std::string* out) {
  out->clear();
  out->reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    if (c == '%') {
      if (i + 2 >= text.size()) return false;  // fewer than two characters follow
      int hi = hex_value_upper(text[i + 1]);
      int lo = hex_value_upper(text[i + 2]);
      if (hi < 0 || lo < 0) return false;
      unsigned char decoded = static_cast<unsigned char>(hi * 16 + lo);
      if (!needs_escape(decoded)) return false;  // non-canonical: "%41" for 'A'
      out->push_back(static_cast<char>(decoded));
      i += 2;
    } else {
      if (needs_escape(c)) return false;  // a raw byte that must be escaped
      out->push_back(static_cast<char>(c));
    }
  }
  return true;
}

int compare_manifest_paths(std::string_view a, std::string_view b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    unsigned ca = a[i] == '/' ? 0u : static_cast<unsigned char>(a[i]);
    unsigned cb = b[i] == '/' ? 0u : static_cast<unsigned char>(b[i]);
    if (ca != cb) return ca < cb ? -1 : 1;
  }
  if (a.size() == b.size()) return 0;
  return a.size() < b.size() ? -1 : 1;
}

// --- LineFileReader ----------------------------------------------------------------------

LineFileReader::LineFileReader(UniqueFd fd, std::string path, size_t max_line)
    : fd_(std::move(fd)), path_(std::move(path)), max_line_(max_line) {
  buf_.resize(max_line_ + 1 + 64 * 1024);
}

Result<LineFileReader> LineFileReader::open(const std::string& path, size_t max_line) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno_status(Error::kLocalIo, "open '" + path + "'", errno);
  struct stat st;
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return errno_status(Error::kLocalIo, "open '" + path + "'", EISDIR);
  }
  return LineFileReader(UniqueFd(fd), path, max_line);
}

LineFileReader LineFileReader::from_bytes(std::string bytes, std::string label, size_t max_line) {
  LineFileReader r(UniqueFd(), std::move(label), max_line);
  r.memory_ = std::move(bytes);
  return r;
}

Result<LineFileReader::Read> LineFileReader::next(std::string_view* line, bool* terminated) {
  if (too_long_) return Read::kTooLong;
  while (true) {
    size_t avail = end_ - begin_;
    size_t limit = std::min(avail, max_line_ + 1);
    const char* start = buf_.data() + begin_;
    const void* nl = limit == 0 ? nullptr : std::memchr(start, '\n', limit);
    if (nl != nullptr) {
      size_t len = static_cast<size_t>(static_cast<const char*>(nl) - start);
      *line = std::string_view(start, len);
      *terminated = true;
      begin_ += len + 1;
      ++line_no_;
      return Read::kLine;
    }
    if (avail > max_line_) {
      ++line_no_;
      too_long_ = true;
      return Read::kTooLong;
    }
    if (eof_) {
      if (avail == 0) return Read::kEnd;
      *line = std::string_view(start, avail);
      *terminated = false;
      begin_ = end_;
      ++line_no_;
      return Read::kLine;
    }
    if (begin_ > 0) {
      std::memmove(buf_.data(), buf_.data() + begin_, avail);
      begin_ = 0;
      end_ = avail;
    }
    ssize_t n;
    if (!fd_.valid()) {  // from_bytes: hand out memory_ the way read() would
      n = static_cast<ssize_t>(std::min(buf_.size() - end_, memory_.size() - memory_pos_));
      std::memcpy(buf_.data() + end_, memory_.data() + memory_pos_, static_cast<size_t>(n));
      memory_pos_ += static_cast<size_t>(n);
    } else {
      do {
        n = ::read(fd_.get(), buf_.data() + end_, buf_.size() - end_);
      } while (n < 0 && errno == EINTR);
    }
    if (n < 0) return errno_status(Error::kLocalIo, "read '" + path_ + "'", errno);
    if (n == 0) {
      eof_ = true;
    } else {
      end_ += static_cast<size_t>(n);
    }
  }
}

// --- ManifestWriter ----------------------------------------------------------------------

struct ManifestWriter::Impl {
  std::string path;
  std::string tmp_path;
  UniqueFd fd;
  std::string buf;
  XXH3_state_t state;
  uint64_t count = 0;
  std::string prev_path;
  bool prev_is_dir = false;
  bool have_prev = false;
  bool finished = false;
  Status failed;

  ~Impl() {
    if (!finished && !tmp_path.empty()) {
      fd.reset();
      ::unlink(tmp_path.c_str());
    }
  }

  // Appends a line that counts toward the trailer's checksum.
  Status append_hashed(const std::string& line) {
    XXH3_64bits_update(&state, line.data(), line.size());
    buf += line;
    if (buf.size() >= kWriteBuffer) return flush();
    return Status::ok();
  }

  Status flush() {
    Status st = write_all(fd.get(), buf.data(), buf.size(), tmp_path);
    buf.clear();
    return st;
  }

  Status fail(Status st) {
    if (failed.is_ok()) failed = st;
    return st;
  }
};

ManifestWriter::ManifestWriter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ManifestWriter::ManifestWriter(ManifestWriter&&) noexcept = default;
ManifestWriter& ManifestWriter::operator=(ManifestWriter&&) noexcept = default;
ManifestWriter::~ManifestWriter() = default;

Result<ManifestWriter> ManifestWriter::create(const std::string& path, const std::string& root) {
  if (path.empty()) return Status(Error::kUsage, "empty manifest path");
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  std::string tmp = path + ".tmp";
  int fd;
  do {
    fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return errno_status(Error::kLocalIo, "create manifest '" + tmp + "'", errno);
  impl->fd.reset(fd);
  impl->tmp_path = tmp;  // from here on the destructor removes it
  XXH3_64bits_reset(&impl->state);
  impl->buf.reserve(kWriteBuffer + kMaxManifestLine + 64);
  std::string header = std::string(kManifestMagic) + " " + std::to_string(kManifestVersion) + "\n";
  std::string root_line = "root " + manifest_escape(root) + "\n";
  if (root_line.size() > kMaxManifestLine + 1) {
    return Status(Error::kUsage, "manifest root '" + manifest_escape(root) + "' is too long");
  }
  if (Status st = impl->append_hashed(header); !st) return st;
  if (Status st = impl->append_hashed(root_line); !st) return st;
  return ManifestWriter(std::move(impl));
}

Status ManifestWriter::add(const ManifestEntry& entry) {
  return add(entry.entry, entry.has_hash ? &entry.hash : nullptr);
}

Status ManifestWriter::add(const FileEntry& e, const Hash128* hash) {
  Impl& w = *impl_;
  if (!w.failed.is_ok()) return w.failed;
  if (w.finished) return Status(Error::kInternal, "manifest '" + w.path + "': add after finish");
  const std::string shown = "'" + manifest_escape(e.path) + "'";
  auto usage = [&](const std::string& why) {
    return Status(Error::kUsage, "cannot record " + shown + " in manifest '" + w.path + "': " + why);
  };
  auto internal = [&](const std::string& why) {
    return w.fail(Status(Error::kInternal, "manifest '" + w.path + "': entry " + shown + ": " + why));
  };
  // Entries the format cannot hold are refused without poisoning the writer: the caller may
  // skip them (with a warning) and go on.
  if (Status st = validate_relative_path(e.path); !st) return usage(st.message());
  char t = type_char(e.type);
  if (t == '?') return internal("unknown type");
  if (e.mode > 07777) return internal("mode out of range");
  if (e.type != FileType::kRegular && (e.size != 0 || hash != nullptr)) {
    return internal("a size or hash on a non-regular file");
  }
  if (e.type == FileType::kSymlink) {
    if (e.link_target.empty()) return usage("empty symlink target");
    if (e.link_target.size() > kMaxLinkTargetBytes) return usage("symlink target too long");
    if (e.link_target.find('\0') != std::string::npos) return usage("symlink target has a NUL byte");
  }
  if (std::string why = order_problem(w.have_prev, w.prev_path, w.prev_is_dir, e.path);
      !why.empty()) {
    return internal(why);
  }

  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(e.mode));
  std::string line;
  line.reserve(64 + e.path.size() + e.link_target.size());
  line += t;
  line += ' ';
  line += mode;
  line += ' ';
  line += std::to_string(e.mtime_ns);
  line += ' ';
  line += std::to_string(e.type == FileType::kRegular ? e.size : 0);
  line += ' ';
  line += hash != nullptr ? hash->hex() : std::string("-");
  line += ' ';
  line += manifest_escape(e.path);
  if (e.type == FileType::kSymlink) {
    line += ' ';
    line += manifest_escape(e.link_target);
  }
  if (line.size() > kMaxManifestLine) {
    return usage("its line would exceed " + std::to_string(kMaxManifestLine) + " bytes");
  }
  line += '\n';
  if (Status st = w.append_hashed(line); !st) return w.fail(st);
  w.prev_path = e.path;
  w.prev_is_dir = e.type == FileType::kDirectory;
  w.have_prev = true;
  ++w.count;
  return Status::ok();
}

Status ManifestWriter::finish() {
  Impl& w = *impl_;
  if (!w.failed.is_ok()) return w.failed;
  if (w.finished) return Status(Error::kInternal, "manifest '" + w.path + "': finished twice");
  w.buf += "end " + std::to_string(w.count) + " " + hex64(XXH3_64bits_digest(&w.state)) + "\n";
  if (Status st = w.flush(); !st) return w.fail(st);
  if (::fsync(w.fd.get()) != 0) {
    return w.fail(errno_status(Error::kLocalIo, "fsync '" + w.tmp_path + "'", errno));
  }
  int fd = w.fd.release();
  if (::close(fd) != 0) {
    return w.fail(errno_status(Error::kLocalIo, "close '" + w.tmp_path + "'", errno));
  }
  if (::rename(w.tmp_path.c_str(), w.path.c_str()) != 0) {
    return w.fail(errno_status(Error::kLocalIo,
                               "rename '" + w.tmp_path + "' to '" + w.path + "'", errno));
  }
  w.finished = true;
  // Make the rename durable. Failing here leaves a complete manifest in place, so it is
  // not worth an error.
  int dfd = ::open(parent_dir_of(w.path).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return Status::ok();
}

uint64_t ManifestWriter::entry_count() const { return impl_->count; }
const std::string& ManifestWriter::path() const { return impl_->path; }

// --- ManifestReader ----------------------------------------------------------------------

struct ManifestReader::Impl {
  explicit Impl(LineFileReader l) : lines(std::move(l)) {}

  LineFileReader lines;
  std::string path;
  std::string root;
  XXH3_state_t state;
  uint64_t count = 0;
  std::string prev_path;
  bool prev_is_dir = false;
  bool have_prev = false;
  bool done = false;
  Status failed;

  Status bad(uint64_t line_no, const std::string& what) {
    failed = Status(Error::kUsage,
                    "manifest '" + path + "' line " + std::to_string(line_no) + ": " + what);
    return failed;
  }

  // Reads one complete line. Returns false with `failed` set when there is none; `at_end`
  // tells the caller that the file simply ended (failed is then not set).
  bool read_line(std::string_view* line, bool* at_end) {
    *at_end = false;
    bool terminated = false;
    auto r = lines.next(line, &terminated);
    if (!r) {
      failed = r.status();
      return false;
    }
    switch (*r) {
      case LineFileReader::Read::kTooLong:
        (void)bad(lines.line_number(),
                  "line longer than " + std::to_string(kMaxManifestLine) + " bytes");
        return false;
      case LineFileReader::Read::kEnd:
        *at_end = true;
        return false;
      case LineFileReader::Read::kLine:
        break;
    }
    if (!terminated) {
      (void)bad(lines.line_number(), "last line has no newline (file truncated?)");
      return false;
    }
    return true;
  }

  void hash_line(std::string_view line) {
    XXH3_64bits_update(&state, line.data(), line.size());
    XXH3_64bits_update(&state, "\n", 1);
  }

  Status read_header() {
    std::string_view line;
    bool at_end = false;
    if (!read_line(&line, &at_end)) {
      if (at_end) return bad(1, "empty file, not a ferry manifest");
      return failed;
    }
    const std::string expected =
        std::string(kManifestMagic) + " " + std::to_string(kManifestVersion);
    if (line != expected) {
      const std::string prefix = std::string(kManifestMagic) + " ";
      if (line.size() > prefix.size() && line.substr(0, prefix.size()) == prefix) {
        std::string_view v = line.substr(prefix.size());
        if (v.size() <= 9 &&
            std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
          return bad(1, "unsupported manifest version " + std::string(v) +
                            " (this ferry reads version " + std::to_string(kManifestVersion) +
                            ")");
        }
      }
      return bad(1, "not a ferry manifest (the first line must be '" + expected + "')");
    }
    hash_line(line);
    if (!read_line(&line, &at_end)) {
      if (at_end) return bad(2, "missing 'root' line (file truncated?)");
      return failed;
    }
    if (line.substr(0, 5) != "root ") return bad(2, "expected the 'root' line");
    if (!manifest_unescape(line.substr(5), &root)) return bad(2, "bad escape in the root field");
    hash_line(line);
    return Status::ok();
  }

  Status read_trailer(std::string_view line) {
    uint64_t no = lines.line_number();
    std::string_view f[4];
    size_t n = 0;
    size_t start = 0;
    while (n < 4) {
      size_t sp = line.find(' ', start);
      f[n++] = line.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start);
      if (sp == std::string_view::npos) break;
      start = sp + 1;
    }
    if (n != 3) return bad(no, "bad trailer: expected 'end <count> <checksum>'");
    uint64_t want_count = 0;
    uint64_t want_hash = 0;
    if (!parse_canonical(f[1], &want_count)) return bad(no, "bad trailer: bad entry count");
    if (!parse_hex64(f[2], &want_hash)) return bad(no, "bad trailer: bad checksum field");
    if (want_count != count) {
      return bad(no, "trailer says " + std::to_string(want_count) + " entries but " +
                         std::to_string(count) + " were read (lines removed or added?)");
    }
    if (want_hash != XXH3_64bits_digest(&state)) {
      return bad(no, "checksum mismatch: the manifest was edited or corrupted");
    }
    std::string_view extra;
    bool terminated = false;
    auto r = lines.next(&extra, &terminated);
    if (!r) return failed = r.status();
    if (*r != LineFileReader::Read::kEnd) {
      return bad(no + 1, "data after the trailer");
    }
    return Status::ok();
  }

  Status parse_entry(std::string_view line, ManifestEntry* out) {
    uint64_t no = lines.line_number();
    std::string_view f[kMaxFields];
    size_t n = 0;
    size_t start = 0;
    while (true) {
      if (n == kMaxFields) return bad(no, "too many fields");
      size_t sp = line.find(' ', start);
      std::string_view field =
          line.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start);
      if (field.empty()) return bad(no, "empty field (double, leading or trailing space)");
      f[n++] = field;
      if (sp == std::string_view::npos) break;
      start = sp + 1;
    }
    FileEntry& e = out->entry;
    if (f[0] == "f") {
      e.type = FileType::kRegular;
    } else if (f[0] == "d") {
      e.type = FileType::kDirectory;
    } else if (f[0] == "l") {
      e.type = FileType::kSymlink;
    } else {
      return bad(no, "bad type field (expected f, d, l or the 'end' trailer)");
    }
    size_t want = e.type == FileType::kSymlink ? 7 : 6;
    if (n != want) {
      return bad(no, "expected " + std::to_string(want) + " fields for type " +
                         std::string(f[0]) + ", found " + std::to_string(n));
    }
    if (!parse_mode(f[1], &e.mode)) return bad(no, "bad mode field");
    if (!parse_canonical(f[2], &e.mtime_ns)) return bad(no, "bad mtime field");
    if (!parse_canonical(f[3], &e.size)) return bad(no, "bad size field");
    if (e.type != FileType::kRegular && e.size != 0) {
      return bad(no, "bad size field (must be 0 for a " + std::string(to_string(e.type)) + ")");
    }
    if (f[4] == "-") {
      out->has_hash = false;
      out->hash = Hash128{};
    } else {
      if (e.type != FileType::kRegular) {
        return bad(no, "bad hash field (must be '-' for a " + std::string(to_string(e.type)) + ")");
      }
      if (!Hash128::from_hex(f[4], &out->hash)) return bad(no, "bad hash field");
      out->has_hash = true;
    }
    if (!manifest_unescape(f[5], &e.path)) return bad(no, "bad escape in the path field");
    if (Status st = validate_relative_path(e.path); !st) {
      return bad(no, "bad path field: " + st.message());
    }
    e.link_target.clear();
    if (e.type == FileType::kSymlink) {
      if (!manifest_unescape(f[6], &e.link_target)) {
        return bad(no, "bad escape in the link target field");
      }
      if (e.link_target.size() > kMaxLinkTargetBytes) {
        return bad(no, "bad link target field: longer than " +
                           std::to_string(kMaxLinkTargetBytes) + " bytes");
      }
      if (e.link_target.find('\0') != std::string::npos) {
        return bad(no, "bad link target field: contains a NUL byte");
      }
    }
    e.source_path.clear();
    if (std::string why = order_problem(have_prev, prev_path, prev_is_dir, e.path); !why.empty()) {
      return bad(no, why);
    }
    prev_path = e.path;
    prev_is_dir = e.type == FileType::kDirectory;
    have_prev = true;
    return Status::ok();
  }
};

ManifestReader::ManifestReader(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
ManifestReader::ManifestReader(ManifestReader&&) noexcept = default;
ManifestReader& ManifestReader::operator=(ManifestReader&&) noexcept = default;
ManifestReader::~ManifestReader() = default;

Result<ManifestReader> ManifestReader::open(const std::string& path) {
  auto lines = LineFileReader::open(path, kMaxManifestLine);
  if (!lines) return lines.status();
  return start(std::move(*lines), path);
}

Result<ManifestReader> ManifestReader::from_bytes(std::string bytes, const std::string& label) {
  return start(LineFileReader::from_bytes(std::move(bytes), label, kMaxManifestLine), label);
}

Result<ManifestReader> ManifestReader::start(LineFileReader lines, const std::string& path) {
  auto impl = std::make_unique<Impl>(std::move(lines));
  impl->path = path;
  XXH3_64bits_reset(&impl->state);
  if (Status st = impl->read_header(); !st) return st;
  return ManifestReader(std::move(impl));
}

Result<bool> ManifestReader::next(ManifestEntry* out) {
  Impl& r = *impl_;
  if (!r.failed.is_ok()) return r.failed;
  if (r.done) return false;
  std::string_view line;
  bool at_end = false;
  if (!r.read_line(&line, &at_end)) {
    if (at_end) {
      return r.bad(r.lines.line_number() + 1, "missing trailer 'end' line (file truncated?)");
    }
    return r.failed;
  }
  if (line.substr(0, 4) == "end " || line == "end") {
    if (Status st = r.read_trailer(line); !st) return st;
    r.done = true;
    return false;
  }
  if (Status st = r.parse_entry(line, out); !st) return st;
  r.hash_line(line);
  ++r.count;
  return true;
}

const std::string& ManifestReader::root() const { return impl_->root; }
uint64_t ManifestReader::entries_read() const { return impl_->count; }
const std::string& ManifestReader::path() const { return impl_->path; }

}  // namespace ferry
