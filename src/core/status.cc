#include "ferry/status.h"

#include <cstring>

namespace ferry {

const char* to_string(Error e) {
  switch (e) {
    case Error::kOk: return "ok";
    case Error::kPartial: return "partial failure";
    case Error::kUsage: return "usage error";
    case Error::kNetwork: return "network error";
    case Error::kProtocol: return "protocol error";
    case Error::kLocalIo: return "I/O error";
    case Error::kRefused: return "refused";
    case Error::kIntegrity: return "integrity error";
    case Error::kInterrupted: return "interrupted";
    case Error::kInternal: return "internal error";
  }
  return "unknown error";
}

int exit_code(Error e) { return static_cast<int>(e); }

static int severity(Error e) {
  switch (e) {
    case Error::kOk: return 0;
    case Error::kPartial: return 1;
    case Error::kIntegrity: return 2;
    case Error::kLocalIo: return 3;
    case Error::kRefused: return 4;
    case Error::kNetwork: return 5;
    case Error::kProtocol: return 6;
    case Error::kUsage: return 7;
    case Error::kInterrupted: return 8;
    case Error::kInternal: return 9;
  }
  return 9;
}

Error more_severe(Error a, Error b) { return severity(a) >= severity(b) ? a : b; }

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return std::string(ferry::to_string(code_)) + ": " + message_;
}

Status errno_status(Error code, const std::string& what, int err) {
  return Status(code, what + ": " + std::strerror(err));
}

}  // namespace ferry
