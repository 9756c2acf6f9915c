// The ferryd service: load the config, start one receiver per listen address and the
// metrics endpoint, tell systemd, then handle signals until told to stop.
//
//   SIGTERM/SIGINT  STOPPING=1, stop accepting, shutdown(grace), exit 0 (8 if the grace ran out)
//   SIGHUP          re-read the config and the token store and reload() them; a broken new
//                   config is logged and ignored (the running one keeps serving); settings
//                   that need a restart (listen, tls, memory, limits, metrics) are reported
//
// Exit codes: 0 stopped cleanly, 2 config error, 3 cannot listen, 5 state folder unusable,
// 8 the receivers did not stop within the grace period.
#pragma once

#include <string>

namespace ferry::daemon {

struct BuildInfo {
  std::string version;  // "0.2.0"
  int protocol = 2;     // highest wire protocol version (protocol::kMaxVersion)
};

int run_service(const std::string& config_path, const BuildInfo& build);

// `ferryd --check-config`: parses and validates the config and its token store, prints
// "FILE: ok (...)" on stdout and returns 0, or prints one "FILE:LINE: cause" line and returns 2.
int check_config(const std::string& config_path);

}  // namespace ferry::daemon
