// Service state for systemd (Type=notify): READY=1, STOPPING=1, RELOADING=1, WATCHDOG=1 and
// STATUS=..., sent as datagrams to the AF_UNIX socket named by $NOTIFY_SOCKET (the protocol
// documented in sd_notify(3); no libsystemd needed). Without $NOTIFY_SOCKET every call is a
// no-op, so ferryd runs the same in a terminal.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "ferry/status.h"

namespace ferry::daemon {

class SystemdNotifier {
 public:
  // Reads $NOTIFY_SOCKET, $WATCHDOG_USEC and $WATCHDOG_PID once.
  static SystemdNotifier from_environment();

  bool enabled() const { return !socket_path_.empty(); }
  // Sends one datagram ("READY=1\nSTATUS=serving"). Errors name the socket; callers log them.
  Status notify(std::string_view state) const;

  // How often to send WATCHDOG=1: half of WATCHDOG_USEC (when the watchdog is on and meant
  // for this process), as sd_watchdog_enabled(3) recommends.
  std::optional<std::chrono::microseconds> watchdog_interval() const { return watchdog_interval_; }

 private:
  std::string socket_path_;  // '@' first: abstract namespace
  std::optional<std::chrono::microseconds> watchdog_interval_;
};

}  // namespace ferry::daemon
