// fsync of many descriptors at once. A receiver landing thousands of small files cannot
// afford one sequential fsync (one journal commit, milliseconds on a disk) per file and per
// directory; issued together, the filesystem groups them into few commits.
#pragma once

#include <span>
#include <string>
#include <vector>

#include "ferry/status.h"

namespace ferry {

struct SyncTarget {
  int fd;
  std::string what;  // for the error message: "'shots/a.exr'"
};

// fsyncs every target (data_only: fdatasync). Uses io_uring (liburing) to have them all in
// flight at once when the kernel allows it, else falls back to one after another. Returns
// the first error, naming its target; `failed` (optional) receives the indices that failed.
Status sync_all(std::span<const SyncTarget> targets, bool data_only, std::vector<size_t>* failed = nullptr);

}  // namespace ferry
