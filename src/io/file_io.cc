// Choosing the process-wide FileIo backend.
#include "io/file_io.h"

#include <atomic>

#include "core/log.h"
#include "io/uring_file_io.h"

namespace ferry {
namespace {

std::atomic<FileIo*> g_selected{nullptr};

}  // namespace

Result<IoMode> parse_io_mode(std::string_view text, std::string_view flag) {
  if (text == "auto") return IoMode::kAuto;
  if (text == "posix") return IoMode::kPosix;
  if (text == "uring") return IoMode::kUring;
  return Status(Error::kUsage, std::string(flag) + " must be auto, posix or uring, not '" + std::string(text) + "'");
}

const char* to_string(IoMode mode) {
  switch (mode) {
    case IoMode::kAuto: return "auto";
    case IoMode::kPosix: return "posix";
    case IoMode::kUring: return "uring";
  }
  return "?";
}

FileIo* uring_file_io(std::string* why) {
  // Probed once: the answer does not change while the process runs.
  static std::string reason;
  static std::unique_ptr<FileIo> io = make_uring_file_io(kDefaultUringSegment, &reason);
  if (!io && why) *why = reason;
  return io.get();
}

void configure_file_io(IoMode mode) {
  IoMode want = mode == IoMode::kAuto ? kAutoChoice : mode;
  FileIo* chosen = &posix_file_io();
  if (want == IoMode::kUring) {
    std::string why;
    if (FileIo* u = uring_file_io(&why)) {
      chosen = u;
    } else {
      std::string line = "io_uring unavailable (" + why + "); file I/O uses pread/pwrite";
      if (mode == IoMode::kUring) log::warning(line);
      else log::info(line);
    }
  }
  log::debug(std::string("file I/O backend: ") + chosen->name() + " (--io " + to_string(mode) + ")");
  g_selected.store(chosen, std::memory_order_release);
}

FileIo& default_file_io() {
  FileIo* io = g_selected.load(std::memory_order_acquire);
  return io ? *io : posix_file_io();
}

}  // namespace ferry
