#include <sys/resource.h>

#include <boost/asio/co_spawn.hpp>
#include <thread>

#include "core/log.h"
#include "core/units.h"
#include "ferry/sender.h"
#include "manifest/scanner.h"
#include "protocol/frames.h"
#include "session/process_limits.h"
#include "session/sender_session.h"

namespace ferry {

Status validate_send_options(const SendOptions& o) {
  if (o.streams < 1 || o.streams > protocol::kMaxStreams)
    return Status(Error::kUsage, "--streams must be between 1 and " + std::to_string(protocol::kMaxStreams));
  if (o.chunk_size < protocol::kMinChunkSize || o.chunk_size > protocol::kMaxChunkSize)
    return Status(Error::kUsage, "--chunk-size must be between 64K and 64M");
  if (o.memory < 4ull * o.chunk_size)
    return Status(Error::kUsage, "--memory " + format_bytes(o.memory) + " is too small for --chunk-size " +
                                     format_bytes(o.chunk_size) + " (need at least 4 chunks)");
  auto c = CompressionSetting::parse(o.compress);
  if (!c) return c.status();
  return Status::ok();
}

TransferReport send_files(const std::vector<std::string>& sources, const FerryUrl& dest, const SendOptions& options) {
  TransferReport report;
  if (Status st = validate_send_options(options); !st) {
    report.status = st;
    return report;
  }
  tune_allocator_for_chunks();
  raise_open_file_limit();
  ScanOptions scan_options;
  scan_options.follow_symlinks = options.follow_symlinks;
  auto files = scan_sources(sources, scan_options, [](const std::string& m) { log::warning(m); });
  if (!files) {
    report.status = files.status();
    return report;
  }
  asio::io_context io(1);
  asio::thread_pool pool(worker_threads());
  auto session = std::make_shared<SenderSession>(io, pool, std::move(*files), dest, options,
                                                 *CompressionSetting::parse(options.compress));
  asio::co_spawn(io, session->run(), [session](std::exception_ptr e) {
    if (!e) return;
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& ex) {
      session->report().status = Status(Error::kInternal, std::string("sender stopped: ") + ex.what());
    }
  });
  io.run();
  pool.join();
  return session->report();
}

}  // namespace ferry
