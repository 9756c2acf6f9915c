// Sending files and trees to a ferry receiver.
#pragma once

#include <string>
#include <vector>

#include "ferry/options.h"
#include "ferry/report.h"
#include "ferry/url.h"

namespace ferry {

// Scans `sources` (rsync naming: "dir" sends the directory, "dir/" its contents), connects
// to `dest`, and transfers. Blocks until done. Never throws; report.status says how it ended.
TransferReport send_files(const std::vector<std::string>& sources, const FerryUrl& dest,
                          const SendOptions& options);

// One-way mirror: makes `dest` a copy of the contents of `source_dir` (like rsync's
// `SRC/ DEST/`): sends new and changed files (size + mtime, or content with checksum) and,
// with delete_extraneous, removes what SRC does not have. Excluded paths are neither sent
// nor deleted.
TransferReport sync_tree(const std::string& source_dir, const FerryUrl& dest, const SendOptions& options,
                         const SyncOptions& sync);

}  // namespace ferry
