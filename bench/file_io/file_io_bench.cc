// file_io_bench: the engine's chunk file I/O alone, without network or hashing. K threads
// take chunk indexes from one counter and read or write them at their offsets in one file
// through a FileIo backend, as ferry's workers do. Prints one line with MB/s (10^6 bytes/s).
//
//   file_io_bench --io posix|uring|uring-shared --op write|read --file PATH --size BYTES
//                 [--threads K] [--chunk BYTES] [--segment BYTES] [--direct] [--fsync]
//
// write: creates PATH, preallocates it as StagedFile does, writes every chunk; --fsync adds
// the fsync to the timed part (as a receiver's commit does). read: reads every chunk of an
// existing PATH (drop the page cache before, or not, from the caller: bench/compare_io.sh).
// --direct opens with O_DIRECT (chunk and size must be multiples of 4096; buffers aligned).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/units.h"
#include "io/file_io.h"
#include "io/uring_file_io.h"
#include "shared_ring_file_io.h"

namespace {

struct Args {
  std::string io = "posix", op, file;
  uint64_t size = 0, chunk = 4u << 20, segment = ferry::kDefaultUringSegment;
  int threads = 2;
  bool direct = false, fsync = false;
};

[[noreturn]] void usage(const char* msg) {
  std::fprintf(stderr, "file_io_bench: %s\nusage: file_io_bench --io posix|uring|uring-shared --op write|read --file PATH "
                       "--size BYTES [--threads K] [--chunk BYTES] [--segment BYTES] [--direct] [--fsync]\n", msg);
  std::exit(2);
}

uint64_t size_arg(const char* flag, const char* text) {
  auto v = ferry::parse_size(text);
  if (!v) usage((std::string(flag) + ": " + v.status().message()).c_str());
  return *v;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) usage((f + " needs a value").c_str());
      return argv[++i];
    };
    if (f == "--io") a.io = next();
    else if (f == "--op") a.op = next();
    else if (f == "--file") a.file = next();
    else if (f == "--size") a.size = size_arg("--size", next());
    else if (f == "--chunk") a.chunk = size_arg("--chunk", next());
    else if (f == "--segment") a.segment = size_arg("--segment", next());
    else if (f == "--threads") a.threads = std::atoi(next());
    else if (f == "--direct") a.direct = true;
    else if (f == "--fsync") a.fsync = true;
    else usage(("unknown argument " + f).c_str());
  }
  if ((a.op != "read" && a.op != "write") || a.file.empty() || a.size == 0 || a.chunk == 0 || a.threads < 1)
    usage("need --op read|write, --file, --size > 0, --chunk > 0, --threads >= 1");
  if (a.direct && (a.chunk % 4096 != 0 || a.size % 4096 != 0)) usage("--direct needs 4096-aligned --chunk and --size");
  return a;
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse(argc, argv);
  std::unique_ptr<ferry::FileIo> uring;
  ferry::bench::SharedRingFileIo shared;
  ferry::FileIo* io = &ferry::posix_file_io();
  if (a.io == "uring") {
    std::string why;
    uring = ferry::make_uring_file_io(a.segment, &why);
    if (!uring) {
      std::fprintf(stderr, "file_io_bench: io_uring unavailable: %s\n", why.c_str());
      return 3;
    }
    io = uring.get();
  } else if (a.io == "uring-shared") {
    if (!shared.ok()) {
      std::fprintf(stderr, "file_io_bench: io_uring unavailable\n");
      return 3;
    }
    io = &shared;
  } else if (a.io != "posix") {
    usage("--io must be posix, uring or uring-shared");
  }

  const bool write = a.op == "write";
  int flags = (write ? O_RDWR | O_CREAT | O_TRUNC : O_RDONLY) | O_CLOEXEC | (a.direct ? O_DIRECT : 0);
  int fd = ::open(a.file.c_str(), flags, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "file_io_bench: open %s: %s\n", a.file.c_str(), std::strerror(errno));
    return 1;
  }
  if (write) {
    // As StagedFile::create: sparse length on tmpfs, fallocate elsewhere (not timed there
    // either: the receiver does it when the file is planned).
    struct statfs fs {};
    if (::fstatfs(fd, &fs) == 0 && fs.f_type == TMPFS_MAGIC) (void)::ftruncate(fd, static_cast<off_t>(a.size));
    else (void)::fallocate(fd, 0, 0, static_cast<off_t>(a.size));
  } else {
    (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  }

  const uint64_t chunks = (a.size + a.chunk - 1) / a.chunk;
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  auto t0 = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < a.threads; ++t) {
    threads.emplace_back([&, t] {
      // 4096-aligned for O_DIRECT; filled with a non-zero pattern so writes are not zero pages.
      uint8_t* buf = static_cast<uint8_t*>(std::aligned_alloc(4096, a.chunk));
      std::memset(buf, 0x5A + t, a.chunk);
      for (uint64_t c; !failed && (c = next.fetch_add(1)) < chunks;) {
        uint64_t off = c * a.chunk;
        size_t len = static_cast<size_t>(std::min<uint64_t>(a.chunk, a.size - off));
        ferry::Status st;
        if (write) {
          st = io->write_at(fd, a.file, off, buf, len);
        } else {
          size_t got = 0;
          st = io->read_at(fd, a.file, off, buf, len, &got);
          if (st && got != len) st = ferry::Status(ferry::Error::kLocalIo, a.file + " is shorter than --size");
        }
        if (!st) {
          std::fprintf(stderr, "file_io_bench: %s\n", st.message().c_str());
          failed = true;
        }
      }
      std::free(buf);
    });
  }
  for (auto& th : threads) th.join();
  if (write && a.fsync && ::fsync(fd) != 0) {
    std::fprintf(stderr, "file_io_bench: fsync %s: %s\n", a.file.c_str(), std::strerror(errno));
    failed = true;
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::close(fd);
  if (failed) return 1;
  std::printf("io=%s op=%s direct=%d threads=%d chunk=%llu size=%llu seconds=%.3f MBps=%.1f\n", io->name(),
              a.op.c_str(), a.direct ? 1 : 0, a.threads, static_cast<unsigned long long>(a.chunk),
              static_cast<unsigned long long>(a.size), s, static_cast<double>(a.size) / s / 1e6);
  return 0;
}
