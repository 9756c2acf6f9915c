// The io_uring backend of FileIo (liburing). Use uring_file_io() (io/file_io.h) in the
// engine; this header is for tests and bench/file_io_bench, which tune it.
#pragma once

#include <cstddef>
#include <memory>
#include <string>

#include "io/file_io.h"

namespace ferry {

// Each call is split into segments of `segment_bytes` submitted together (up to the ring's
// depth at once), so one large chunk keeps several requests in flight on a disk. Returns
// nullptr, with the reason in `why`, when this kernel refuses io_uring or lacks READ/WRITE.
std::unique_ptr<FileIo> make_uring_file_io(size_t segment_bytes, std::string* why);

inline constexpr size_t kDefaultUringSegment = 1u << 20;

}  // namespace ferry
