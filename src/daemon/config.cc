#include "daemon/config.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <string_view>

#include "core/units.h"
#include "daemon/duration.h"
#include "ferry/url.h"
#include "s3/multipart_uploader.h"
#include "s3/s3_url.h"

namespace ferry::daemon {
namespace {

// Typed, checked access to one table. Every getter reports "FILE:LINE: cause" at the line
// of the offending key; a missing required key is reported at the table's header.
class TableReader {
 public:
  TableReader(const TomlDocument& doc, const TomlTable& table) : doc_(doc), table_(table) {}

  // Unknown keys first: a typo ("rote") is the likely cause of a "missing" one ("root").
  Status only_keys(std::initializer_list<std::string_view> allowed) const {
    for (const auto& e : table_.entries)
      if (std::find(allowed.begin(), allowed.end(), e.key) == allowed.end())
        return doc_.error_at(e.value.line, "unknown key '" + e.key + "' in " + table_.label());
    return Status::ok();
  }

  const TomlEntry* typed(std::string_view key, TomlValue::Kind kind, Status* st) const {
    const TomlEntry* e = table_.find(key);
    if (e && e->value.kind != kind)
      *st = doc_.error_at(e->value.line, "'" + std::string(key) + "' in " + table_.label() + " must be " +
                                             to_string(kind) + ", not " + to_string(e->value.kind));
    return *st ? e : nullptr;
  }

  Status required(std::string_view key) const {
    if (table_.find(key)) return Status::ok();
    return doc_.error_at(table_.line, "missing required key '" + std::string(key) + "' in " + table_.label());
  }

  Status string(std::string_view key, std::string* out) const {
    Status st;
    if (const TomlEntry* e = typed(key, TomlValue::Kind::kString, &st)) *out = e->value.text;
    return st;
  }
  Status boolean(std::string_view key, bool* out) const {
    Status st;
    if (const TomlEntry* e = typed(key, TomlValue::Kind::kBool, &st)) *out = e->value.boolean;
    return st;
  }
  Status strings(std::string_view key, std::vector<std::string>* out) const {
    Status st;
    if (const TomlEntry* e = typed(key, TomlValue::Kind::kStringArray, &st)) *out = e->value.strings;
    return st;
  }
  Status integer(std::string_view key, int64_t min, int64_t max, int64_t* out) const {
    Status st;
    const TomlEntry* e = typed(key, TomlValue::Kind::kInteger, &st);
    if (!e) return st;
    if (e->value.integer < min || e->value.integer > max)
      return bad(key, "must be between " + std::to_string(min) + " and " + std::to_string(max));
    *out = e->value.integer;
    return Status::ok();
  }

  // An error about the value of `key` (which is present), at its line.
  Status bad(std::string_view key, const std::string& cause) const {
    const TomlEntry* e = table_.find(key);
    return doc_.error_at(e ? e->value.line : table_.line, "'" + std::string(key) + "' in " + table_.label() + ": " + cause);
  }
  bool has(std::string_view key) const { return table_.find(key) != nullptr; }

 private:
  const TomlDocument& doc_;
  const TomlTable& table_;
};

// "reason" if `path` is not an absolute path to something of the wanted kind, else "".
std::string check_path(const std::string& path, bool want_dir, bool must_exist) {
  if (path.empty() || path[0] != '/') return "must be an absolute path, not '" + path + "'";
  if (!must_exist) return "";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "'" + path + "': " + std::strerror(errno);
  if (want_dir && !S_ISDIR(st.st_mode)) return "'" + path + "' is not a directory";
  if (!want_dir && !S_ISREG(st.st_mode)) return "'" + path + "' is not a regular file";
  if (::access(path.c_str(), R_OK) != 0) return "'" + path + "' is not readable: " + std::strerror(errno);
  return "";
}

Status read_server(const TableReader& t, ServerConfig* s) {
  if (Status st = t.only_keys({"listen", "udp_ports", "state_dir", "log_level", "memory", "max_sessions",
                               "session_rate_cap", "total_rate_cap", "shutdown_grace", "io"});
      !st)
    return st;
  if (t.has("listen")) {
    if (Status st = t.strings("listen", &s->listen); !st) return st;
    if (s->listen.empty()) return t.bad("listen", "needs at least one HOST:PORT");
    for (size_t i = 0; i < s->listen.size(); ++i) {
      std::string host;
      uint16_t port = 0;
      if (Status st = parse_host_port(s->listen[i], &host, &port); !st) return t.bad("listen", st.message());
      // The daemon binds addresses, not names: a name would be resolved once, at start.
      unsigned char buf[sizeof(in6_addr)];
      if (inet_pton(AF_INET, host.c_str(), buf) != 1 && inet_pton(AF_INET6, host.c_str(), buf) != 1)
        return t.bad("listen", "'" + host + "' is not an IP address (use 0.0.0.0, [::] or an address of this host)");
      for (size_t j = 0; j < i; ++j)
        if (s->listen[j] == s->listen[i]) return t.bad("listen", "'" + s->listen[i] + "' is listed twice");
    }
  }
  if (Status st = t.string("udp_ports", &s->udp_ports); !st) return st;
  if (!s->udp_ports.empty()) {
    unsigned first = 0, last = 0;
    char tail = 0;
    if (std::sscanf(s->udp_ports.c_str(), "%u-%u%c", &first, &last, &tail) != 2 || first == 0 || last > 65535 ||
        first > last)
      return t.bad("udp_ports", "expected FIRST-LAST with 1 <= FIRST <= LAST <= 65535, not '" + s->udp_ports + "'");
    s->udp_first = static_cast<uint16_t>(first);
    s->udp_last = static_cast<uint16_t>(last);
  }
  if (Status st = t.string("state_dir", &s->state_dir); !st) return st;
  if (std::string why = check_path(s->state_dir, true, false); !why.empty()) return t.bad("state_dir", why);
  std::string level = "info";
  if (Status st = t.string("log_level", &level); !st) return st;
  if (level == "error") s->log_level = log::Level::kError;
  else if (level == "warning") s->log_level = log::Level::kWarning;
  else if (level == "info") s->log_level = log::Level::kInfo;
  else if (level == "debug") s->log_level = log::Level::kDebug;
  else return t.bad("log_level", "must be error, warning, info or debug, not '" + level + "'");
  std::string text;
  if (t.has("memory")) {
    if (Status st = t.string("memory", &text); !st) return st;
    auto v = parse_size(text);
    if (!v) return t.bad("memory", v.status().message());
    if (*v < (4u << 20)) return t.bad("memory", "must be at least 4M");
    s->memory = *v;
  }
  int64_t n = s->max_sessions;
  if (Status st = t.integer("max_sessions", 1, 100'000, &n); !st) return st;
  s->max_sessions = static_cast<uint32_t>(n);
  for (auto [key, out] : {std::pair<const char*, uint64_t*>{"session_rate_cap", &s->session_rate_cap},
                          {"total_rate_cap", &s->total_rate_cap}}) {
    if (!t.has(key)) continue;
    if (Status st = t.string(key, &text); !st) return st;
    auto bits = parse_bit_rate(text);
    if (!bits) return t.bad(key, bits.status().message());
    *out = *bits / 8;
    if (*bits != 0 && *out == 0) return t.bad(key, "below one byte per second");
  }
  if (t.has("shutdown_grace")) {
    if (Status st = t.string("shutdown_grace", &text); !st) return st;
    auto d = parse_duration(text);
    if (!d) return t.bad("shutdown_grace", d.status().message());
    if (*d > std::chrono::hours(1)) return t.bad("shutdown_grace", "longer than 1h");
    s->shutdown_grace = *d;
  }
  if (t.has("io")) {
    if (Status st = t.string("io", &text); !st) return st;
    auto mode = parse_io_mode(text, "io");
    if (!mode) return t.bad("io", "must be auto, posix or uring, not '" + text + "'");
    s->io = *mode;
  }
  return Status::ok();
}

Status read_tls(const TableReader& t, TlsConfig* tls) {
  if (Status st = t.only_keys({"cert", "key", "client_ca", "plaintext"}); !st) return st;
  for (auto [key, out] : {std::pair<const char*, std::string*>{"cert", &tls->cert}, {"key", &tls->key},
                          {"client_ca", &tls->client_ca}}) {
    if (Status st = t.string(key, out); !st) return st;
    if (!out->empty())
      if (std::string why = check_path(*out, false, true); !why.empty()) return t.bad(key, why);
  }
  if (Status st = t.boolean("plaintext", &tls->plaintext); !st) return st;
  if (tls->plaintext && (!tls->cert.empty() || !tls->key.empty() || !tls->client_ca.empty()))
    return t.bad("plaintext", "plaintext = true cannot be combined with cert, key or client_ca");
  return Status::ok();
}

Status read_export(const TableReader& t, const std::vector<ExportConfig>& earlier, ExportConfig* e) {
  if (Status st = t.only_keys({"name", "path", "type", "bucket", "prefix", "endpoint", "region", "path_style",
                               "part_size"});
      !st)
    return st;
  if (Status st = t.required("name"); !st) return st;
  if (Status st = t.string("type", &e->type); !st) return st;
  if (e->type == "dir") e->type = "fs";
  if (e->type != "fs" && e->type != "s3") return t.bad("type", "must be \"fs\" (or \"dir\") or \"s3\", not '" + e->type + "'");
  if (Status st = t.string("name", &e->name); !st) return st;
  if (!is_safe_export_name(e->name))
    return t.bad("name", "'" + e->name + "' is not a safe export name (1-64 of A-Z a-z 0-9 . _ -, not starting with . or -)");
  for (const auto& other : earlier)
    if (other.name == e->name) return t.bad("name", "duplicate export name '" + e->name + "'");
  if (!e->is_s3()) {
    for (const char* key : {"bucket", "prefix", "endpoint", "region", "path_style", "part_size"})
      if (t.has(key)) return t.bad(key, "only for type = \"s3\" exports");
    if (Status st = t.required("path"); !st) return st;
    if (Status st = t.string("path", &e->path); !st) return st;
    while (e->path.size() > 1 && e->path.back() == '/') e->path.pop_back();
    if (std::string why = check_path(e->path, true, true); !why.empty()) return t.bad("path", why);
    return Status::ok();
  }
  // An S3 export: checked here without any network I/O (credentials and the bucket are
  // first used by the first session, whose files fail with the store's answer if need be).
  if (t.has("path")) return t.bad("path", "an s3 export has no path (its objects go to bucket/prefix)");
  if (Status st = t.required("bucket"); !st) return st;
  if (Status st = t.string("bucket", &e->bucket); !st) return st;
  if (Status st = t.string("prefix", &e->prefix); !st) return st;
  if (e->bucket.find('/') != std::string::npos) return t.bad("bucket", "'" + e->bucket + "' is not a bucket name (put the rest in prefix)");
  if (auto b = s3::parse_s3_url("s3://" + e->bucket); !b) return t.bad("bucket", b.status().message());
  auto target = s3::parse_s3_url("s3://" + e->bucket + "/" + e->prefix);
  if (!target) return t.bad("prefix", target.status().message());
  e->prefix = target->prefix;
  if (Status st = t.string("endpoint", &e->endpoint); !st) return st;
  if (!e->endpoint.empty())
    if (auto ep = s3::parse_endpoint(e->endpoint); !ep) return t.bad("endpoint", ep.status().message());
  if (Status st = t.string("region", &e->region); !st) return st;
  if (Status st = t.boolean("path_style", &e->path_style); !st) return st;
  if (t.has("part_size")) {
    std::string text;
    if (Status st = t.string("part_size", &text); !st) return st;
    auto v = parse_size(text);
    if (!v) return t.bad("part_size", v.status().message());
    if (*v < s3::kMinPartSize || *v > s3::kMaxPartSize) return t.bad("part_size", "must be between 5M and 4G");
    e->part_size = *v;
  }
  return Status::ok();
}

}  // namespace

bool is_safe_export_name(const std::string& name) {
  if (name.empty() || name.size() > 64 || name[0] == '.' || name[0] == '-') return false;
  for (char c : name) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<DaemonConfig> config_from_toml(const TomlDocument& doc) {
  DaemonConfig c;
  c.file = doc.file;
  for (const TomlTable& table : doc.tables) {
    TableReader t(doc, table);
    if (table.name.empty()) {
      if (!table.entries.empty())
        return doc.error_at(table.entries[0].value.line,
                            "key '" + table.entries[0].key + "' must be inside a table such as [server]");
    } else if (table.name == "server") {
      if (Status st = read_server(t, &c.server); !st) return st;
    } else if (table.name == "tls" && !table.array_element) {
      if (Status st = read_tls(t, &c.tls); !st) return st;
    } else if (table.name == "export" && table.array_element) {
      ExportConfig e;
      if (Status st = read_export(t, c.exports, &e); !st) return st;
      c.exports.push_back(std::move(e));
    } else if (table.name == "tokens" && !table.array_element) {
      if (Status st = t.only_keys({"file"}); !st) return st;
      if (Status st = t.string("file", &c.tokens_file); !st) return st;
      if (std::string why = check_path(c.tokens_file, false, false); !why.empty()) return t.bad("file", why);
    } else if (table.name == "metrics" && !table.array_element) {
      if (Status st = t.only_keys({"listen"}); !st) return st;
      if (Status st = t.required("listen"); !st) return st;
      if (Status st = t.string("listen", &c.metrics_listen); !st) return st;
      std::string host;
      uint16_t port = 0;
      if (Status st = parse_host_port(c.metrics_listen, &host, &port); !st) return t.bad("listen", st.message());
      // The endpoint has no authentication: keep it off the network.
      if (host != "127.0.0.1" && host != "::1" && host != "localhost")
        return t.bad("listen", "must be a loopback address (127.0.0.1 or [::1]): /metrics has no authentication");
    } else if (table.name == "export") {
      return doc.error_at(table.line, "exports are declared as [[export]] (an array of tables), not [export]");
    } else {
      return doc.error_at(table.line, "unknown table " + table.label() +
                                          " (expected [server], [tls], [[export]], [tokens] or [metrics])");
    }
  }
  if (c.exports.empty()) return doc.error_at(1, "no [[export]]: ferryd would have nothing to serve");
  if (!c.tls.plaintext && (c.tls.cert.empty() || c.tls.key.empty()))
    return doc.error_at(1, "[tls] needs cert and key (or plaintext = true, for tests and trusted networks only)");
  if (c.tokens_file.empty()) c.tokens_file = c.server.state_dir + "/tokens.toml";
  return c;
}

Result<DaemonConfig> load_config(const std::string& path) {
  auto doc = read_toml_file(path);
  if (!doc) return doc.status();
  return config_from_toml(*doc);
}

namespace {
std::string quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

const char* level_text(log::Level l) {
  switch (l) {
    case log::Level::kError: return "error";
    case log::Level::kWarning: return "warning";
    case log::Level::kDebug: return "debug";
    default: return "info";
  }
}
}  // namespace

std::string to_toml(const DaemonConfig& c) {
  const ServerConfig& s = c.server;
  std::string out = "[server]\nlisten = [";
  for (size_t i = 0; i < s.listen.size(); ++i) out += (i ? ", " : "") + quoted(s.listen[i]);
  out += "]\n";
  if (!s.udp_ports.empty()) out += "udp_ports = " + quoted(s.udp_ports) + "\n";
  out += "state_dir = " + quoted(s.state_dir) + "\n";
  out += std::string("log_level = \"") + level_text(s.log_level) + "\"\n";
  out += "memory = \"" + std::to_string(s.memory) + "\"\n";
  out += "max_sessions = " + std::to_string(s.max_sessions) + "\n";
  // Rates are kept in bytes/s; "B/s" says so to parse_bit_rate.
  out += "session_rate_cap = \"" + std::to_string(s.session_rate_cap) + "B/s\"\n";
  out += "total_rate_cap = \"" + std::to_string(s.total_rate_cap) + "B/s\"\n";
  out += "shutdown_grace = \"" + std::to_string(s.shutdown_grace.count()) + "ms\"\n";
  out += std::string("io = \"") + to_string(s.io) + "\"\n\n[tls]\n";
  if (c.tls.plaintext) {
    out += "plaintext = true\n";
  } else {
    out += "cert = " + quoted(c.tls.cert) + "\nkey = " + quoted(c.tls.key) + "\n";
    if (!c.tls.client_ca.empty()) out += "client_ca = " + quoted(c.tls.client_ca) + "\n";
  }
  for (const auto& e : c.exports) {
    out += "\n[[export]]\nname = " + quoted(e.name) + "\ntype = " + quoted(e.type) + "\n";
    if (!e.is_s3()) {
      out += "path = " + quoted(e.path) + "\n";
      continue;
    }
    out += "bucket = " + quoted(e.bucket) + "\nprefix = " + quoted(e.prefix) + "\n";
    if (!e.endpoint.empty()) out += "endpoint = " + quoted(e.endpoint) + "\n";
    if (!e.region.empty()) out += "region = " + quoted(e.region) + "\n";
    out += std::string("path_style = ") + (e.path_style ? "true" : "false") + "\n";
    if (e.part_size) out += "part_size = \"" + std::to_string(e.part_size) + "\"\n";
  }
  out += "\n[tokens]\nfile = " + quoted(c.tokens_file) + "\n";
  if (!c.metrics_listen.empty()) out += "\n[metrics]\nlisten = " + quoted(c.metrics_listen) + "\n";
  return out;
}

}  // namespace ferry::daemon
