#include "io/uring_file_io.h"

#include <liburing.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

namespace ferry {
namespace {

// Ring depth per thread: the most segments of one call in flight at once.
constexpr unsigned kRingEntries = 32;

// One ring per worker thread, created on its first call and kept for the thread's life:
// no lock, no routing of completions between threads (each thread waits only for what it
// submitted), and no setup cost per chunk. A thread whose ring cannot be set up (e.g. a
// memlock limit on older kernels) uses pread/pwrite instead.
struct ThreadRing {
  io_uring ring{};
  enum { kUntried, kReady, kUnusable } state = kUntried;

  io_uring* get() {
    if (state == kUntried) {
      // SINGLE_ISSUER + DEFER_TASKRUN (6.1+): completions are run only when this thread
      // waits, which is the only way this ring is used. Older kernels reject the flags.
      io_uring_params p{};
      p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
      int rc = io_uring_queue_init_params(kRingEntries, &ring, &p);
      if (rc == -EINVAL) rc = io_uring_queue_init(kRingEntries, &ring, 0);
      state = rc == 0 ? kReady : kUnusable;
    }
    return state == kReady ? &ring : nullptr;
  }
  // After a failure of the ring itself (not of an I/O): this thread goes back to posix.
  void drop() {
    if (state == kReady) io_uring_queue_exit(&ring);
    state = kUnusable;
  }
  ~ThreadRing() { drop(); }
};

thread_local ThreadRing t_ring;

// One segment of a call. Invariant: `left` bytes remain at `offset`/`buf`; `busy` while the
// kernel owns an SQE for it.
struct Piece {
  uint64_t offset;
  uint8_t* buf;
  size_t left;
  bool busy = false;
  bool at_eof = false;
};

enum class WindowOutcome { kDone, kRingFailed };

class UringFileIo final : public FileIo {
 public:
  explicit UringFileIo(size_t segment) : segment_(segment) {}
  const char* name() const override { return "uring"; }

  Status read_at(int fd, const std::string& name, uint64_t offset, uint8_t* dst, size_t len,
                 size_t* got) override {
    return transfer(false, fd, name, offset, dst, len, got);
  }

  Status write_at(int fd, const std::string& name, uint64_t offset, const uint8_t* src,
                  size_t len) override {
    size_t done = 0;
    // The buffer is only read by a write; the cast lets one loop serve both directions.
    return transfer(true, fd, name, offset, const_cast<uint8_t*>(src), len, &done);
  }

 private:
  Status transfer(bool write, int fd, const std::string& name, uint64_t offset, uint8_t* buf,
                  size_t len, size_t* got) {
    *got = 0;
    const size_t window_max = segment_ * kRingEntries;
    while (*got < len) {
      io_uring* ring = t_ring.get();
      size_t window = std::min(len - *got, window_max);
      size_t moved = 0;
      int err = 0;
      if (ring == nullptr ||
          run_window(ring, write, fd, offset + *got, buf + *got, window, &moved, &err) ==
              WindowOutcome::kRingFailed) {
        // pread/pwrite at explicit offsets are idempotent, so the whole window is redone.
        return fallback(write, fd, name, offset, buf, len, got);
      }
      if (err != 0) return errno_status(Error::kLocalIo, (write ? "write '" : "read '") + name + "'", err);
      *got += moved;
      if (moved < window) break;  // end of file (reads only)
    }
    return Status::ok();
  }

  Status fallback(bool write, int fd, const std::string& name, uint64_t offset, uint8_t* buf,
                  size_t len, size_t* got) {
    t_ring.drop();
    if (write) return posix_file_io().write_at(fd, name, offset, buf, len);
    return posix_file_io().read_at(fd, name, offset, buf, len, got);
  }

  // Moves up to kRingEntries segments with the ring. On return no SQE of this call is in the
  // kernel's hands any more (unless kRingFailed), so `buf` is the caller's again. `*err` is
  // the first errno of a failed request; `*moved` the bytes moved contiguously from the start.
  WindowOutcome run_window(io_uring* ring, bool write, int fd, uint64_t offset, uint8_t* buf,
                           size_t len, size_t* moved, int* err) {
    std::vector<Piece> pieces;
    for (size_t pos = 0; pos < len; pos += segment_)
      pieces.push_back(Piece{offset + pos, buf + pos, std::min(segment_, len - pos)});
    unsigned in_flight = 0;
    for (;;) {
      unsigned prepared = 0;
      if (*err == 0) {
        for (size_t i = 0; i < pieces.size(); ++i) {
          Piece& p = pieces[i];
          if (p.busy || p.left == 0 || p.at_eof) continue;
          io_uring_sqe* sqe = io_uring_get_sqe(ring);
          if (sqe == nullptr) break;  // cannot happen: pieces <= entries and all were reaped
          unsigned n = static_cast<unsigned>(p.left);
          if (write) io_uring_prep_write(sqe, fd, p.buf, n, p.offset);
          else io_uring_prep_read(sqe, fd, p.buf, n, p.offset);
          io_uring_sqe_set_data64(sqe, i);
          p.busy = true;
          ++prepared;
        }
      }
      if (prepared == 0 && in_flight == 0) break;
      if (prepared > 0) {
        int rc;
        do {
          rc = io_uring_submit(ring);
        } while (rc == -EINTR || rc == -EAGAIN || rc == -EBUSY);
        if (rc >= 0) in_flight += static_cast<unsigned>(rc);
        if (rc < 0 || static_cast<unsigned>(rc) < prepared) {
          // The ring itself failed; let what it accepted finish so no request still points
          // into `buf`, then give up on the ring.
          reap_all(ring, in_flight);
          return WindowOutcome::kRingFailed;
        }
      }
      io_uring_cqe* cqe = nullptr;
      int rc = io_uring_wait_cqe(ring, &cqe);
      if (rc == -EINTR || rc == -EAGAIN) continue;
      if (rc < 0) {
        reap_all(ring, in_flight);
        return WindowOutcome::kRingFailed;
      }
      do {
        Piece& p = pieces[static_cast<size_t>(io_uring_cqe_get_data64(cqe))];
        int res = cqe->res;
        io_uring_cqe_seen(ring, cqe);
        --in_flight;
        p.busy = false;
        if (res == -EINTR || res == -EAGAIN) continue;  // resubmitted next round
        if (res < 0) {
          if (*err == 0) *err = -res;
        } else if (res == 0) {
          if (write) {
            if (*err == 0) *err = EIO;  // no progress: a device that accepts nothing
          } else {
            p.at_eof = true;
          }
        } else {  // possibly short: the rest is resubmitted next round
          p.offset += static_cast<uint64_t>(res);
          p.buf += res;
          p.left -= static_cast<size_t>(res);
        }
      } while (in_flight > 0 && io_uring_peek_cqe(ring, &cqe) == 0);
    }
    *moved = 0;
    for (const Piece& p : pieces) {
      size_t piece_len = static_cast<size_t>(p.buf - buf) - *moved;  // bytes this piece moved
      *moved += piece_len;
      if (p.left > 0) break;  // stopped early (end of file or error): later bytes do not count
    }
    return WindowOutcome::kDone;
  }

  // Waits for `in_flight` completions, ignoring their results (the caller redoes the work).
  static void reap_all(io_uring* ring, unsigned in_flight) {
    while (in_flight > 0) {
      io_uring_cqe* cqe = nullptr;
      int rc = io_uring_wait_cqe(ring, &cqe);
      if (rc == -EINTR || rc == -EAGAIN) continue;
      if (rc < 0) return;  // nothing more can be learnt; the ring is dropped next
      io_uring_cqe_seen(ring, cqe);
      --in_flight;
    }
  }

  size_t segment_;
};

// Whether a ring can be set up here and does plain READ/WRITE (5.6+).
bool probe_uring(std::string* why) {
  io_uring ring{};
  int rc = io_uring_queue_init(4, &ring, 0);
  if (rc < 0) {
    *why = std::string("io_uring_queue_init: ") + std::strerror(-rc);
    return false;
  }
  bool ok = false;
  if (io_uring_probe* probe = io_uring_get_probe_ring(&ring)) {
    ok = io_uring_opcode_supported(probe, IORING_OP_READ) && io_uring_opcode_supported(probe, IORING_OP_WRITE);
    io_uring_free_probe(probe);
    if (!ok) *why = "io_uring lacks READ/WRITE (kernel older than 5.6)";
  } else {
    *why = "io_uring probe failed (kernel older than 5.6)";
  }
  io_uring_queue_exit(&ring);
  return ok;
}

}  // namespace

std::unique_ptr<FileIo> make_uring_file_io(size_t segment_bytes, std::string* why) {
  std::string reason;
  if (!probe_uring(&reason)) {
    if (why) *why = reason;
    return nullptr;
  }
  // A segment is one SQE: its length must fit the 32-bit length field.
  segment_bytes = std::clamp<size_t>(segment_bytes, 4096, size_t{1} << 30);
  return std::make_unique<UringFileIo>(segment_bytes);
}

}  // namespace ferry
