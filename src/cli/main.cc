// ferry: the command line. The only code that reads argv; everything else is libferry.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <iostream>
#include <thread>

#include "codec/chunk_codec.h"
#include "core/log.h"
#include "core/units.h"
#include "ferry/receiver.h"
#include "ferry/sender.h"
#include "protocol/frames.h"
#include "session/process_limits.h"

namespace {

using namespace ferry;

int fail(const Status& st) {
  log::error(st.message());
  return exit_code(st.code());
}

// Prints a one-line progress display on stderr, rewritten in place.
void print_progress(const Progress& p) {
  if (p.reconnecting) {
    std::fprintf(stderr, "\rconnection lost: reconnecting...%40s", "");
    std::fflush(stderr);
    return;
  }
  double pct = p.bytes_total ? 100.0 * static_cast<double>(p.bytes_done) / static_cast<double>(p.bytes_total) : 0;
  double rate = p.seconds > 0 ? static_cast<double>(p.wire_bytes) / p.seconds : 0;
  std::fprintf(stderr, "\r%5.1f%%  %s / %s  files %llu/%llu  wire %s/s   ", pct, format_bytes(p.bytes_done).c_str(),
               format_bytes(p.bytes_total).c_str(), static_cast<unsigned long long>(p.files_done),
               static_cast<unsigned long long>(p.files_total), format_bytes(static_cast<uint64_t>(rate)).c_str());
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
}

// CLI11 validator for K/M/G sizes.
struct SizeFlag {
  std::string text;
  uint64_t value = 0;
};

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

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ferry: fast, checksummed transfer of files and trees"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("ferry 0.1.0 (protocol 1)"));

  // ferry send
  auto* send = app.add_subcommand("send", "send files and directories to a ferry receiver");
  std::vector<std::string> send_args;
  SendOptions so;
  std::string chunk_text, memory_text, overwrite = "diff";
  bool json = false, quiet = false, progress_on = false, progress_off = false;
  int verbose = 0;
  int streams = so.streams;
  send->add_option("SRC...DEST", send_args, "files/directories to send, then ferry://HOST[:PORT]/DEST")->required()->expected(2, -1);
  send->add_option("--streams", streams, "parallel TCP data connections (default 4)")->check(CLI::Range(1, 64));
  send->add_option("--chunk-size", chunk_text, "chunk size, 64K..64M (default 4M)");
  send->add_option("--compress", so.compress, "auto, none or a zstd level 1..19 (default auto)");
  send->add_option("--overwrite", overwrite, "always, never or diff (default diff)")
      ->check(CLI::IsMember({"always", "never", "diff"}));
  send->add_option("--memory", memory_text, "budget for all buffers in flight (default 256M)");
  send->add_flag("-L,--follow-symlinks", so.follow_symlinks, "send what symlinks point to instead of the links");
  send->add_option("--resume", so.resume, "trust in partial files of an interrupted run: off, attrs, sparse or full (default sparse)")
      ->check(CLI::IsMember({"off", "attrs", "sparse", "full"}));
  send->add_option("--transfer-id", so.transfer_id, "name of the transfer for resume (default: derived from the sources and destination)");
  double retry_seconds = 180;
  send->add_option("--retry-timeout", retry_seconds, "seconds to keep reconnecting after a lost connection (default 180)")
      ->check(CLI::Range(0.0, 86400.0));
  send->add_flag("--json", json, "print a JSON summary on stdout");
  send->add_flag("--progress", progress_on, "show progress on stderr (default when stderr is a terminal)");
  send->add_flag("--no-progress", progress_off, "never show progress");
  send->add_flag("-q,--quiet", quiet, "print errors only");
  send->add_flag("-v,--verbose", verbose, "more detail on stderr (repeat for debug)");

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
  recv->add_flag("-q,--quiet", recv_quiet, "print errors only");
  recv->add_flag("-v,--verbose", recv_verbose, "more detail on stderr (repeat for debug)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : exit_code(Error::kUsage);
  }

  if (send->parsed()) {
    set_verbosity(quiet, verbose);
    so.streams = static_cast<uint16_t>(streams);
    so.retry_timeout = std::chrono::milliseconds(static_cast<int64_t>(retry_seconds * 1000));
    so.overwrite = overwrite == "always" ? Overwrite::kAlways : overwrite == "never" ? Overwrite::kNever : Overwrite::kDiff;
    uint64_t chunk = so.chunk_size;
    if (Status st = parse_size_flag("--chunk-size", chunk_text, &chunk); !st) return fail(st);
    if (chunk > UINT32_MAX) return fail(Status(Error::kUsage, "--chunk-size must be between 64K and 64M"));
    so.chunk_size = static_cast<uint32_t>(chunk);
    if (Status st = parse_size_flag("--memory", memory_text, &so.memory); !st) return fail(st);
    if (Status st = validate_send_options(so); !st) return fail(st);
    auto url = parse_ferry_url(send_args.back());
    if (!url) return fail(url.status());
    std::vector<std::string> sources(send_args.begin(), send_args.end() - 1);
    if (const char* k = std::getenv("FERRY_TEST_SIGKILL_AFTER_CHUNKS")) so.fault_sigkill_after_chunks = std::strtoull(k, nullptr, 10);
    bool show_progress = !quiet && !progress_off && (progress_on || isatty(STDERR_FILENO));
    if (show_progress) so.on_progress = print_progress;
    TransferReport report = send_files(sources, *url, so);
    if (show_progress) std::fprintf(stderr, "\n");
    if (json) std::printf("%s\n", report.to_json().c_str());
    else if (!quiet && (report.status.is_ok() || report.status.code() == Error::kPartial)) print_text_summary(report);
    if (!report.status.is_ok()) log::error(report.status.message());
    return exit_code(report.status.code());
  }

  if (recv->parsed()) {
    set_verbosity(recv_quiet, recv_verbose);
    if (Status st = parse_size_flag("--memory", recv_memory_text, &ro.memory); !st) return fail(st);
    if (const char* k = std::getenv("FERRY_TEST_SIGKILL_AFTER_CHUNKS")) ro.fault_sigkill_after_chunks = std::strtoull(k, nullptr, 10);
    if (ro.memory < (protocol::kMaxChunkSize / 16))
      return fail(Status(Error::kUsage, "--memory must be at least 4M"));
    // SIGINT/SIGTERM stop the receiver cleanly: unfinished files are discarded, never left
    // under their final names.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGUSR1);  // wakes the signal thread when run() returns
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    auto receiver = Receiver::create(ro);
    if (!receiver) return fail(receiver.status());
    std::printf("%s\n", (*receiver)->url().c_str());
    std::fflush(stdout);
    Receiver* r = receiver->get();
    std::atomic<bool> interrupted{false};
    std::thread signal_thread([&] {
      int sig = 0;
      sigwait(&sigs, &sig);
      if (sig == SIGUSR1) return;  // our own wake-up at exit
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
  return 0;
}
