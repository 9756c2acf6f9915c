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

}  // namespace ferry
