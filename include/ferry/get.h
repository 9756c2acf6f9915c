// Downloading from and listing a ferry server (ferryd or `ferry recv`): the server takes the
// sender role, this process the receiver role, on connections this process opens
// (docs/protocol.md "Roles").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ferry/options.h"
#include "ferry/report.h"
#include "ferry/status.h"
#include "ferry/url.h"

namespace ferry {

// One thing to download: ferry://HOST[:PORT]/EXPORT/PATH. `contents` is rsync's trailing
// slash: "dir/" brings dir's contents into LOCAL_DIR, "dir" brings LOCAL_DIR/dir.
struct GetSource {
  FerryUrl url;
  bool contents = false;
};

// Downloads `sources` (all on one server, and with exports all in one export) into
// `local_dir` (created if missing, but only once the server accepted the request). Uses the
// SendOptions that make sense for a download: streams, chunk_size, compress (asked of the
// server), overwrite, memory, resume, transfer_id, retry_timeout, connect_timeout, token,
// tls, on_progress, fault_sigkill_after_chunks. Partial files and the resume journal live
// under local_dir/.ferry/ exactly as `ferry recv` keeps them, and the transfer id is derived
// from the server, the paths and the chunk size, so re-running the same command resumes.
// Blocks until done; never throws. In the report, files_sent counts files received and
// committed, bytes_on_disk their sizes, bytes_on_wire the file bytes that actually arrived in
// chunks (less than bytes_on_disk when a resumed run kept an earlier run's chunks), and
// chunks_resumed the chunks kept from an interrupted run.
TransferReport get_files(const std::vector<GetSource>& sources, const std::string& local_dir,
                         const SendOptions& options);

// One entry of a remote listing.
struct RemoteEntry {
  std::string path;  // relative to the listed directory; a listed file's own name
  std::string type;  // "file", "directory", "symlink"
  uint32_t mode = 0;  // permission bits
  int64_t mtime_ns = 0;
  uint64_t size = 0;
  std::string link_target;
};

// Lists `url` (a directory's entries, or a file itself); `recursive` walks the whole tree.
// Uses options.token, tls and connect_timeout. A missing path is a kUsage error.
Result<std::vector<RemoteEntry>> list_remote(const FerryUrl& url, bool recursive, const SendOptions& options);

}  // namespace ferry
