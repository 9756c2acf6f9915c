// BENCH ONLY: the other design the brief asked to measure against the engine's ring per
// thread: one io_uring shared by every thread behind a mutex. A caller holds the mutex from
// submit until its own completion arrives (so completions need no routing between threads);
// that serializes the threads' I/O, which is what the measurement is meant to show.
// One SQE per call, resubmitted for short transfers.
#pragma once

#include <liburing.h>

#include <cerrno>
#include <mutex>
#include <string>

#include "io/file_io.h"

namespace ferry::bench {

class SharedRingFileIo final : public FileIo {
 public:
  SharedRingFileIo() { ok_ = io_uring_queue_init(8, &ring_, 0) == 0; }
  ~SharedRingFileIo() override {
    if (ok_) io_uring_queue_exit(&ring_);
  }
  bool ok() const { return ok_; }
  const char* name() const override { return "uring-shared"; }

  Status read_at(int fd, const std::string& name, uint64_t offset, uint8_t* dst, size_t len,
                 size_t* got) override {
    return run(false, fd, name, offset, dst, len, got);
  }
  Status write_at(int fd, const std::string& name, uint64_t offset, const uint8_t* src,
                  size_t len) override {
    size_t done = 0;
    return run(true, fd, name, offset, const_cast<uint8_t*>(src), len, &done);
  }

 private:
  Status run(bool write, int fd, const std::string& name, uint64_t offset, uint8_t* buf, size_t len,
             size_t* got) {
    std::lock_guard<std::mutex> lock(mu_);
    *got = 0;
    while (*got < len) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      unsigned n = static_cast<unsigned>(len - *got);
      if (write) io_uring_prep_write(sqe, fd, buf + *got, n, offset + *got);
      else io_uring_prep_read(sqe, fd, buf + *got, n, offset + *got);
      io_uring_cqe* cqe = nullptr;
      int rc = io_uring_submit_and_wait(&ring_, 1);
      while (rc >= 0 && (rc = io_uring_wait_cqe(&ring_, &cqe)) == -EINTR) {
      }
      if (rc < 0) return errno_status(Error::kLocalIo, "io_uring '" + name + "'", -rc);
      int res = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      if (res == -EINTR || res == -EAGAIN) continue;
      if (res < 0) return errno_status(Error::kLocalIo, (write ? "write '" : "read '") + name + "'", -res);
      if (res == 0) {
        if (write) return errno_status(Error::kLocalIo, "write '" + name + "'", EIO);
        break;
      }
      *got += static_cast<size_t>(res);
    }
    return Status::ok();
  }

  std::mutex mu_;
  io_uring ring_{};
  bool ok_ = false;
};

}  // namespace ferry::bench
