#include "daemon/systemd_notify.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

namespace ferry::daemon {

SystemdNotifier SystemdNotifier::from_environment() {
  SystemdNotifier n;
  if (const char* s = std::getenv("NOTIFY_SOCKET"); s && (s[0] == '/' || s[0] == '@')) n.socket_path_ = s;
  const char* usec = std::getenv("WATCHDOG_USEC");
  const char* pid = std::getenv("WATCHDOG_PID");
  // WATCHDOG_PID, when set, names the process the watchdog is meant for (not a child of it).
  bool for_us = !pid || std::strtoll(pid, nullptr, 10) == static_cast<long long>(::getpid());
  if (usec && for_us) {
    char* end = nullptr;
    unsigned long long v = std::strtoull(usec, &end, 10);
    if (end && *end == '\0' && v > 0) n.watchdog_interval_ = std::chrono::microseconds(v / 2);
  }
  return n;
}

Status SystemdNotifier::notify(std::string_view state) const {
  if (!enabled()) return Status::ok();
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path_.size() >= sizeof addr.sun_path)
    return Status(Error::kUsage, "NOTIFY_SOCKET '" + socket_path_ + "' is too long");
  std::memcpy(addr.sun_path, socket_path_.data(), socket_path_.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_path_.size());
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract: no trailing NUL counted
  else ++len;
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_status(Error::kLocalIo, "socket for NOTIFY_SOCKET", errno);
  ssize_t n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL, reinterpret_cast<sockaddr*>(&addr), len);
  int err = errno;
  ::close(fd);
  if (n < 0) return errno_status(Error::kLocalIo, "notify systemd at '" + socket_path_ + "'", err);
  return Status::ok();
}

}  // namespace ferry::daemon
