#include "s3/upload_journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "codec/hash.h"

namespace ferry::s3 {
namespace {

constexpr const char* kMagic = "ferry-s3-upload";

// Fields are percent-encoded so a key or path with blanks or newlines stays on one line.
std::string enc(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (c <= 0x20 || c == '%' || c == 0x7f) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

bool dec(const std::string& s, std::string* out) {
  out->clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out->push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return false;
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data() + i + 1, s.data() + i + 3, v, 16);
    if (ec != std::errc() || p != s.data() + i + 3) return false;
    out->push_back(static_cast<char>(v));
    i += 2;
  }
  return true;
}

std::string line_check(const std::string& body) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(xxh3_64(body.data(), body.size())));
  return buf;
}

Status write_all(int fd, const std::string& s, const std::string& path) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(fd, s.data() + off, s.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status(Error::kLocalIo, "write '" + path + "'", errno);
    off += static_cast<size_t>(n);
  }
  return Status::ok();
}

Status make_dirs(const std::string& dir) {
  std::string cur;
  std::stringstream ss(dir);
  std::string part;
  if (!dir.empty() && dir[0] == '/') cur = "/";
  while (std::getline(ss, part, '/')) {
    if (part.empty()) continue;
    cur += part + "/";
    if (::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST)
      return errno_status(Error::kLocalIo, "create state directory '" + cur + "'", errno);
  }
  return Status::ok();
}

template <class T>
bool num(const std::string& s, T* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

// Parses the whole text. Header errors fail; a bad part line ends the list there.
Result<UploadJournalState> parse(const std::string& text, const std::string& path) {
  auto bad = [&](const std::string& why) {
    return Status(Error::kProtocol, "S3 upload journal '" + path + "' is unreadable: " + why);
  };
  std::istringstream in(text);
  std::string line;
  UploadJournalState st;
  if (!std::getline(in, line) || line != std::string(kMagic) + " " + std::to_string(kUploadJournalVersion))
    return bad("not a version " + std::to_string(kUploadJournalVersion) + " journal");
  bool header_done = false;
  int fields = 0;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    std::string tag;
    ls >> tag;
    if (!header_done) {
      std::string v, d;
      ls >> v;
      if (tag == "checksum") {  // optional, so version 1 journals without it still read
        if (v != "md5" && v != "crc32c") return bad("unknown checksum algorithm '" + v + "'");
        st.checksum = v;
        continue;
      }
      if (tag == "header-check") {
        if (fields != 9) return bad("incomplete header");
        header_done = true;
        continue;
      }
      if (!dec(v, &d)) return bad("bad escape in '" + tag + "'");
      bool ok = true;
      if (tag == "endpoint") st.endpoint = d;
      else if (tag == "bucket") st.bucket = d;
      else if (tag == "key") st.key = d;
      else if (tag == "source") st.source = d;
      else if (tag == "size") ok = num(d, &st.size);
      else if (tag == "mtime_ns") ok = num(d, &st.mtime_ns);
      else if (tag == "part_size") ok = num(d, &st.part_size);
      else if (tag == "upload_id") st.upload_id = d;
      else if (tag == "created_unix") ok = num(d, &st.created_unix);
      else return bad("unknown header field '" + tag + "'");
      if (!ok) return bad("bad number in '" + tag + "'");
      ++fields;
      continue;
    }
    // part <number> <etag> <md5> <check>: check = XXH3-64 of "part <number> <etag> <md5>".
    if (tag != "part") break;
    std::string n, etag, md5, check;
    ls >> n >> etag >> md5 >> check;
    std::string body = "part " + n + " " + etag + " " + md5;
    uint32_t number = 0;
    JournalPart p;
    if (check != line_check(body) || !num(n, &number) || number < 1 || number > 10000 || !dec(etag, &p.etag)) break;
    p.md5_b64 = md5;
    st.parts[number] = p;
  }
  if (!header_done) return bad("truncated header");
  if (st.upload_id.empty() || st.part_size == 0) return bad("no upload id or part size");
  return st;
}

Result<std::string> read_fd(int fd, const std::string& path) {
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno_status(Error::kLocalIo, "read '" + path + "'", errno);
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    if (text.size() > (16u << 20)) return Status(Error::kProtocol, "S3 upload journal '" + path + "' is too large");
  }
  return text;
}

Status lock_journal(int fd, const std::string& path) {
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return Status::ok();
  if (errno == EWOULDBLOCK)
    return Status(Error::kRefused, "another ferry process is running this upload (journal '" + path + "' is locked)");
  return errno_status(Error::kLocalIo, "lock '" + path + "'", errno);
}

}  // namespace

UploadJournal::UploadJournal(std::string path, int fd, UploadJournalState state)
    : path_(std::move(path)), fd_(fd), state_(std::move(state)) {}

UploadJournal::~UploadJournal() {
  if (fd_ >= 0) ::close(fd_);
}

std::string UploadJournal::default_state_dir() {
  const char* xdg = std::getenv("XDG_STATE_HOME");
  if (xdg && *xdg) return std::string(xdg) + "/ferry/s3";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/state/ferry/s3";
}

std::string UploadJournal::path_for(const std::string& dir, const std::string& endpoint, const std::string& bucket,
                                    const std::string& key, const std::string& source) {
  std::string id = endpoint + '\0' + bucket + '\0' + key + '\0' + source;
  return dir + "/" + xxh3_128(id.data(), id.size()).hex() + ".upload";
}

Result<std::unique_ptr<UploadJournal>> UploadJournal::open_existing(const std::string& path, bool* absent) {
  *absent = false;
  int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) {
    *absent = true;
    return std::unique_ptr<UploadJournal>();
  }
  if (fd < 0) return errno_status(Error::kLocalIo, "open '" + path + "'", errno);
  if (Status st = lock_journal(fd, path); !st) {
    ::close(fd);
    return st;
  }
  auto text = read_fd(fd, path);
  if (!text) {
    ::close(fd);
    return text.status();
  }
  auto state = parse(*text, path);
  if (!state) {
    ::close(fd);
    return state.status();
  }
  // Appends go after the last good record: cut a torn tail so new lines are not glued to it.
  size_t good = text->size();
  {
    // Re-serialise the known-good prefix length: header + parts that parsed.
    size_t pos = text->find("header-check");
    pos = text->find('\n', pos);
    size_t end = pos == std::string::npos ? text->size() : pos + 1;
    size_t count = 0;
    while (end < text->size() && count < state->parts.size()) {
      size_t nl = text->find('\n', end);
      if (nl == std::string::npos) break;
      end = nl + 1;
      ++count;
    }
    good = end;
  }
  if (good != text->size() && ::ftruncate(fd, static_cast<off_t>(good)) != 0) {
    int e = errno;
    ::close(fd);
    return errno_status(Error::kLocalIo, "truncate '" + path + "'", e);
  }
  ::lseek(fd, 0, SEEK_END);
  return std::unique_ptr<UploadJournal>(new UploadJournal(path, fd, std::move(*state)));
}

Result<std::unique_ptr<UploadJournal>> UploadJournal::create(const std::string& path, const UploadJournalState& h) {
  std::string dir = path.substr(0, path.rfind('/'));
  if (Status st = make_dirs(dir); !st) return st;
  std::string text = std::string(kMagic) + " " + std::to_string(kUploadJournalVersion) + "\n";
  text += "endpoint " + enc(h.endpoint) + "\nbucket " + enc(h.bucket) + "\nkey " + enc(h.key) + "\nsource " +
          enc(h.source) + "\nsize " + std::to_string(h.size) + "\nmtime_ns " + std::to_string(h.mtime_ns) +
          "\npart_size " + std::to_string(h.part_size) + "\nupload_id " + enc(h.upload_id) + "\ncreated_unix " +
          std::to_string(h.created_unix) + "\n" + (h.checksum == "crc32c" ? "checksum crc32c\n" : "") +
          "header-check\n";
  std::string tmp = path + ".tmp" + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return errno_status(Error::kLocalIo, "create '" + tmp + "'", errno);
  Status st = lock_journal(fd, tmp);
  if (st) st = write_all(fd, text, tmp);
  if (st && ::fsync(fd) != 0) st = errno_status(Error::kLocalIo, "fsync '" + tmp + "'", errno);
  if (st && ::rename(tmp.c_str(), path.c_str()) != 0) st = errno_status(Error::kLocalIo, "rename to '" + path + "'", errno);
  if (!st) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return st;
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  UploadJournalState s = h;
  s.parts.clear();
  return std::unique_ptr<UploadJournal>(new UploadJournal(path, fd, std::move(s)));
}

Result<UploadJournalState> UploadJournal::read(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return errno_status(Error::kLocalIo, "open '" + path + "'", errno);
  auto text = read_fd(fd, path);
  ::close(fd);
  if (!text) return text.status();
  return parse(*text, path);
}

std::vector<std::pair<std::string, UploadJournalState>> UploadJournal::list(const std::string& dir) {
  std::vector<std::pair<std::string, UploadJournalState>> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() < 8 || name.compare(name.size() - 7, 7, ".upload") != 0) continue;
    std::string p = dir + "/" + name;
    if (auto s = read(p)) out.emplace_back(p, std::move(*s));
  }
  ::closedir(d);
  return out;
}

Status UploadJournal::record_part(uint32_t number, const JournalPart& part) {
  std::string body = "part " + std::to_string(number) + " " + enc(part.etag) + " " + part.md5_b64;
  std::string line = body + " " + line_check(body) + "\n";
  std::lock_guard lock(mu_);
  if (Status st = write_all(fd_, line, path_); !st) return st;
  if (::fdatasync(fd_) != 0) return errno_status(Error::kLocalIo, "fdatasync '" + path_ + "'", errno);
  state_.parts[number] = part;
  return Status::ok();
}

Status UploadJournal::remove() {
  std::lock_guard lock(mu_);
  if (::unlink(path_.c_str()) != 0 && errno != ENOENT) return errno_status(Error::kLocalIo, "remove '" + path_ + "'", errno);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  return Status::ok();
}

}  // namespace ferry::s3
