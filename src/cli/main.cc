// ferry: the command line. The only code that reads argv; everything else is libferry.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <thread>
#include <tuple>

#include "codec/chunk_codec.h"
#include "core/log.h"
#include "core/units.h"
#include "io/file_io.h"
#include "ferry/get.h"
#include "ferry/receiver.h"
#include "ferry/sender.h"
#include "manifest/manifest_ops.h"
#include "protocol/frames.h"
#include "s3/s3_transfer.h"
#include "session/process_limits.h"

namespace {

using namespace ferry;

int fail(const Status& st) {
  log::error(st.message());
  return exit_code(st.code());
}

// One progress line on stderr, rewritten in place.
void print_progress(const Progress& p) {
  if (p.reconnecting) {
    std::fprintf(stderr, "\rconnection lost: reconnecting...%40s", "");
    std::fflush(stderr);
    return;
  }
  double pct = p.bytes_total ? 100.0 * static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total) : 0;
  double rate = p.seconds > 0 ? static_cast<double>(p.wire_bytes) / p.seconds : 0;
  if (p.bytes_total == 0 && p.files_total == 0) {  // ferry get: the total is the server's to know
    std::fprintf(stderr, "\rreceived %s  files %llu  %s/s   ", format_bytes(p.bytes_done).c_str(),
                 static_cast<unsigned long long>(p.files_done), format_bytes(static_cast<uint64_t>(rate)).c_str());
    std::fflush(stderr);
    return;
  }
  std::fprintf(stderr, "\r%5.1f%%  %s / %s  files %llu/%llu  wire %s/s", pct, format_bytes(p.bytes_done).c_str(),
               format_bytes(p.bytes_total).c_str(), static_cast<unsigned long long>(p.files_done),
               static_cast<unsigned long long>(p.files_total), format_bytes(static_cast<uint64_t>(rate)).c_str());
  if (p.udp)
    std::fprintf(stderr, " (%.0f Mbit/s)  rtt %.1f ms  loss %.2f%%  resent %s", rate * 8 / 1e6, p.rtt_ms, p.loss * 100,
                 format_bytes(p.retransmitted_bytes).c_str());
  std::fprintf(stderr, "   ");
  std::fflush(stderr);
}

void print_text_summary(const TransferReport& r) {
  double mbps = r.seconds > 0 ? static_cast<double>(r.bytes_on_disk) / r.seconds / 1e6 : 0;
  std::printf("sent %llu files (%s) in %.2f s, %.1f MB/s; on the wire %s; skipped %llu, failed %llu, chunks resent %llu\n",
              static_cast<unsigned long long>(r.files_sent), format_bytes(r.bytes_on_disk).c_str(), r.seconds, mbps,
              format_bytes(r.bytes_on_wire).c_str(), static_cast<unsigned long long>(r.files_skipped),
              static_cast<unsigned long long>(r.files_failed), static_cast<unsigned long long>(r.chunks_resent));
  if (r.bytes_resumed > 0 || r.reconnects > 0)
    std::printf("resumed %s already on the receiver; reconnected %llu times\n", format_bytes(r.bytes_resumed).c_str(),
                static_cast<unsigned long long>(r.reconnects));
  if (r.udp.used) {
    const UdpReport& u = r.udp;
    std::printf("udp (%s): rtt %.1f ms (min %.1f), %llu of %llu datagrams lost, %s resent (%s redundant)\n",
                u.policy.c_str(), u.srtt_ms, u.min_rtt_ms, static_cast<unsigned long long>(u.packets_lost),
                static_cast<unsigned long long>(u.packets_sent), format_bytes(u.retransmitted_bytes).c_str(),
                format_bytes(u.redundant_bytes).c_str());
  }
  if (r.is_sync) {
    const SyncCounts& c = r.sync;
    std::printf("sync%s: send %llu (%s), update %llu (%s), delete %llu, skip %llu\n", c.dry_run ? " (dry run)" : "",
                static_cast<unsigned long long>(c.send), format_bytes(c.send_bytes).c_str(),
                static_cast<unsigned long long>(c.update), format_bytes(c.update_bytes).c_str(),
                static_cast<unsigned long long>(c.remove), static_cast<unsigned long long>(c.skip));
  }
}

// --dry-run: one line per planned change (skips only with -v).
void print_plan(const TransferReport& r, bool verbose) {
  for (const auto& f : r.files) {
    if (f.action == "skip" && !verbose) continue;
    std::printf("%-6s %s\n", f.action.c_str(), f.path.c_str());
  }
}

Status parse_size_flag(const char* flag, const std::string& text, uint64_t* out) {
  if (text.empty()) return Status::ok();
  auto v = parse_size(text);
  if (!v) return Status(Error::kUsage, std::string(flag) + ": " + v.status().message());
  *out = *v;
  return Status::ok();
}

void set_verbosity(bool quiet, int verbose) {
  if (quiet) log::set_level(log::Level::kError);
  else if (verbose >= 2) log::set_level(log::Level::kDebug);
  else if (verbose == 1) log::set_level(log::Level::kInfo);
  else log::set_level(log::Level::kWarning);
}

// --include/--exclude keep their command-line order (the first matching rule wins), which
// CLI11 does not preserve across two options: read them from argv directly.
std::vector<PathRule> filter_rules_from(int argc, char** argv) {
  std::vector<PathRule> rules;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    for (auto [flag, include] : {std::pair{"--include", true}, std::pair{"--exclude", false}}) {
      std::string f = flag;
      if (a == f && i + 1 < argc) rules.push_back({include, argv[++i]});
      else if (a.rfind(f + "=", 0) == 0) rules.push_back({include, a.substr(f.size() + 1)});
    }
  }
  return rules;
}

// TEST-ONLY FAULT: FERRY_TEST_UDP_FAULTS="drop=0.05,dup=0.05,reorder=0.05,seed=7" makes the UDP
// datagrams this process sends go through the seeded fault shim (DatagramFaults).
Status udp_faults_from_env(DatagramFaults* out) {
  const char* env = std::getenv("FERRY_TEST_UDP_FAULTS");
  if (!env || !*env) return Status::ok();
  std::string text = env;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    size_t eq = item.find('=');
    if (eq == std::string::npos) return Status(Error::kUsage, "FERRY_TEST_UDP_FAULTS: '" + item + "' is not KEY=VALUE");
    std::string key = item.substr(0, eq);
    double v = std::strtod(item.c_str() + eq + 1, nullptr);
    if (key == "drop") out->drop = v;
    else if (key == "dup") out->duplicate = v;
    else if (key == "reorder") out->reorder = v;
    else if (key == "seed") out->seed = static_cast<uint64_t>(v);
    else return Status(Error::kUsage, "FERRY_TEST_UDP_FAULTS: unknown key '" + key + "'");
    pos = end + 1;
  }
  return Status::ok();
}

// Options shared by `send` and `sync`.
struct TransferFlags {
  SendOptions so;
  std::string chunk_text, memory_text, overwrite = "diff";
  std::vector<std::string> includes, excludes;  // parsed by CLI11 for --help; order from argv
  bool json = false, quiet = false, progress_on = false, progress_off = false;
  int verbose = 0;
  int streams = 4;
  double retry_seconds = 180;
  std::string transport = "tcp", target_rate_text, min_rate_text;
  int mtu = 1500;
  std::string io = "auto";

  void add_to(CLI::App* app, bool with_overwrite) {
    app->add_option("--streams", streams, "parallel TCP data connections (default 4)")->check(CLI::Range(1, 64));
    app->add_option("--transport", transport, "tcp (parallel TCP streams) or udp (paced, encrypted datagrams; default tcp)")
        ->check(CLI::IsMember({"tcp", "udp"}));
    app->add_option("--target-rate", target_rate_text, "udp: the most to send, in bits/s (e.g. 800M; default: what the path allows)");
    app->add_option("--min-rate", min_rate_text, "udp: never pace below this, in bits/s (e.g. 50M)");
    app->add_option("--policy", so.policy, "udp bandwidth policy: fixed, high, fair or low (default fair)")
        ->check(CLI::IsMember({"fixed", "high", "fair", "low"}));
    app->add_option("--mtu", mtu, "udp: path MTU in bytes; datagrams carry MTU-28 bytes (default 1500)")
        ->check(CLI::Range(540, 65535));
    app->add_option("--chunk-size", chunk_text, "chunk size, 64K..64M (default 4M)");
    app->add_option("--compress", so.compress, "auto, none or a zstd level 1..19 (default auto)");
    if (with_overwrite)
      app->add_option("--overwrite", overwrite, "always, never or diff (default diff)")
          ->check(CLI::IsMember({"always", "never", "diff"}));
    app->add_option("--memory", memory_text, "budget for all buffers in flight (default 256M)");
    app->add_option("--io", io, "file I/O backend: auto, posix (pread) or uring (io_uring) (default auto)")
        ->check(CLI::IsMember({"auto", "posix", "uring"}));
    app->add_flag("-L,--follow-symlinks", so.follow_symlinks, "send what symlinks point to instead of the links");
    // One PATTERN per occurrence, so a rule never swallows the SRC arguments after it.
    app->add_option("--include", includes, "include paths matching PATTERN (rsync-like; repeatable, in order)")
        ->allow_extra_args(false);
    app->add_option("--exclude", excludes, "exclude paths matching PATTERN (rsync-like; repeatable, in order)")
        ->allow_extra_args(false);
    app->add_option("--resume", so.resume, "trust in partial files of an interrupted run: off, attrs, sparse or full (default sparse)")
        ->check(CLI::IsMember({"off", "attrs", "sparse", "full"}));
    app->add_option("--transfer-id", so.transfer_id, "name of the transfer for resume (default: derived from the sources and destination)");
    app->add_option("--retry-timeout", retry_seconds, "seconds to keep reconnecting after a lost connection (default 180)")
        ->check(CLI::Range(0.0, 86400.0));
    app->add_option("--token", so.token, "bearer token (default: the URL's token=, else $FERRY_TOKEN)");
    app->add_option("--fingerprint", so.tls.fingerprint, "pin the receiver's certificate: sha256:HEX (default: the URL's fp=)");
    app->add_option("--ca-file", so.tls.ca_file, "verify the receiver's certificate against this CA bundle (PEM)");
    app->add_option("--cert", so.tls.cert_file, "client certificate for mutual TLS (PEM)");
    app->add_option("--key", so.tls.key_file, "private key of --cert (PEM)");
    app->add_flag("--insecure", so.tls.insecure, "TESTS ONLY: do not verify the receiver at all");
    app->add_flag("--plaintext", so.tls.plaintext, "no TLS: only against `ferry recv --plaintext`; anyone on the path can read the data");
    app->add_flag("--json", json, "print a JSON summary on stdout");
    app->add_flag("--progress", progress_on, "show progress on stderr (default when stderr is a terminal)");
    app->add_flag("--no-progress", progress_off, "never show progress");
    app->add_flag("-q,--quiet", quiet, "print errors only");
    app->add_flag("-v,--verbose", verbose, "more detail on stderr (repeat for debug)");
  }

  // Turns the flags into SendOptions; a usage error names the flag. `url` is the
  // destination (its token= wins over $FERRY_TOKEN, --token over both).
  Status finish(int argc, char** argv, const FerryUrl& url) {
    set_verbosity(quiet, verbose);
    auto io_mode = parse_io_mode(io, "--io");
    if (!io_mode) return io_mode.status();
    configure_file_io(*io_mode);
    if (so.token.empty() && url.token.empty())
      if (const char* t = std::getenv("FERRY_TOKEN")) so.token = t;
    if (so.tls.insecure && so.tls.plaintext) return Status(Error::kUsage, "--insecure and --plaintext exclude each other");
    // Loud on every run, whatever -q says: this is for tests only.
    if (so.tls.insecure)
      std::fprintf(stderr, "WARNING: --insecure: the receiver's identity is NOT verified; anyone on the path can "
                           "impersonate it, read and change this transfer. For tests only.\n");
    if (so.tls.plaintext)
      std::fprintf(stderr, "WARNING: --plaintext: no encryption; the data and the token cross the network in the clear.\n");
    so.streams = static_cast<uint16_t>(streams);
    so.retry_timeout = std::chrono::milliseconds(static_cast<int64_t>(retry_seconds * 1000));
    so.overwrite = overwrite == "always" ? Overwrite::kAlways : overwrite == "never" ? Overwrite::kNever : Overwrite::kDiff;
    uint64_t chunk = so.chunk_size;
    if (Status st = parse_size_flag("--chunk-size", chunk_text, &chunk); !st) return st;
    if (chunk > UINT32_MAX) return Status(Error::kUsage, "--chunk-size must be between 64K and 64M");
    so.chunk_size = static_cast<uint32_t>(chunk);
    if (Status st = parse_size_flag("--memory", memory_text, &so.memory); !st) return st;
    so.filters = filter_rules_from(argc, argv);
    so.transport = transport == "udp" ? Transport::kUdp : Transport::kTcp;
    for (auto [flag, text, out] : {std::tuple{"--target-rate", &target_rate_text, &so.target_rate},
                                   std::tuple{"--min-rate", &min_rate_text, &so.min_rate}}) {
      if (text->empty()) continue;
      auto r = parse_bit_rate(*text);
      if (!r) return Status(Error::kUsage, std::string(flag) + ": " + r.status().message());
      *out = *r / 8;  // the library takes bytes/s
    }
    so.max_datagram = static_cast<uint16_t>(std::min(mtu - 28, 65507));
    if (transport != "udp" && (!target_rate_text.empty() || !min_rate_text.empty()))
      return Status(Error::kUsage, "--target-rate and --min-rate need --transport udp");
    if (Status st = udp_faults_from_env(&so.udp_faults); !st) return st;
    // TEST-ONLY FAULT (kill -9 at a seeded point): see SendOptions::fault_sigkill_after_chunks.
    if (const char* k = std::getenv("FERRY_TEST_SIGKILL_AFTER_CHUNKS")) so.fault_sigkill_after_chunks = std::strtoull(k, nullptr, 10);
    if (!quiet && !progress_off && (progress_on || isatty(STDERR_FILENO))) so.on_progress = print_progress;
    return validate_send_options(so);
  }
};

int report_and_exit(const TransferReport& report, const TransferFlags& f) {
  if (f.so.on_progress) std::fprintf(stderr, "\n");
  if (f.json) std::printf("%s\n", report.to_json().c_str());
  else if (!f.quiet && (report.status.is_ok() || report.status.code() == Error::kPartial)) print_text_summary(report);
  if (!report.status.is_ok()) log::error(report.status.message());
  return report.exit_code();
}

int run_recv(ReceiveOptions ro, const std::string& memory_text, bool quiet, int verbose, const std::string& io) {
  set_verbosity(quiet, verbose);
  auto io_mode = parse_io_mode(io, "--io");
  if (!io_mode) return fail(io_mode.status());
  configure_file_io(*io_mode);
  if (Status st = parse_size_flag("--memory", memory_text, &ro.memory); !st) return fail(st);
  if (ro.memory < (4u << 20)) return fail(Status(Error::kUsage, "--memory must be at least 4M"));
  // TEST-ONLY FAULT (kill -9 at a seeded point): see ReceiveOptions::fault_sigkill_after_chunks.
  if (const char* k = std::getenv("FERRY_TEST_SIGKILL_AFTER_CHUNKS")) ro.fault_sigkill_after_chunks = std::strtoull(k, nullptr, 10);
  if (Status st = udp_faults_from_env(&ro.udp_faults); !st) return fail(st);
  // SIGINT/SIGTERM stop the receiver cleanly: unfinished files are kept for resume or
  // discarded, never left under their final names.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGUSR1);  // wakes the signal thread when run() returns
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  auto receiver = Receiver::create(ro);
  if (!receiver) return fail(receiver.status());
  if (ro.tls.plaintext)
    std::fprintf(stderr, "WARNING: --plaintext: no encryption and no token; anyone who can reach this port can write to %s.\n",
                 ro.root.c_str());
  std::printf("%s\n", (*receiver)->url().c_str());
  std::fflush(stdout);
  Receiver* r = receiver->get();
  std::atomic<bool> interrupted{false};
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == SIGUSR1) return;
    interrupted = true;
    r->stop();
  });
  Status st = r->run();
  pthread_kill(signal_thread.native_handle(), SIGUSR1);
  signal_thread.join();
  if (interrupted) return exit_code(Error::kInterrupted);
  if (!st) log::error(st.message());
  return exit_code(st.code());
}

// --- ferry get / ferry ls ---------------------------------------------------------------
// A source URL as typed: a trailing '/' on its path (before any ?query) means "the contents".
Result<GetSource> get_source(const std::string& text) {
  auto url = parse_ferry_url(text);
  if (!url) return url.status();
  std::string raw = text.substr(0, text.find('?'));
  return GetSource{*url, !raw.empty() && raw.back() == '/'};
}

int run_get(const std::vector<std::string>& args, TransferFlags& f, int argc, char** argv) {
  std::vector<GetSource> sources;
  for (size_t i = 0; i + 1 < args.size(); ++i) {
    auto s = get_source(args[i]);
    if (!s) return fail(s.status());
    sources.push_back(*s);
  }
  if (Status st = f.finish(argc, argv, sources[0].url); !st) return fail(st);
  if (!f.so.filters.empty() || f.so.follow_symlinks)
    return fail(Status(Error::kUsage, "--include, --exclude and -L apply to send and sync, not to get"));
  TransferReport r = get_files(sources, args.back(), f.so);
  if (f.so.on_progress) std::fprintf(stderr, "\n");
  if (f.json) {
    std::printf("%s\n", r.to_json().c_str());
  } else if (!f.quiet && (r.status.is_ok() || r.status.code() == Error::kPartial)) {
    double mbps = r.seconds > 0 ? static_cast<double>(r.bytes_on_disk) / r.seconds / 1e6 : 0;
    std::printf("received %llu files (%s) in %.2f s, %.1f MB/s; failed %llu, chunks resumed %llu\n",
                static_cast<unsigned long long>(r.files_sent), format_bytes(r.bytes_on_disk).c_str(), r.seconds, mbps,
                static_cast<unsigned long long>(r.files_failed), static_cast<unsigned long long>(r.chunks_resumed));
  }
  if (!r.status.is_ok()) log::error(r.status.message());
  return r.exit_code();
}

std::string iso_utc(int64_t ns) {
  std::time_t t = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  char buf[32] = "?";
  if (gmtime_r(&t, &tm)) std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// "drwxr-xr-x": the type letter and the permission bits.
std::string mode_text(const RemoteEntry& e) {
  std::string m = e.type == "directory" ? "d" : e.type == "symlink" ? "l" : "-";
  const char* rwx = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) m += (e.mode & (0400u >> i)) ? rwx[i] : '-';
  if (e.mode & 04000) m[3] = m[3] == 'x' ? 's' : 'S';
  if (e.mode & 02000) m[6] = m[6] == 'x' ? 's' : 'S';
  if (e.mode & 01000) m[9] = m[9] == 'x' ? 't' : 'T';
  return m;
}

int run_ls(const std::string& text, TransferFlags& f, bool long_format, bool recursive, bool json, int argc,
           char** argv) {
  auto url = parse_ferry_url(text);
  if (!url) return fail(url.status());
  f.progress_off = true;
  if (Status st = f.finish(argc, argv, *url); !st) return fail(st);
  auto entries = list_remote(*url, recursive, f.so);
  if (!entries) return fail(entries.status());
  if (json) {
    std::string out = "[";
    for (size_t i = 0; i < entries->size(); ++i) {
      const auto& e = (*entries)[i];
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", e.mode & 07777);
      out += std::string(i ? "," : "") + "{\"path\":\"" + json_escape(e.path) + "\",\"type\":\"" + e.type +
             "\",\"mode\":\"" + mode + "\",\"size\":" + std::to_string(e.size) + ",\"mtime\":\"" +
             iso_utc(e.mtime_ns) + "\",\"mtime_ns\":" + std::to_string(e.mtime_ns);
      if (e.type == "symlink") out += ",\"link_target\":\"" + json_escape(e.link_target) + "\"";
      out += "}";
    }
    std::printf("%s]\n", out.c_str());
    return 0;
  }
  for (const auto& e : *entries) {
    if (!long_format) {
      std::printf("%s\n", e.path.c_str());
      continue;
    }
    std::printf("%s %14llu %s %s%s\n", mode_text(e).c_str(), static_cast<unsigned long long>(e.size),
                iso_utc(e.mtime_ns).c_str(), e.path.c_str(), e.type == "symlink" ? (" -> " + e.link_target).c_str() : "");
  }
  return 0;
}

// Progress of manifest hashing on stderr.
ManifestProgress manifest_progress(bool show) {
  if (!show) return nullptr;
  return [](uint64_t files, uint64_t bytes) {
    std::fprintf(stderr, "\r%llu files, %s hashed   ", static_cast<unsigned long long>(files), format_bytes(bytes).c_str());
    std::fflush(stderr);
  };
}

// --- S3 destinations (s3://BUCKET/PREFIX/): flags, `ferry s3 uploads` --------------------
struct S3Flags {
  s3::S3Options o;
  std::string part_size_text;
  std::string checksum = "md5";

  void add_to(CLI::App* app, bool transfer) {
    app->add_option("--endpoint", o.endpoint, "S3-compatible endpoint URL, e.g. http://127.0.0.1:9000 (default: AWS)");
    app->add_flag("--path-style", o.path_style, "address buckets as https://HOST/BUCKET/ instead of https://BUCKET.HOST/");
    app->add_option("--region", o.region, "S3 region (default: AWS_REGION, the profile's region, us-east-1)");
    app->add_option("--state-dir", o.state_dir, "where S3 upload journals live (default $XDG_STATE_HOME/ferry/s3)");
    if (!transfer) return;
    app->add_option("--part-size", part_size_text, "S3 multipart part size, 5M..4G (default: 16M, more for huge files)");
    app->add_option("--s3-concurrency", o.concurrency, "S3 requests in flight (default 8)")->check(CLI::Range(1, 256));
    app->add_option("--checksum-algorithm", checksum, "per-part S3 integrity header: md5 (Content-MD5, default) or crc32c")
        ->check(CLI::IsMember({"md5", "crc32c"}));
  }

  Status finish() {
    if (Status st = parse_size_flag("--part-size", part_size_text, &o.part_size); !st) return st;
    o.checksum = checksum == "crc32c" ? s3::ChecksumAlgorithm::kCrc32c : s3::ChecksumAlgorithm::kMd5;
    return Status::ok();
  }
};

// "7d", "12h", "30m", "45s" or plain seconds.
Result<std::chrono::seconds> parse_age(const std::string& text) {
  if (text.empty()) return Status(Error::kUsage, "--abort-older-than: empty duration");
  size_t end = 0;
  unsigned long long v = 0;
  try {
    v = std::stoull(text, &end);
  } catch (...) {
    return Status(Error::kUsage, "--abort-older-than '" + text + "': expected a number with s, m, h or d");
  }
  std::string unit = text.substr(end);
  uint64_t mult = unit.empty() || unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
  if (mult == 0) return Status(Error::kUsage, "--abort-older-than '" + text + "': unknown unit (use s, m, h or d)");
  return std::chrono::seconds(static_cast<int64_t>(v * mult));
}

int run_s3_uploads(const std::string& url, S3Flags& f, const std::string& abort_text, bool json) {
  auto target = s3::parse_s3_url(url);
  if (!target) return fail(target.status());
  std::optional<std::chrono::seconds> age;
  if (!abort_text.empty()) {
    auto a = parse_age(abort_text);
    if (!a) return fail(a.status());
    age = *a;
  }
  auto r = s3::list_uploads(*target, f.o, age);
  if (!r) return fail(r.status());
  if (!r->server_can_list)
    log::warning("the store does not implement ListMultipartUploads: only uploads journaled on this machine are shown");
  bool any_error = false;
  std::string j = "{\"uploads\":[";
  for (size_t i = 0; i < r->uploads.size(); ++i) {
    const auto& u = r->uploads[i];
    char when[32] = "?";
    std::time_t t = static_cast<std::time_t>(u.initiated_unix);
    std::tm tm{};
    if (u.initiated_unix && gmtime_r(&t, &tm)) std::strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    any_error |= !u.error.empty();
    if (json) {
      j += std::string(i ? "," : "") + "{\"key\":\"" + json_escape(u.key) + "\",\"upload_id\":\"" + json_escape(u.upload_id) +
           "\",\"initiated\":\"" + when + "\",\"origin\":\"" + u.origin + "\",\"aborted\":" + (u.aborted ? "true" : "false") +
           ",\"error\":\"" + json_escape(u.error) + "\"}";
    } else {
      std::printf("%s  %s  %s  %s%s\n", when, u.origin.c_str(), u.upload_id.c_str(), u.key.c_str(),
                  u.aborted ? "  (aborted)" : u.error.empty() ? "" : ("  (abort failed: " + u.error + ")").c_str());
    }
  }
  if (json) std::printf("%s],\"server_can_list\":%s}\n", j.c_str(), r->server_can_list ? "true" : "false");
  return any_error ? exit_code(Error::kPartial) : 0;
}
// --- end S3 --------------------------------------------------------------------------------

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ferry: fast, checksummed transfer of files and trees"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("ferry 0.2.0 (protocol ") + std::to_string(protocol::kMaxVersion) + ")");

  // ferry send
  auto* send = app.add_subcommand("send", "send files and directories to a ferry receiver");
  std::vector<std::string> send_args;
  TransferFlags sf;
  send->add_option("SRC...DEST", send_args, "files/directories to send, then ferry://HOST[:PORT]/DEST or s3://BUCKET/PREFIX/")
      ->required()
      ->expected(1, -1);
  sf.add_to(send, true);
  send->add_option("--manifest", sf.so.manifest_path, "send exactly the files this manifest lists (relative to SRC, or to its root line)");
  send->add_option("--files-from", sf.so.files_from, "send exactly the paths listed in FILE, one per line, relative to SRC");
  S3Flags send_s3;
  send_s3.add_to(send, true);

  // ferry sync
  auto* sync = app.add_subcommand("sync", "make DEST a copy of SRC's contents (one-way mirror)");
  std::string sync_src, sync_dest;
  TransferFlags yf;
  SyncOptions sync_opts;
  sync->add_option("SRC", sync_src, "source directory")->required();
  sync->add_option("DEST", sync_dest, "ferry://HOST[:PORT]/DEST or s3://BUCKET/PREFIX/")->required();
  yf.add_to(sync, false);
  sync->add_flag("--delete", sync_opts.delete_extraneous, "delete destination files that are not in SRC (never excluded ones)");
  sync->add_flag("-n,--dry-run", sync_opts.dry_run, "print the planned actions and change nothing");
  sync->add_flag("-c,--checksum", sync_opts.checksum, "compare file contents (XXH3-128) instead of size and mtime");
  S3Flags sync_s3;
  sync_s3.add_to(sync, true);

  // ferry get / ferry ls (the server sends; docs/protocol.md "Roles")
  auto* get = app.add_subcommand("get", "download files and directories from a ferry server into LOCAL_DIR");
  std::vector<std::string> get_args;
  TransferFlags gf;
  get->add_option("SRC...LOCAL_DIR", get_args, "ferry://HOST[:PORT]/EXPORT/PATH... (a trailing / takes a directory's contents), then LOCAL_DIR")
      ->required()
      ->expected(2, -1);
  gf.add_to(get, true);
  auto* ls = app.add_subcommand("ls", "list a directory or file on a ferry server");
  std::string ls_url;
  bool ls_long = false, ls_recursive = false, ls_json = false, ls_quiet = false;
  ls->add_option("URL", ls_url, "ferry://HOST[:PORT]/EXPORT/PATH")->required();
  ls->add_flag("-l", ls_long, "long format: type and mode, size, mtime (UTC), path, -> link target");
  ls->add_flag("-R,--recursive", ls_recursive, "list the whole tree");
  ls->add_flag("--json", ls_json, "print a JSON array");
  TransferFlags lf;  // only the connection flags are used
  ls->add_option("--token", lf.so.token, "bearer token (default: the URL's token=, else $FERRY_TOKEN)");
  ls->add_option("--fingerprint", lf.so.tls.fingerprint, "pin the server's certificate: sha256:HEX (default: the URL's fp=)");
  ls->add_option("--ca-file", lf.so.tls.ca_file, "verify the server's certificate against this CA bundle (PEM)");
  ls->add_option("--cert", lf.so.tls.cert_file, "client certificate for mutual TLS (PEM)");
  ls->add_option("--key", lf.so.tls.key_file, "private key of --cert (PEM)");
  ls->add_flag("--insecure", lf.so.tls.insecure, "TESTS ONLY: do not verify the server at all");
  ls->add_flag("--plaintext", lf.so.tls.plaintext, "no TLS: only against `ferry recv --plaintext`");
  ls->add_flag("-q,--quiet", ls_quiet, "print errors only");

  // ferry s3 uploads
  auto* s3cmd = app.add_subcommand("s3", "S3 housekeeping");
  s3cmd->require_subcommand(1);
  auto* s3uploads = s3cmd->add_subcommand("uploads", "list (and abort) unfinished multipart uploads under s3://BUCKET/PREFIX/");
  std::string s3uploads_url, s3uploads_abort;
  bool s3uploads_json = false, s3uploads_quiet = false;
  S3Flags uploads_s3;
  s3uploads->add_option("URL", s3uploads_url, "s3://BUCKET/PREFIX/")->required();
  s3uploads->add_option("--abort-older-than", s3uploads_abort, "abort uploads started longer ago than this (7d, 12h, 30m, 0s)");
  s3uploads->add_flag("--json", s3uploads_json, "print the list as JSON");
  s3uploads->add_flag("-q,--quiet", s3uploads_quiet, "print errors only");
  uploads_s3.add_to(s3uploads, false);

  // ferry recv
  auto* recv = app.add_subcommand("recv", "run a receiver in the foreground");
  ReceiveOptions ro;
  std::string recv_memory_text;
  bool recv_quiet = false;
  int recv_verbose = 0;
  recv->add_option("--listen", ro.listen, "IP[:PORT] to listen on (default 127.0.0.1:7400; port 0 = any free)");
  recv->add_option("--root", ro.root, "directory that receives the files (created if missing)")->required();
  recv->add_flag("--once", ro.once, "exit after the first transfer, with its exit status");
  recv->add_option("--memory", recv_memory_text, "budget for all receive buffers (default 256M)");
  std::string recv_io = "auto";
  recv->add_option("--io", recv_io, "file I/O backend: auto, posix (pwrite) or uring (io_uring) (default auto)")
      ->check(CLI::IsMember({"auto", "posix", "uring"}));
  recv->add_flag("--plaintext", ro.tls.plaintext, "no TLS and no token (senders need --plaintext too)");
  recv->add_option("--cert", ro.tls.cert_file, "TLS certificate chain (PEM; default: an ephemeral self-signed one)");
  recv->add_option("--key", ro.tls.key_file, "private key of --cert (PEM)");
  recv->add_option("--client-ca", ro.tls.client_ca_file, "require client certificates signed by this CA (mutual TLS)");
  recv->add_flag("-q,--quiet", recv_quiet, "print errors only");
  recv->add_flag("-v,--verbose", recv_verbose, "more detail on stderr (repeat for debug)");

  // ferry manifest / verify
  auto* manifest = app.add_subcommand("manifest", "write a manifest of DIR: paths, sizes, mtimes, modes, XXH3-128 hashes");
  std::string manifest_dir, manifest_out;
  bool manifest_quiet = false;
  manifest->add_option("DIR", manifest_dir, "directory to describe")->required();
  manifest->add_option("-o,--output", manifest_out, "manifest file to write")->required();
  manifest->add_flag("-q,--quiet", manifest_quiet, "no progress");
  auto* verify = app.add_subcommand("verify", "re-hash DIR and compare it with a manifest");
  std::string verify_dir, verify_manifest;
  bool verify_quiet = false, verify_json = false;
  verify->add_option("DIR", verify_dir, "directory to check")->required();
  verify->add_option("--manifest", verify_manifest, "manifest to compare with")->required();
  verify->add_flag("-q,--quiet", verify_quiet, "print differences only");
  verify->add_flag("--json", verify_json, "print the result as JSON");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : exit_code(Error::kUsage);
  }

  if (send->parsed()) {
    const bool to_s3 = s3::is_s3_url(send_args.back());
    FerryUrl url;
    if (!to_s3) {
      auto parsed = parse_ferry_url(send_args.back());
      if (!parsed) return fail(parsed.status());
      url = *parsed;
    }
    if (Status st = sf.finish(argc, argv, url); !st) return fail(st);
    std::vector<std::string> sources(send_args.begin(), send_args.end() - 1);
    if (sources.empty() && sf.so.manifest_path.empty())
      return fail(Status(Error::kUsage, "nothing to send: give SRC... before the destination URL"));
    if (s3::is_s3_url(send_args.back())) {  // S3 destination
      auto target = s3::parse_s3_url(send_args.back());
      if (!target) return fail(target.status());
      if (Status st = send_s3.finish(); !st) return fail(st);
      return report_and_exit(s3::send_files(sources, *target, send_s3.o, sf.so), sf);
    }
    return report_and_exit(send_files(sources, url, sf.so), sf);
  }

  if (sync->parsed()) {
    TransferReport report;
    if (s3::is_s3_url(sync_dest)) {  // S3 destination
      if (Status st = yf.finish(argc, argv, FerryUrl{}); !st) return fail(st);
      auto target = s3::parse_s3_url(sync_dest);
      if (!target) return fail(target.status());
      if (Status st = sync_s3.finish(); !st) return fail(st);
      report = s3::sync_tree(sync_src, *target, sync_s3.o, yf.so, sync_opts);
    } else {
      auto url = parse_ferry_url(sync_dest);
      if (!url) return fail(url.status());
      if (Status st = yf.finish(argc, argv, *url); !st) return fail(st);
      report = sync_tree(sync_src, *url, yf.so, sync_opts);
    }
    if (sync_opts.dry_run && report.status.is_ok() && !yf.json) print_plan(report, yf.verbose > 0);
    return report_and_exit(report, yf);
  }

  if (get->parsed()) return run_get(get_args, gf, argc, argv);
  if (ls->parsed()) {
    lf.quiet = ls_quiet;
    return run_ls(ls_url, lf, ls_long, ls_recursive, ls_json, argc, argv);
  }

  if (recv->parsed()) return run_recv(ro, recv_memory_text, recv_quiet, recv_verbose, recv_io);

  if (s3uploads->parsed()) {
    set_verbosity(s3uploads_quiet, 0);
    return run_s3_uploads(s3uploads_url, uploads_s3, s3uploads_abort, s3uploads_json);
  }

  if (manifest->parsed()) {
    set_verbosity(manifest_quiet, 0);
    bool show = !manifest_quiet && isatty(STDERR_FILENO);
    Status st = create_manifest(manifest_dir, manifest_out, manifest_progress(show),
                                [](const std::string& m) { log::warning(m); });
    if (show) std::fprintf(stderr, "\n");
    if (!st) return fail(st);
    if (!manifest_quiet) std::printf("wrote %s\n", manifest_out.c_str());
    return 0;
  }

  if (verify->parsed()) {
    set_verbosity(verify_quiet, 0);
    bool show = !verify_quiet && !verify_json && isatty(STDERR_FILENO);
    auto r = verify_tree(verify_dir, verify_manifest, manifest_progress(show),
                         [](const std::string& m) { log::warning(m); });
    if (show) std::fprintf(stderr, "\n");
    if (!r) return fail(r.status());
    bool ok = r->missing.empty() && r->extra.empty() && r->mismatched.empty();
    if (verify_json) {
      auto list = [](const std::vector<std::string>& v) {
        std::string s = "[";
        for (size_t i = 0; i < v.size(); ++i) s += (i ? ",\"" : "\"") + json_escape(v[i]) + "\"";
        return s + "]";
      };
      std::printf("{\"ok\":%s,\"matched\":%llu,\"missing\":%s,\"extra\":%s,\"mismatched\":%s,\"attr_differences\":%s}\n",
                  ok ? "true" : "false", static_cast<unsigned long long>(r->matched), list(r->missing).c_str(),
                  list(r->extra).c_str(), list(r->mismatched).c_str(), list(r->attr_differences).c_str());
    } else {
      for (const auto& p : r->missing) std::printf("missing    %s\n", p.c_str());
      for (const auto& p : r->extra) std::printf("extra      %s\n", p.c_str());
      for (const auto& p : r->mismatched) std::printf("mismatch   %s\n", p.c_str());
      if (!verify_quiet) {
        for (const auto& p : r->attr_differences) std::printf("attributes %s\n", p.c_str());
        std::printf("%llu matched, %zu missing, %zu extra, %zu mismatched\n", static_cast<unsigned long long>(r->matched),
                    r->missing.size(), r->extra.size(), r->mismatched.size());
      }
    }
    return ok ? 0 : exit_code(Error::kIntegrity);
  }
  return 0;
}
