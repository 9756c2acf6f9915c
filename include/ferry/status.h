// ferry: error codes, Status and Result<T>.
//
// No exception crosses a module boundary in the data path. Every fallible call returns a
// Status (or Result<T>) whose message names the file, the peer and the cause, so the CLI can
// print it as one line. The Error enum maps one-to-one onto the process exit codes documented
// in man/ferry.1 (see exit_code()).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <variant>

namespace ferry {

enum class Error : uint16_t {
  kOk = 0,
  kPartial = 1,        // some files failed, others were transferred
  kUsage = 2,          // bad flags, URL, size or config
  kNetwork = 3,        // cannot connect, connection lost, timeout
  kProtocol = 4,       // peer sent a malformed frame or an unsupported version
  kLocalIo = 5,        // reading or writing a local file failed (ENOSPC, EACCES, ...)
  kRefused = 6,        // the peer refused: unsafe path, permission, authentication
  kIntegrity = 7,      // a checksum never matched, even after retries
  kInterrupted = 8,    // SIGINT/SIGTERM
  kInternal = 9,       // a bug: an invariant did not hold
};

const char* to_string(Error e);

// Process exit code for an error. Stable: documented in man/ferry.1 and README.md.
int exit_code(Error e);

// When several streams or files fail at once, the session reports the most severe one.
// Order (least to most): ok < partial < integrity < local_io < refused < network < protocol
// < usage < interrupted < internal.
Error more_severe(Error a, Error b);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error code, std::string message) : code_(code), message_(std::move(message)) {}
  static Status ok() { return {}; }

  bool is_ok() const { return code_ == Error::kOk; }
  explicit operator bool() const { return is_ok(); }
  Error code() const { return code_; }
  const std::string& message() const { return message_; }
  // "refused: path '../x' escapes the destination root" style, for logs and the CLI.
  std::string to_string() const;

 private:
  Error code_ = Error::kOk;
  std::string message_;
};

// Status from errno with a prefix naming what failed: errno_status(Error::kLocalIo,
// "write '/srv/a.exr'") -> "write '/srv/a.exr': No space left on device".
Status errno_status(Error code, const std::string& what, int err);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT
  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }
  T& value() & { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  const T& value() const& { return std::get<0>(v_); }
  T* operator->() { return &std::get<0>(v_); }
  const T* operator->() const { return &std::get<0>(v_); }
  T& operator*() { return std::get<0>(v_); }
  Status status() const { return is_ok() ? Status::ok() : std::get<1>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace ferry
