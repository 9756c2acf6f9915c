// Options of a transfer, as the library takes them (the CLI is the only code that reads argv).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry {

enum class Overwrite : uint8_t { kAlways = 0, kNever = 1, kDiff = 2 };  // wire values

struct Progress {
  uint64_t bytes_done = 0;    // file bytes the receiver has confirmed or skipped
  uint64_t bytes_total = 0;   // file bytes planned to send
  uint64_t files_done = 0;
  uint64_t files_total = 0;
  uint64_t wire_bytes = 0;    // bytes written to the data streams so far
  double seconds = 0;
  bool reconnecting = false;  // the connection was lost; waiting to retry
  // --transport udp only:
  bool udp = false;
  double rtt_ms = 0;                 // smoothed RTT
  double loss = 0;                   // fraction of datagrams declared lost so far
  uint64_t retransmitted_bytes = 0;
};

// --include/--exclude, in command-line order; the first matching rule wins (rsync-like).
struct PathRule {
  bool include = false;
  std::string pattern;
};

enum class Transport : uint8_t { kTcp = 0, kUdp = 1 };

// TEST-ONLY FAULT: a seeded in-process shim between the UDP transport and its socket that
// drops, duplicates and reorders outgoing datagrams (fractions 0..1). Loopback never loses
// or reorders, so this fake stands in for a bad path in tests (docs/udp.md).
struct DatagramFaults {
  double drop = 0;
  double duplicate = 0;
  double reorder = 0;
  uint64_t seed = 1;
  bool any() const { return drop > 0 || duplicate > 0 || reorder > 0; }
};

// How a sender secures its TCP connections (TLS 1.3). The receiver is verified by, in this
// order: nothing (insecure), a pinned certificate fingerprint, a CA file, the system store.
struct TlsClientSettings {
  std::string fingerprint;  // "sha256:<hex>" of the receiver's certificate; "" = take the URL's fp=
  std::string ca_file;      // PEM bundle to verify the receiver's chain and host name against
  bool insecure = false;    // TESTS ONLY: no verification at all (the CLI warns on every run)
  bool plaintext = false;   // no TLS, no secrecy: only against a receiver that is plaintext too
  std::string cert_file, key_file;  // client certificate for mutual TLS (optional)
};

struct SendOptions {
  uint16_t streams = 4;                   // parallel TCP data connections (1..64)
  // --transport udp: data as encrypted datagrams paced by ferry's own congestion control.
  Transport transport = Transport::kTcp;
  uint64_t target_rate = 0;     // bytes/s; 0 = as fast as the path allows
  uint64_t min_rate = 0;        // bytes/s; the controller never paces below it
  std::string policy = "fair";  // fixed | high | fair | low (Aspera's meanings)
  uint16_t max_datagram = 1472; // UDP payload bytes per datagram (path MTU - 28)
  DatagramFaults udp_faults;    // TEST-ONLY
  uint32_t chunk_size = 4u << 20;         // 64 KiB .. 64 MiB
  std::string compress = "auto";          // auto | none | 1..19
  Overwrite overwrite = Overwrite::kDiff;  // diff: skip files whose size and mtime match
  uint64_t memory = 256ull << 20;         // budget for every chunk buffer in flight
  bool follow_symlinks = false;
  std::vector<PathRule> filters;
  // Instead of scanning SRCs: send exactly the files a manifest lists (paths relative to
  // the single SRC, or to the manifest's root line), or a plain list (--files-from).
  std::string manifest_path;
  std::string files_from;
  // How far the receiver trusts partial files left by an interrupted run of the same
  // transfer: off | attrs | sparse | full (Aspera's -k 0..3).
  std::string resume = "sparse";
  // Names the transfer for resume; empty: derived from the destination, the chunk size and
  // the list of paths (so re-running the same command resumes).
  std::string transfer_id;
  // A connection lost mid-transfer is retried with exponential backoff for this long.
  std::chrono::milliseconds retry_timeout{180'000};
  std::chrono::milliseconds connect_timeout{10'000};
  // Bearer token sent in AUTH on every connection; "" = the URL's token=.
  std::string token;
  TlsClientSettings tls;
  // Called on the network thread about twice a second while the transfer runs.
  std::function<void(const Progress&)> on_progress;
  // TEST-ONLY FAULT: flip one byte in the payload of the first N chunk transmissions after
  // their checksum was computed, as a corrupting link would. A real loopback socket cannot be
  // made to corrupt data, so this fake stands in for it (tests/e2e, FERRY_FAULT_CORRUPT_CHUNKS).
  int fault_corrupt_chunks = 0;
  // TEST-ONLY FAULTS for resume tests, counted in chunks handed to the transport:
  // drop every connection after N (a link that dies), or SIGKILL this process after N
  // (the CLI sets it from FERRY_TEST_SIGKILL_AFTER_CHUNKS). 0 = off.
  uint64_t fault_drop_link_after_chunks = 0;
  uint64_t fault_sigkill_after_chunks = 0;
};

// ferry sync: DEST becomes a copy of SRC's contents.
struct SyncOptions {
  bool delete_extraneous = false;  // --delete: remove what is not in SRC (excluded paths are kept)
  bool dry_run = false;            // report the plan, change nothing
  bool checksum = false;           // compare content hashes instead of size + mtime
};

// The receiver's TLS identity.
struct TlsServerSettings {
  std::string cert_file, key_file;  // PEM; both empty: an ephemeral self-signed certificate
  std::string client_ca_file;       // non-empty: mutual TLS, client certificates must chain to it
  bool plaintext = false;           // no TLS and (without a verifier) no token: both sides must ask
};

class FileSinkFactory;  // session/file_sink.h

// A named destination of a receiver serving several: ferry://HOST/EXPORT/PATH.
struct ExportSpec {
  std::string name;
  std::string root;
  // Non-null: regular files go to sinks made here (ferryd's S3 exports) instead of below
  // `root`, which then only holds the session's resume journal.
  std::shared_ptr<FileSinkFactory> sinks;
};

// What a bearer token grants on one export.
struct ExportAccess {
  std::string export_name;
  bool read = false;
  bool write = false;
};

// Maps a bearer token to what it grants, or an error (Error::kRefused) for unknown, revoked
// or expired tokens. Called on the network thread; must not block.
using TokenVerifier = std::function<Result<std::vector<ExportAccess>>(std::string_view token)>;

struct ReceiveOptions {
  std::string listen = "127.0.0.1:7400";  // HOST:PORT; port 0 picks a free one
  std::string root;                       // destination root; created if missing
  bool once = false;                      // exit after the first session ends
  uint64_t memory = 256ull << 20;         // budget for every receive buffer in flight
  // A connection that has not finished HELLO and OPEN_SESSION/JOIN_STREAM by then is closed.
  std::chrono::milliseconds handshake_timeout{30'000};
  // TEST-ONLY FAULT: SIGKILL this process after N chunks were written and journaled (the CLI
  // sets it from FERRY_TEST_SIGKILL_AFTER_CHUNKS), so tests can kill -9 at a seeded point.
  uint64_t fault_sigkill_after_chunks = 0;
  DatagramFaults udp_faults;  // TEST-ONLY: applied to the ACK datagrams this receiver sends

  TlsServerSettings tls;            // empty cert_file and !plaintext: ephemeral cert (ferry recv)
  std::vector<ExportSpec> exports;  // empty: single-root mode (`root`), as ferry recv
  TokenVerifier verify_token;       // null: the receiver's own random token (ferry recv)
  uint32_t max_sessions = 0;        // 0 = unlimited; over the limit: ERROR "busy", counted
  uint64_t max_session_rate = 0;    // bytes/s cap per session, server side wins (0 = none): paces reads
  uint64_t max_total_rate = 0;      // bytes/s over all sessions (0 = none): shared by the active ones
  // UDP data ports: each UDP session binds one free port of [first, last] (for firewalls);
  // 0 = an ephemeral port.
  uint16_t udp_port_first = 0, udp_port_last = 0;
};

}  // namespace ferry
