// Process-wide settings both ends apply once at start.
#pragma once

#include <cstddef>

#include "ferry/status.h"

namespace ferry {

// Raises RLIMIT_NOFILE's soft limit to the hard limit: up to kMaxOpenFiles files are open on
// each side at once, plus sockets.
void raise_open_file_limit();

// Worker pool size for read/hash/compress and verify/write work: the number of cores (>= 2).
size_t worker_threads();

// Checks flags the library takes as numbers (used by the CLI before anything starts).
struct SendOptions;
Status validate_send_options(const SendOptions& options);

}  // namespace ferry
