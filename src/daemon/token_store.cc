#include "daemon/token_store.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <mutex>

#include "core/log.h"
#include "daemon/config.h"
#include "daemon/toml_subset.h"

namespace ferry::daemon {
namespace {

// Longer "tokens" are not ours; refusing them before hashing bounds the work per attempt.
constexpr size_t kMaxTokenLength = 256;

std::string hex(const uint8_t* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += digits[p[i] >> 4];
    out += digits[p[i] & 15];
  }
  return out;
}

bool unhex(std::string_view text, uint8_t* out, size_t n) {
  if (text.size() != 2 * n) return false;
  auto val = [](char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; };
  for (size_t i = 0; i < n; ++i) {
    int hi = val(text[2 * i]), lo = val(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

std::array<uint8_t, 32> sha256(std::string_view data) {
  std::array<uint8_t, 32> out{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

// A TOML basic string; names loaded from a hand-edited store may hold anything.
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
      continue;
    }
    out += c;
  }
  return out + "\"";
}

Result<TokenRecord> record_from(const TomlDocument& doc, const TomlTable& t) {
  for (const auto& e : t.entries) {
    static const char* known[] = {"id", "name", "sha256", "grants", "created", "expires", "revoked"};
    bool ok = false;
    for (const char* k : known) ok = ok || e.key == k;
    if (!ok) return doc.error_at(e.value.line, "unknown key '" + e.key + "' in [[token]]");
  }
  auto get = [&](const char* key, TomlValue::Kind kind, bool required) -> Result<const TomlValue*> {
    const TomlEntry* e = t.find(key);
    if (!e) {
      if (required) return doc.error_at(t.line, std::string("missing required key '") + key + "' in [[token]]");
      return static_cast<const TomlValue*>(nullptr);
    }
    if (e->value.kind != kind)
      return doc.error_at(e->value.line, std::string("'") + key + "' in [[token]] must be " + to_string(kind));
    return &e->value;
  };
  TokenRecord r;
  auto id = get("id", TomlValue::Kind::kString, true);
  if (!id) return id.status();
  r.id = (*id)->text;
  auto name = get("name", TomlValue::Kind::kString, true);
  if (!name) return name.status();
  r.name = (*name)->text;
  auto hash = get("sha256", TomlValue::Kind::kString, true);
  if (!hash) return hash.status();
  if (!unhex((*hash)->text, r.sha256.data(), r.sha256.size()))
    return doc.error_at((*hash)->line, "'sha256' must be 64 lowercase hex digits");
  auto grants = get("grants", TomlValue::Kind::kStringArray, true);
  if (!grants) return grants.status();
  for (const auto& g : (*grants)->strings) {
    auto grant = parse_grant(g);
    if (!grant) return doc.error_at((*grants)->line, grant.status().message());
    r.grants.push_back(*grant);
  }
  auto created = get("created", TomlValue::Kind::kInteger, true);
  if (!created) return created.status();
  r.created = (*created)->integer;
  auto expires = get("expires", TomlValue::Kind::kInteger, false);
  if (!expires) return expires.status();
  if (*expires) r.expires = (*expires)->integer;
  auto revoked = get("revoked", TomlValue::Kind::kBool, false);
  if (!revoked) return revoked.status();
  if (*revoked) r.revoked = (*revoked)->boolean;
  return r;
}

Status fsync_dir_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return errno_status(Error::kLocalIo, "open directory '" + dir + "'", errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return errno_status(Error::kLocalIo, "fsync directory '" + dir + "'", err);
  return Status::ok();
}

}  // namespace

std::string format_time(int64_t t) {
  char buf[32];
  time_t tt = static_cast<time_t>(t);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

Result<TokenGrant> parse_grant(std::string_view text) {
  size_t colon = text.rfind(':');
  auto bad = [&](const std::string& why) {
    return Status(Error::kUsage, "invalid grant '" + std::string(text) + "': " + why + " (expected EXPORT:r, EXPORT:w or EXPORT:rw)");
  };
  if (colon == std::string_view::npos) return bad("no ':'");
  TokenGrant g;
  g.export_name = std::string(text.substr(0, colon));
  if (!is_safe_export_name(g.export_name)) return bad("'" + g.export_name + "' is not an export name");
  std::string_view mode = text.substr(colon + 1);
  if (mode == "r") g.read = true;
  else if (mode == "w") g.write = true;
  else if (mode == "rw" || mode == "wr") g.read = g.write = true;
  else return bad("unknown mode '" + std::string(mode) + "'");
  return g;
}

std::string to_string(const TokenGrant& g) {
  return g.export_name + ":" + (g.read ? "r" : "") + (g.write ? "w" : "");
}

Result<TokenStore> TokenStore::load(const std::string& path) {
  TokenStore store;
  store.path_ = path;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return store;
    return Status(Error::kUsage, path + ": " + std::strerror(errno));
  }
  auto doc = read_toml_file(path);
  if (!doc) return doc.status();
  for (const auto& t : doc->tables) {
    if (t.name.empty()) {
      if (!t.entries.empty()) return doc->error_at(t.entries[0].value.line, "key '" + t.entries[0].key + "' outside [[token]]");
      continue;
    }
    if (t.name != "token" || !t.array_element) return doc->error_at(t.line, "unknown table " + t.label() + " (expected [[token]])");
    auto r = record_from(*doc, t);
    if (!r) return r.status();
    for (const auto& other : store.tokens_)
      if (other.id == r->id) return doc->error_at(t.line, "duplicate token id '" + r->id + "'");
    store.tokens_.push_back(std::move(*r));
  }
  return store;
}

Result<std::string> TokenStore::add(const std::string& name, std::vector<TokenGrant> grants, int64_t ttl_seconds,
                                    int64_t now) {
  if (!is_safe_export_name(name))
    return Status(Error::kUsage, "token name '" + name + "' must be 1-64 of A-Z a-z 0-9 . _ - (not starting with . or -)");
  if (grants.empty()) return Status(Error::kUsage, "a token needs at least one --grant EXPORT:r|w|rw");
  for (const auto& t : tokens_)
    if (t.name == name && !t.revoked)
      return Status(Error::kUsage, "a token named '" + name + "' already exists (id " + t.id + "); revoke it first");
  uint8_t secret[32];
  uint8_t id[4];
  std::string id_hex;
  do {
    if (RAND_bytes(id, sizeof id) != 1) return Status(Error::kInternal, "no randomness for a token id");
    id_hex = hex(id, sizeof id);
  } while ([&] {
    for (const auto& t : tokens_)
      if (t.id == id_hex) return true;
    return false;
  }());
  if (RAND_bytes(secret, sizeof secret) != 1) return Status(Error::kInternal, "no randomness for a token");
  std::string token = std::string(kTokenPrefix) + hex(secret, sizeof secret);
  OPENSSL_cleanse(secret, sizeof secret);
  TokenRecord r;
  r.id = id_hex;
  r.name = name;
  r.sha256 = sha256(token);
  r.grants = std::move(grants);
  r.created = now;
  r.expires = ttl_seconds > 0 ? now + ttl_seconds : 0;
  tokens_.push_back(std::move(r));
  return token;
}

Result<TokenRecord> TokenStore::revoke(const std::string& id_or_name) {
  TokenRecord* found = nullptr;
  for (auto& t : tokens_)
    if (t.id == id_or_name) found = &t;
  if (!found)
    for (auto& t : tokens_)
      if (t.name == id_or_name && !t.revoked) found = &t;
  if (!found) return Status(Error::kUsage, "no token with id or name '" + id_or_name + "' in " + path_);
  found->revoked = true;
  return *found;
}

Status TokenStore::save() const {
  std::string text =
      "# ferryd token store: managed by `ferryd token new|list|revoke`; see ferryd.toml(5).\n"
      "# It holds SHA-256 hashes of tokens, never the tokens themselves.\n";
  for (const auto& t : tokens_) {
    text += "\n[[token]]\nid = " + quoted(t.id) + "\nname = " + quoted(t.name) + "\nsha256 = \"" +
            hex(t.sha256.data(), t.sha256.size()) + "\"\ngrants = [";
    for (size_t i = 0; i < t.grants.size(); ++i) text += (i ? ", \"" : "\"") + to_string(t.grants[i]) + "\"";
    text += "]\ncreated = " + std::to_string(t.created) + "  # " + format_time(t.created) + "\n";
    if (t.expires) text += "expires = " + std::to_string(t.expires) + "  # " + format_time(t.expires) + "\n";
    text += std::string("revoked = ") + (t.revoked ? "true" : "false") + "\n";
  }
  size_t slash = path_.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path_.substr(0, slash);
  std::string tmp = path_ + ".tmp-XXXXXX";
  std::vector<char> name(tmp.begin(), tmp.end());
  name.push_back('\0');
  int fd = ::mkostemp(name.data(), O_CLOEXEC);  // mode 0600
  if (fd < 0) return errno_status(Error::kLocalIo, "create a temporary file beside '" + path_ + "'", errno);
  tmp = name.data();
  auto fail = [&](const std::string& what) {
    Status st = errno_status(Error::kLocalIo, what + " '" + tmp + "'", errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    return st;
  };
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return fail("write");
    off += static_cast<size_t>(n);
  }
  if (::fchmod(fd, 0600) != 0) return fail("chmod");
  struct stat dst {};
  if (::stat(dir.c_str(), &dst) == 0 && dst.st_uid != ::geteuid()) {
    // Only root can give the file away; anyone else keeps it (and then owns the directory
    // or can write to it anyway).
    if (::fchown(fd, dst.st_uid, dst.st_gid) != 0 && errno != EPERM) return fail("chown");
  }
  if (::fsync(fd) != 0) return fail("fsync");
  if (::close(fd) != 0) {
    Status st = errno_status(Error::kLocalIo, "close '" + tmp + "'", errno);
    ::unlink(tmp.c_str());
    return st;
  }
  if (::rename(tmp.c_str(), path_.c_str()) != 0) {
    Status st = errno_status(Error::kLocalIo, "rename '" + tmp + "' to '" + path_ + "'", errno);
    ::unlink(tmp.c_str());
    return st;
  }
  return fsync_dir_of(path_);
}

Result<std::vector<ExportAccess>> TokenStore::verify(std::string_view token, int64_t now) const {
  if (token.empty()) return Status(Error::kRefused, "no token given");
  if (token.size() > kMaxTokenLength) return Status(Error::kRefused, "unknown token");
  std::array<uint8_t, 32> h = sha256(token);
  // Every stored hash is compared, in constant time, so timing tells nothing about which
  // (if any) matched or how many bytes did.
  const TokenRecord* match = nullptr;
  for (const auto& t : tokens_) {
    bool equal = CRYPTO_memcmp(h.data(), t.sha256.data(), h.size()) == 0;
    if (equal) match = &t;
  }
  if (!match) return Status(Error::kRefused, "unknown token");
  if (match->revoked) return Status(Error::kRefused, "token '" + match->name + "' (" + match->id + ") is revoked");
  if (match->expires != 0 && now >= match->expires)
    return Status(Error::kRefused,
                  "token '" + match->name + "' (" + match->id + ") expired at " + format_time(match->expires));
  std::vector<ExportAccess> access;
  for (const auto& g : match->grants) access.push_back(ExportAccess{g.export_name, g.read, g.write});
  return access;
}

TokenVerifier make_token_verifier(const std::string& path) {
  // Shared by every copy of the verifier (it is called from the receiver's threads).
  struct State {
    std::mutex mu;
    std::string path;
    bool loaded = false;
    struct stat identity {};
    std::shared_ptr<const TokenStore> store;  // null: unreadable, refuse everyone
    std::string broken_reason;
  };
  auto state = std::make_shared<State>();
  state->path = path;
  return [state](std::string_view token) -> Result<std::vector<ExportAccess>> {
    std::shared_ptr<const TokenStore> store;
    {
      std::lock_guard lock(state->mu);
      struct stat st {};
      bool exists = ::stat(state->path.c_str(), &st) == 0;
      if (!exists) st = {};
      bool changed = !state->loaded || st.st_ino != state->identity.st_ino || st.st_dev != state->identity.st_dev ||
                     st.st_size != state->identity.st_size || st.st_mtim.tv_sec != state->identity.st_mtim.tv_sec ||
                     st.st_mtim.tv_nsec != state->identity.st_mtim.tv_nsec;
      if (changed) {
        state->loaded = true;
        state->identity = st;
        auto loaded = TokenStore::load(state->path);
        if (loaded) {
          state->store = std::make_shared<const TokenStore>(std::move(*loaded));
          state->broken_reason.clear();
        } else {
          state->store = nullptr;
          state->broken_reason = loaded.status().message();
          log::event(log::Level::kError, "token store unreadable: refusing every token until it is fixed",
                     {{"cause", state->broken_reason}});
        }
      }
      store = state->store;
    }
    if (!store) return Status(Error::kRefused, "the server cannot check tokens right now (see its log)");
    return store->verify(token, static_cast<int64_t>(::time(nullptr)));
  };
}

Result<int> lock_token_store(const std::string& path) {
  std::string lock_path = path + ".lock";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return errno_status(Error::kLocalIo, "open lock file '" + lock_path + "'", errno);
  while (::flock(fd, LOCK_EX) != 0) {
    if (errno == EINTR) continue;
    Status st = errno_status(Error::kLocalIo, "lock '" + lock_path + "'", errno);
    ::close(fd);
    return st;
  }
  return fd;
}

}  // namespace ferry::daemon
