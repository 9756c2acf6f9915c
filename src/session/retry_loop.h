// The reconnect-with-backoff loop that send, sync and get share: a transfer whose connection
// was lost after the peer had accepted it is run again (resume makes the retry cheap) until
// it ends any other way or the peer has been unreachable for longer than --retry-timeout.
#pragma once

#include <chrono>
#include <functional>

#include "ferry/status.h"

namespace ferry {

// What one attempt tells the loop.
struct AttemptOutcome {
  Status status;
  bool established = false;  // the peer accepted the session (SESSION_OPENED) in this attempt
};

struct ReconnectPolicy {
  // How long the peer may stay lost (from the first failed attempt after an established one)
  // before the loop gives up.
  std::chrono::milliseconds retry_timeout{0};
  // The give-up note: " (gave up reconnecting after N s)" when true, else
  // " (gave up reconnecting)". send and get have always worded it differently.
  bool give_up_names_duration = false;
  // Called once per retry, after the warning is logged and before the backoff wait (progress
  // "reconnecting", reconnect counters). May be empty.
  std::function<void()> on_reconnect;
};

// Calls `attempt` until one ends with anything but a kNetwork error, or with kNetwork while no
// attempt so far was established (a wrong address or a refusal fails at once, not after
// minutes). Between attempts it logs "<status>; reconnecting in N ms" and sleeps a backoff
// that starts at 500 ms, doubles up to 15 s and restarts whenever an attempt was established.
// Returns the last attempt's status; when the retry timeout ran out, a kNetwork status with
// the give-up note appended. Blocks the calling thread (each attempt runs its own io_context).
Status run_with_reconnects(const std::function<AttemptOutcome()>& attempt, const ReconnectPolicy& policy);

}  // namespace ferry
