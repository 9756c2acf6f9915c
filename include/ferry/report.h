// What a transfer did: the CLI prints it as text or, with --json, as one JSON object.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ferry/status.h"

namespace ferry {

struct FileReport {
  std::string path;      // relative to the destination
  std::string type;      // "file", "dir", "symlink"
  uint64_t size = 0;
  // "sent"; "skipped" (a regular file already up to date, or --overwrite never); "ok" (a
  // directory or symlink created or already there); "failed"; "sending" (data went out, the
  // transfer ended before the receiver confirmed it); "pending" (the transfer ended before
  // this entry was reached).
  std::string action;
  std::string xxh3_128;  // hex, regular files that were sent
  std::string error;     // why it failed
};

inline constexpr int kSyncNothingToDo = 10;

// What `ferry sync` decided and did.
struct SyncCounts {
  bool dry_run = false;
  uint64_t send = 0, update = 0, remove = 0, skip = 0;  // planned actions
  uint64_t send_bytes = 0, update_bytes = 0;
  uint64_t deleted = 0;  // deletions the receiver carried out
  bool changed() const { return send + update + remove > 0; }
};

// What the UDP transport saw (present in --json as "udp" when --transport udp was used).
struct UdpReport {
  bool used = false;
  std::string policy;
  uint64_t packets_sent = 0;
  uint64_t packets_lost = 0;         // declared lost by the sender (RFC 9002 thresholds)
  uint64_t packets_spurious = 0;     // declared lost, then acknowledged after all
  uint64_t datagram_bytes = 0;       // UDP payload bytes sent (headers and AEAD tags included)
  uint64_t retransmitted_bytes = 0;  // fragment bytes sent again after a loss or probe
  uint64_t redundant_bytes = 0;      // fragment bytes the receiver already had when they were re-sent
  uint64_t auth_failures = 0;        // datagrams that failed authentication or were replays (dropped)
  double data_seconds = 0;           // first datagram to the last acknowledgement
  double srtt_ms = 0;
  double min_rtt_ms = 0;
  double bandwidth_estimate_bps = 0; // the controller's bottleneck estimate, bits/s
};

struct TransferReport {
  Status status;
  uint64_t files_total = 0;   // entries in the file list (files, dirs, symlinks)
  uint64_t files_sent = 0;
  uint64_t files_skipped = 0;  // regular files only
  uint64_t files_failed = 0;
  uint64_t bytes_on_disk = 0;  // size of the regular files sent
  uint64_t bytes_on_wire = 0;  // bytes written to the data streams, frame headers included
  uint64_t chunks_sent = 0;
  uint64_t chunks_resent = 0;  // chunks sent again after the receiver saw a bad checksum
  uint64_t chunks_resumed = 0; // chunks the receiver already held from an interrupted run
  uint64_t bytes_resumed = 0;  // their bytes: not sent again
  uint64_t reconnects = 0;     // connections lost and re-established during the transfer
  bool encrypted = true;       // TLS on every connection (false only with --plaintext)
  double seconds = 0;
  std::vector<FileReport> files;
  bool is_sync = false;
  SyncCounts sync;
  UdpReport udp;

  std::string to_json() const;
  // The process exit code: the status's, except that a successful sync that had nothing to
  // do exits kSyncNothingToDo (so schedulers can tell "in sync" from "transferred").
  int exit_code() const;
};

// JSON string escaping (control characters, quotes, backslash; invalid UTF-8 bytes as
// \u00XX so the output is always valid JSON).
std::string json_escape(const std::string& s);

}  // namespace ferry
